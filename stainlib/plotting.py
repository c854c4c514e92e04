"""Figures used by the book and the CLI, and the helpers they draw with.

* :func:`dataset_grid` — good and defective images with their ground-truth masks (chapter 1);
* :func:`history_plot` — training curves from a run's ``history.csv`` (chapter 4);
* :func:`detection_figure` — input, reconstruction, residual, uncertainty and ground truth, as the paper's Fig. 5
  (chapter 5), and :func:`evaluation_figure`, the best- and worst-detected images of an evaluation in that layout;
* :func:`seed_figure` — the AUROC of each seed of each run, beside its mean (chapter 6);
* :func:`table_bars` — one category's Tables I and II, ours beside the paper's, as horizontal bars (chapter 6);
* :func:`pairs_figure` — the same runs trained two ways, one AUROC against the other (chapter 8).

All functions return a :class:`matplotlib.figure.Figure`; they never call ``plt.show``.  The figures of the
corruption models (chapter 2) are in :mod:`stainlib.corruption_figures`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

__all__ = [
    "dataset_grid",
    "detection_figure",
    "evaluation_figure",
    "history_plot",
    "pairs_figure",
    "reconstruction_figure",
    "seed_figure",
    "table_bars",
    "to_numpy_image",
]


MAP_CMAP = "viridis"
"""The colour map of every anomaly map: perceptually uniform, and its low end (dark blue) stays distinct from a black
background, unlike inferno's."""
FONT = 10
"""The size in points of titles and labels: figures are drawn no wider than the page's text column (about 7.5 inches at
100 dpi), so that they show at 9 pt or more."""


def _plt():
    import matplotlib.pyplot as plt

    return plt


def to_numpy_image(x: torch.Tensor):
    """A tensor in [0, 1] as an array for ``imshow``, clamped to [0, 1], on the CPU.

    Args:
        x: ``(C, H, W)`` with C = 1 or 3, or ``(H, W)``.

    Returns:
        An ``(H, W)`` array for one channel, else ``(H, W, 3)``:
        ``to_numpy_image(torch.ones(3, 4, 5)).shape == (4, 5, 3)``.
    """
    x = x.detach().float().cpu()
    if x.dim() == 3:
        x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)
    return x.clamp(0, 1).numpy()


def _show(ax, x, title=None, cmap="gray", vmin=0.0, vmax=1.0):
    shown = ax.imshow(
        to_numpy_image(x) if isinstance(x, torch.Tensor) else x,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=FONT)
    return shown


def _row_label(ax, text):
    """A row's label, horizontal, left of its first image."""
    ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize=FONT, labelpad=6)


def _colorbar(fig, shown, axes, label=None, location="right"):
    """One colour bar for the maps of ``axes`` (drawn on one scale), its ticks at 9 pt; ``location="bottom"`` puts it
    under a column of maps."""
    if location == "bottom":
        bar = fig.colorbar(shown, ax=list(axes), location="bottom", shrink=0.95, pad=0.01, aspect=12, fraction=0.05)
        bar.ax.tick_params(labelsize=9, labelrotation=30)
        bar.ax.xaxis.set_major_locator(_plt().MaxNLocator(3))
    else:
        bar = fig.colorbar(shown, ax=list(axes), shrink=0.85, pad=0.02, aspect=40, fraction=0.04)
    bar.ax.tick_params(labelsize=9)
    if label:
        bar.set_label(label, fontsize=9)
    return bar


def dataset_grid(items: list[dict], columns: int = 6, scale: float = 1.8, title: str | None = None):
    """Show dataset items: images above, their ground-truth masks below, titled by defect type.

    Args:
        items: :class:`~stainlib.data.MVTecAD` items (dicts with ``image``, ``gt_mask``, ``defect_type``).
        columns: at most this many items are shown.
        scale: inches per panel.
        title: the figure's title, if any.

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    plt = _plt()
    columns = min(columns, len(items))
    fig, axes = plt.subplots(2, columns, figsize=(scale * columns, scale * 2.1), squeeze=False)
    for j, item in enumerate(items[:columns]):
        _show(axes[0, j], item["image"], item["defect_type"])
        _show(axes[1, j], item["gt_mask"])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def read_history(path) -> dict[str, list[float]]:
    """Columns of a ``history.csv`` as lists of floats."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}


