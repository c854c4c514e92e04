"""Figures used by the book and the CLI.

* :func:`corruption_grid` — images, their corruption by each model, and the masks (chapter 3);
* :func:`dataset_grid` — good and defective images with their ground-truth masks (chapter 2);
* :func:`history_plot` — training curves from a run's ``history.csv`` (chapter 5);
* :func:`detection_figure` — input, reconstruction, residual, uncertainty and ground truth, as the paper's Fig. 5
  (chapter 6).

All functions return a :class:`matplotlib.figure.Figure`; they never call ``plt.show``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

__all__ = ["corruption_grid", "dataset_grid", "detection_figure", "history_plot", "to_numpy_image"]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def to_numpy_image(x: torch.Tensor):
    """A ``(C, H, W)`` or ``(H, W)`` tensor in [0, 1] as an array for ``imshow`` (``(H, W)`` or ``(H, W, 3)``)."""
    x = x.detach().float().cpu()
    if x.dim() == 3:
        x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)
    return x.clamp(0, 1).numpy()


def _show(ax, x, title=None, cmap="gray", vmin=0.0, vmax=1.0):
    ax.imshow(
        to_numpy_image(x) if isinstance(x, torch.Tensor) else x,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def corruption_grid(image: torch.Tensor, names=None, seed: int = 0, show_masks: bool = True, scale: float = 1.6):
    """Draw ``image`` (B, C, H, W) in the first column, then its corruption by each model in ``names``.

    With ``show_masks``, each corrupted image is followed by a row of the masks.  The same ``seed`` draws the same
    corruptions.
    """
    from .noise import CORRUPTIONS, get_corruption

    names = list(names or CORRUPTIONS)
    b = image.shape[0]
    rows = b * (2 if show_masks else 1)
    plt = _plt()
    fig, axes = plt.subplots(rows, len(names) + 1, figsize=(scale * (len(names) + 1), scale * rows), squeeze=False)
    for j, name in enumerate(names):
        g = torch.Generator(device=image.device).manual_seed(seed)
        corrupted, mask = get_corruption(name)(image, g)
        for i in range(b):
            r = i * (2 if show_masks else 1)
            _show(axes[r, j + 1], corrupted[i], name if i == 0 else None)
            if show_masks:
                _show(axes[r + 1, j + 1], mask[i], None)
    for i in range(b):
        r = i * (2 if show_masks else 1)
        _show(axes[r, 0], image[i], "image" if i == 0 else None)
        if show_masks:
            axes[r + 1, 0].axis("off")
            axes[r + 1, 0].text(0.5, 0.5, "mask", ha="center", va="center", transform=axes[r + 1, 0].transAxes)
    fig.tight_layout()
    return fig


def dataset_grid(items: list[dict], columns: int = 6, scale: float = 1.8, title: str | None = None):
    """Show dataset items (dicts with ``image``, ``gt_mask``, ``defect_type``): images above, masks below."""
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
    """Training loss and validation PSNR against epochs for one or several runs ``{label: run_dir}``."""
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
    ax_psnr.legend(fontsize=8)
    fig.tight_layout()
    return fig


def detection_figure(image, reconstruction, residual, uncertainty, gt_mask, titles=None, scale: float = 1.9):
    """One row per image: input, reconstruction, residual map, uncertainty map, ground truth (paper Fig. 5).

    All arguments are ``(B, ., H, W)`` tensors; ``titles`` is an optional list of B row labels.  Each anomaly map is
    scaled to its own maximum over the batch, so rows can be compared.
    """
    plt = _plt()
    b = image.shape[0]
    fig, axes = plt.subplots(b, 5, figsize=(5 * scale, b * scale), squeeze=False)
    res_max = float(residual.max()) or 1.0
    unc_max = float(uncertainty.max()) or 1.0
    for i in range(b):
        _show(axes[i, 0], image[i], "input" if i == 0 else None)
        _show(axes[i, 1], reconstruction[i], "reconstruction" if i == 0 else None)
        _show(axes[i, 2], residual[i], "residual" if i == 0 else None, cmap="inferno", vmax=res_max)
        _show(axes[i, 3], uncertainty[i], "uncertainty" if i == 0 else None, cmap="inferno", vmax=unc_max)
        _show(axes[i, 4], gt_mask[i], "ground truth" if i == 0 else None)
        if titles:
            axes[i, 0].set_ylabel(titles[i], fontsize=8)
    fig.tight_layout()
    return fig
