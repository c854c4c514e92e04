import matplotlib
import pytest
import torch

from stainlib.noise import PAPER_CORRUPTIONS
from stainlib.plotting import corruption_grid

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