def history_plot(runs: dict, scale: float = 3.2):
    """Training loss (log scale) and validation PSNR against epochs, one line per run.

    Args:
        runs: ``{label: run folder}``; each folder has a ``history.csv``.
        scale: the figure's height in inches.

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    plt = _plt()
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(2.2 * scale, scale))
    for label, run in runs.items():
        h = read_history(Path(run) / "history.csv")
        ax_loss.plot(h["epoch"], h["train_loss"], label=label)
        ax_psnr.plot(h["epoch"], h["val_psnr"], label=label)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training MSE")
    ax_psnr.set_xlabel("epoch")
    ax_psnr.set_ylabel("validation PSNR (dB)")
    ax_psnr.legend(fontsize=9)
    fig.tight_layout()
    return fig


def detection_figure(image, reconstruction, residual, uncertainty, gt_mask, titles=None, scale: float = 1.15):
    """One row per image: input, reconstruction, residual map, uncertainty map, ground truth (paper Fig. 5).

    All arguments are ``(B, ., H, W)`` tensors; ``titles`` is an optional list of B row labels, written horizontally at
    the left.  Each anomaly map is drawn in :data:`MAP_CMAP` on one scale per column (0 to its maximum over the
    batch), read off the column's colour bar, so rows can be compared.

    Args:
        image, reconstruction: ``(B, C, H, W)`` in [0, 1].
        residual, uncertainty: ``(B, 1, H, W)`` anomaly maps (:mod:`stainlib.detect`).
        gt_mask: ``(B, 1, H, W)`` ground truth.
        titles: B row labels, or ``None``.
        scale: inches per panel.

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    plt = _plt()
    b = image.shape[0]
    fig, axes = plt.subplots(b, 5, figsize=(5.8 * scale, (b + 0.6) * scale), squeeze=False, layout="constrained")
    res_max = float(residual.max()) or 1.0
    unc_max = float(uncertainty.max()) or 1.0
    for i in range(b):
        _show(axes[i, 0], image[i], "input" if i == 0 else None)
        _show(axes[i, 1], reconstruction[i], "reconstruction" if i == 0 else None)
        res = _show(axes[i, 2], residual[i], "residual" if i == 0 else None, cmap=MAP_CMAP, vmax=res_max)
        unc = _show(axes[i, 3], uncertainty[i], "uncertainty" if i == 0 else None, cmap=MAP_CMAP, vmax=unc_max)
        _show(axes[i, 4], gt_mask[i], "ground truth" if i == 0 else None)
        if titles:
            _row_label(axes[i, 0], titles[i].replace(": ", ":\n", 1))
    _colorbar(fig, res, axes[:, 2], "residual", location="bottom")
    _colorbar(fig, unc, axes[:, 3], "variance", location="bottom")
    return fig


