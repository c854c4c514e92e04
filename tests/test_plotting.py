import matplotlib
import pytest
import torch

from stainlib.corruption_figures import corruption_grid
from stainlib.noise import PAPER_CORRUPTIONS

matplotlib.use("Agg")


def test_corruption_grid_wraps_the_models_into_blocks_of_columns_and_titles_each_model_once():
    images = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    fig = corruption_grid(images, seed=1, columns=5)
    n = len(PAPER_CORRUPTIONS)
    blocks = -(-n // 5)
    assert len(fig.axes) == blocks * 2 * 2 * 6  # blocks x two images x (image, mask) rows x (image + 5 models)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title() not in ("", "image")]
    assert sorted(titles) == sorted(PAPER_CORRUPTIONS)
    assert fig.get_size_inches()[0] == pytest.approx(1.6 * 6)


def test_corruption_grid_refuses_fewer_than_one_column():
    with pytest.raises(ValueError, match="columns"):
        corruption_grid(torch.rand(1, 1, 64, 64), ["stain"], columns=0)


def test_seed_figure_draws_a_bar_per_run_and_map_and_a_dot_per_seed_at_both_levels():
    from stainlib.plotting import seed_figure

    rows = [
        {
            "network": "AESc",
            "corruption": c,
            "method": "residual",
            "values": {s: {"image_auroc": 0.5 + s / 10, "pixel_auroc": 0.6} for s in range(n)},
        }
        for c, n in (("none", 3), ("stain", 2))
    ]
    fig = seed_figure(rows, "synthetic synth_cap")
    for ax in fig.axes:
        assert len(ax.patches) == 2  # one bar per row
        assert sorted(len(line.get_xdata()) for line in ax.lines if line.get_marker() == "o") == [2, 3]
    assert fig.axes[0].lines[0].get_ydata().tolist() == pytest.approx([0.5, 0.6, 0.7])


def test_detection_figure_draws_each_map_column_on_one_scale_with_its_colour_bar_under_it_and_horizontal_row_labels():
    from stainlib.plotting import MAP_CMAP, detection_figure

    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    fig = detection_figure(x, x, x * 0.5, x * 0.1, (x > 0.5).float(), titles=["best: crack", "worst: hole", "good"])
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2  # residual and uncertainty: one bar per compared column
    maps = [ax.images[0] for ax in fig.axes[:15] if ax.images and ax.images[0].get_cmap().name == MAP_CMAP]
    assert len(maps) == 6 and len({m.get_clim() for m in maps}) == 2  # two columns, one scale each
    label = fig.axes[0].yaxis.label
    # horizontal, its kind over its defect type so that the label stays narrow beside a 256 px image
    assert label.get_text() == "best:\ncrack" and label.get_rotation() == 0 and label.get_fontsize() >= 9
    fig.canvas.draw()  # the constrained layout places the bars when the figure is drawn
    assert all(bar.get_position().y1 < fig.axes[14].get_position().y0 for bar in bars)  # under the maps, not beside


def test_table_bars_draws_horizontal_labels_of_9_pt_or_more_for_ours_and_the_paper():
    from pathlib import Path

    from stainlib.plotting import table_bars
    from stainlib.tables import make_table

    results = Path(__file__).resolve().parents[1] / "results"
    fig = table_bars({t: make_table(results, t, write=False) for t in ("I", "II")}, "bottle")
    labels = fig.axes[0].get_yticklabels()  # the panels share their rows: the labels are on the first
    assert labels and all(lbl.get_rotation() == 0 and lbl.get_fontsize() >= 9 for lbl in labels)
    for ax in fig.axes:
        assert len(ax.patches) == 2 * len(labels)  # ours and the paper's, per row


def test_pairs_figure_puts_each_run_at_other_way_x_and_our_way_y_with_one_marker_series_per_map_and_a_diagonal():
    from stainlib.plotting import pairs_figure

    def row(run, map_name, ours, other):
        return {
            "run": run,
            "map": map_name,
            "ours": {"image_auroc": ours, "pixel_auroc": ours - 0.1},
            "other": {"image_auroc": other, "pixel_auroc": other - 0.1},
        }

    rows = [row("a", "residual", 0.9, 0.8), row("b", "residual", 0.7, 0.75), row("a", "uncertainty", 0.6, 0.65)]
    fig = pairs_figure({"rows": rows}, "new", "old")
    image = fig.axes[0]
    series = {line.get_label(): list(zip(line.get_xdata(), line.get_ydata())) for line in image.lines}
    assert series["residual"] == [(0.8, 0.9), (0.75, 0.7)] and series["uncertainty"] == [(0.65, 0.6)]
    diagonal = [line for line in image.lines if line.get_linestyle() == "--"]
    assert len(diagonal) == 1 and list(diagonal[0].get_xdata()) == list(diagonal[0].get_ydata())
    assert image.get_xlabel() == "image AUROC, old" and fig.axes[1].get_ylabel() == "pixel AUROC, new"