def evaluation_figure(test: dict, maps: dict, pred_score, model, n_samples: int):
    """The figure ``stainlib evaluate`` saves as ``figure_<map>.png``: the two best- and the two worst-detected
    defective images by ``pred_score``, and the good image with the highest score, as :func:`detection_figure` rows.

    Args: ``test`` (``image``, ``gt_mask``, ``gt_label``, ``defect_type``) and its ``maps``, as
    :func:`stainlib.detect.anomaly_maps` gives them; ``model`` and ``n_samples`` compute the uncertainty of the shown
    images alone where ``maps`` has none.  Returns the :class:`matplotlib.figure.Figure`.
    """
    from .detect import uncertainty_map

    labels = test["gt_label"]
    defective = torch.nonzero(labels == 1).flatten()
    good = torch.nonzero(labels == 0).flatten()
    ranked = defective[torch.argsort(pred_score[defective], descending=True)]
    picks = [*ranked[:2].tolist(), *ranked[-2:].tolist()]
    titles = ["best", "best", "worst", "worst"][: len(picks)]
    if len(good):
        picks.append(int(good[torch.argmax(pred_score[good])]))
        titles.append("good, highest score")
    idx = torch.tensor(picks)
    titles = [f"{t}: {test['defect_type'][i]}" for t, i in zip(titles, picks)]
    if "uncertainty" in maps:
        unc = maps["uncertainty"][idx]
    else:
        unc = uncertainty_map(model, test["image"][idx], n_samples, seed=0).cpu()
    recon, residual = maps["reconstruction"][idx], maps["residual"][idx]
    return detection_figure(test["image"][idx], recon, residual, unc, test["gt_mask"][idx], titles)


def reconstruction_figure(image, gt_mask, reconstructions: dict, scale: float = 1.1):
    """For each image (columns): the input and mask, then each model's reconstruction and residual (rows).

    ``reconstructions`` maps a label to a ``(B, C, H, W)`` tensor; the rows are labelled horizontally at the left, and
    the residuals share one colour scale (:data:`MAP_CMAP`), read off one colour bar.

    Args:
        image: ``(B, C, H, W)`` in [0, 1]; ``gt_mask``: its ``(B, 1, H, W)`` ground truth.
        reconstructions: ``{label: (B, C, H, W) reconstruction}``, one pair of rows each.
        scale: inches per panel.

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    plt = _plt()
    b = image.shape[0]
    rows = 2 + 2 * len(reconstructions)
    fig, axes = plt.subplots(rows, b, figsize=(scale * b + 2.2, scale * rows), squeeze=False, layout="constrained")
    residuals = {k: (image - r).abs().mean(1, keepdim=True) for k, r in reconstructions.items()}
    vmax = max(float(r.max()) for r in residuals.values()) or 1.0
    for j in range(b):
        _show(axes[0, j], image[j])
        _show(axes[1, j], gt_mask[j])
        for k, label in enumerate(reconstructions):
            _show(axes[2 + 2 * k, j], reconstructions[label][j])
            shown = _show(axes[3 + 2 * k, j], residuals[label][j], cmap=MAP_CMAP, vmax=vmax)
    _row_label(axes[0, 0], "input")
    _row_label(axes[1, 0], "ground truth")
    for k, label in enumerate(reconstructions):
        _row_label(axes[2 + 2 * k, 0], f"{label}:\noutput")
        _row_label(axes[3 + 2 * k, 0], f"{label}:\nresidual")
    _colorbar(fig, shown, axes[3::2, :].ravel(), "residual (one scale)")
    return fig


def seed_figure(rows: list[dict], title: str | None = None, scale: float = 3.0):
    """Image and pixel AUROC of every seed (dots) and their mean (bar) for each run and map.

    ``rows`` as :func:`stainlib.tables.seed_table` returns them.  A gap between two runs means something only where
    it is wider than the scatter of the dots.

    Args:
        rows: one per run and map, with ``network``, ``corruption``, ``method`` and ``values`` (``{seed:
            {"image_auroc", "pixel_auroc"}}``).
        title: the figure's title, if any.
        scale: the figure's height in inches (about).

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(2.5 * scale, 1.2 * scale), sharey=True)
    labels = [f"{r['network']} +\n{r['corruption']}\n{r['method']}" for r in rows]
    for ax, level in zip(axes, ("image", "pixel")):
        for i, r in enumerate(rows):
            vals = [v[f"{level}_auroc"] for v in r["values"].values()]
            ax.bar(i, sum(vals) / len(vals), 0.6, color="0.85", edgecolor="0.5")
            ax.plot([i] * len(vals), vals, "o", color="C0", markersize=4)
        ax.axhline(0.5, color="0.6", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(rows)), labels, fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_title(f"{level} AUROC: seeds (dots), mean (bar)", fontsize=FONT)
    axes[0].set_ylabel("AUROC (0.5: chance)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def table_bars(tables: dict, category: str, ours_label: str = "ours", scale: float = 2.55):
    """One panel per table: a horizontal bar per model and map, ours beside the paper's, for ``category``.

    Labels are horizontal and at least 9 pt, so that the figure reads at the width of the page's text column.

    Args:
        tables: ``{"I": make_table(...), "II": ...}`` (:func:`stainlib.tables.make_table`'s dicts).
        category: the row of each table to draw.
        ours_label: the legend's word for our numbers.
        scale: the figure's height in inches (about).

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(tables), figsize=(2.6 * scale, 1.4 * scale), sharey=True, squeeze=False, layout="constrained"
    )
    for ax, (name, t) in zip(axes[0], tables.items()):
        row = next(r for r in t["rows"] if r["category"] == category)
        labels = [f"{n} + {c}, {m}" for m, n, c in t["columns"]]
        ours = [row[f"{m}/{n}/{c}"] or 0 for m, n, c in t["columns"]]
        paper = [row[f"{m}/{n}/{c} (paper)"] or 0 for m, n, c in t["columns"]]
        y = list(range(len(labels)))[::-1]
        ax.barh([i + 0.2 for i in y], ours, 0.4, label=ours_label, color="C0")
        ax.barh([i - 0.2 for i in y], paper, 0.4, label="paper", color="0.7")
        ax.set_yticks(y, labels, fontsize=10)
        ax.set_xlim(0, 1)
        ax.axvline(0.5, color="0.5", linestyle=":", linewidth=1)
        ax.tick_params(axis="x", labelsize=9)
        level = "image" if name == "I" else "pixel"
        ax.set_title(f"Table {name}: {level} AUROC", fontsize=11)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), fontsize=9, loc="outside lower center", ncol=2)
    return fig


def pairs_figure(comparison: dict, ours_label: str, other_label: str, title: str | None = None, scale: float = 3.0):
    """Each run's AUROC trained one way (y) against the other way (x), image and pixel side by side, one marker per
    map: above the diagonal, ``ours`` scored higher.

    Args:
        comparison: :func:`stainlib.tables.folder_comparison`'s dict (its ``rows``).
        ours_label, other_label: the axes' words for the two ways (e.g. "the paper's decoder", "legacy decoder").
        title: the figure's title, if any.
        scale: the figure's height in inches (about).

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(2.3 * scale, 1.25 * scale), layout="constrained")
    maps = sorted({r["map"] for r in comparison["rows"]})
    markers = dict(zip(maps, "osD^v"))
    for ax, level in zip(axes, ("image", "pixel")):
        key = f"{level}_auroc"
        for i, m in enumerate(maps):
            rows = [r for r in comparison["rows"] if r["map"] == m]
            ax.plot(
                [r["other"][key] for r in rows],
                [r["ours"][key] for r in rows],
                markers[m],
                color=f"C{i}",
                label=m,
                markersize=5,
                alpha=0.85,
            )
        values = [r[side][key] for r in comparison["rows"] for side in ("ours", "other")]
        lo, hi = max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05)
        ax.plot([lo, hi], [lo, hi], color="0.5", linestyle="--", linewidth=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{level} AUROC, {other_label}", fontsize=FONT)
        ax.set_ylabel(f"{level} AUROC, {ours_label}", fontsize=FONT)
        ax.tick_params(labelsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, [f"{m} map" for m in labels], fontsize=9, loc="outside lower center", ncol=len(maps))
    if title:
        fig.suptitle(title, fontsize=FONT)
    return fig
