"""Figures of the corruption models (book chapter 2, "Corruptions"; the introduction shows :func:`corruption_grid`).

* :func:`corruption_grid` — images, their corruption by each model, and the masks;
* :func:`stain_anatomy` — how one stain is built: ellipse, jittered points, periodic spline, fill (the paper's Fig. 3);
* :func:`corruption_gallery` — the range of shapes each model draws, one column per seed;
* :func:`readings_figure` — the paper's and the authors' code's readings of a model side by side.

They draw with :mod:`stainlib.plotting`'s helpers and, like its figures, return a :class:`matplotlib.figure.Figure`
without calling ``plt.show``.
"""

from __future__ import annotations

import torch

from .plotting import _plt, _row_label, _show

__all__ = ["corruption_gallery", "corruption_grid", "readings_figure", "stain_anatomy"]


def corruption_grid(
    image: torch.Tensor,
    names=None,
    seed: int = 0,
    show_masks: bool = True,
    scale: float = 1.6,
    columns: int | None = None,
):
    """Draw ``image`` (B, C, H, W) in the first column, then its corruption by each model in ``names``.

    With ``show_masks``, each corrupted image is followed by a row of the masks.  The same ``seed`` draws the same
    corruptions.  ``columns`` caps the models per block of rows: with more models, the figure wraps into blocks stacked
    one under the other, each starting with the images again, so that a page of about 750 px keeps the titles legible.

    Args:
        image: ``(B, C, H, W)`` in [0, 1].
        names: corruption names (default: :data:`stainlib.noise.PAPER_CORRUPTIONS`).
        seed, show_masks, columns: as above.
        scale: inches per panel.

    Returns:
        The :class:`matplotlib.figure.Figure`.

    Raises:
        ValueError: ``columns`` is less than 1.
    """
    from .noise import PAPER_CORRUPTIONS, get_corruption

    names = list(names or PAPER_CORRUPTIONS)
    if columns is not None and columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    per_block = min(columns or len(names), len(names))
    blocks = [names[k : k + per_block] for k in range(0, len(names), per_block)]
    b = image.shape[0]
    per_image = 2 if show_masks else 1
    rows = b * per_image
    plt = _plt()
    fig, axes = plt.subplots(
        rows * len(blocks), per_block + 1, figsize=(scale * (per_block + 1), scale * rows * len(blocks)), squeeze=False
    )
    for k, block in enumerate(blocks):
        top = k * rows
        for j, name in enumerate(block):
            g = torch.Generator(device=image.device).manual_seed(seed)
            corrupted, mask = get_corruption(name)(image, g)
            for i in range(b):
                r = top + i * per_image
                _show(axes[r, j + 1], corrupted[i], name if i == 0 else None)
                if show_masks:
                    _show(axes[r + 1, j + 1], mask[i], None)
        for j in range(len(block), per_block):  # the last block may be shorter
            for r in range(top, top + rows):
                axes[r, j + 1].axis("off")
        for i in range(b):
            r = top + i * per_image
            _show(axes[r, 0], image[i], "image" if i == 0 else None)
            if show_masks:
                axes[r + 1, 0].axis("off")
                axes[r + 1, 0].text(0.5, 0.5, "mask", ha="center", va="center", transform=axes[r + 1, 0].transAxes)
    fig.tight_layout()
    return fig


def stain_anatomy(side: int = 256, seed: int = 3, scale: float = 3.2):
    """How one stain is built (the paper's Fig. 3): the ellipse, the jittered points, the periodic spline, the fill.

    Args:
        side: the image's side in pixels (the stain is drawn at its centre).
        seed: the seed of the stain's shape.
        scale: inches per panel.

    Returns:
        The :class:`matplotlib.figure.Figure`: the outline on the left, the filled pixels on the right.
    """
    import math

    from .stain import Stain

    model = Stain(size=(0.08, 0.12), noise=0.0)
    g = torch.Generator().manual_seed(seed)
    shapes = model.sample(1, side, side, g, "cpu")
    shapes["center"][:] = side / 2
    alpha = model.opacity(shapes, side, side)[0, 0]
    (a, c), theta = shapes["axes"][0].tolist(), float(shapes["theta"][0])
    t = torch.linspace(0, 2 * math.pi, 400)
    ex = a * torch.cos(t) * math.cos(theta) - c * torch.sin(t) * math.sin(theta) + side / 2
    ey = a * torch.cos(t) * math.sin(theta) + c * torch.sin(t) * math.cos(theta) + side / 2
    n = model.n_points
    phi = torch.arange(n) * 2 * math.pi / n
    px, py = shapes["radii"][0] * torch.cos(phi) + side / 2, shapes["radii"][0] * torch.sin(phi) + side / 2
    table = shapes["table"][0]
    ang = torch.arange(len(table)) * 2 * math.pi / len(table)
    sx, sy = table * torch.cos(ang) + side / 2, table * torch.sin(ang) + side / 2
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(2 * scale, scale))
    ax1.plot(ex, ey, color="tab:blue", label="ellipse")
    ax1.plot(torch.cat([sx, sx[:1]]), torch.cat([sy, sy[:1]]), color="black", label="periodic cubic spline")
    ax1.scatter(px, py, color="tab:orange", zorder=3, label=f"{n} jittered points")
    ax1.set_aspect("equal")
    ax1.invert_yaxis()
    ax1.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.04), frameon=False)
    ax1.set_title("outline", fontsize=9)
    _show(ax2, 1 - alpha, "filled stain (pixels)")
    lo = int(side / 2 - 0.15 * side)
    hi = int(side / 2 + 0.15 * side)
    ax2.set_xlim(lo, hi)
    ax2.set_ylim(hi, lo)
    ax1.set_xlim(lo, hi)
    ax1.set_ylim(hi, lo)
    fig.tight_layout()
    return fig


def corruption_gallery(image: torch.Tensor, names=None, seeds=range(4), scale: float = 1.7):
    """One row per model, one column per seed: the range of shapes each corruption model draws on ``image``.

    Args:
        image: one ``(C, H, W)`` image in [0, 1].
        names: corruption names (default: :data:`stainlib.noise.PAPER_CORRUPTIONS`).
        seeds: the seeds, one column each.
        scale: inches per panel.

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    from .noise import PAPER_CORRUPTIONS, get_corruption

    names = list(names or PAPER_CORRUPTIONS)
    seeds = list(seeds)
    plt = _plt()
    fig, axes = plt.subplots(len(names), len(seeds), figsize=(scale * len(seeds), scale * len(names)), squeeze=False)
    for i, name in enumerate(names):
        model = get_corruption(name)
        for j, seed in enumerate(seeds):
            corrupted, _ = model(image[None], torch.Generator().manual_seed(seed))
            _show(axes[i, j], corrupted[0], f"seed {seed}" if i == 0 else None)
        _row_label(axes[i, 0], name)
    fig.tight_layout()
    return fig


def readings_figure(
    image: torch.Tensor,
    pairs=(("drops", "drops-code"), ("gaussian-0.4", "gaussian-0.4-code")),
    seed: int = 0,
    scale: float = 2.0,
    zoom: int = 64,
):
    """The two readings of each pair of models side by side on one ``(C, H, W)`` image, drawn with the same seed.

    One row per pair: the paper's reading and the authors' code's reading, and for models with a small mask (Drops) a
    ``zoom`` x ``zoom`` px crop around the mask's centre, so that the droplets can be seen at all.

    Args:
        image: one ``(C, H, W)`` image in [0, 1].
        pairs: ``(paper's reading, code's reading)`` corruption names, one row each.
        seed: the seed of every draw.
        scale: inches per panel.
        zoom: the crop's side in pixels.

    Returns:
        The :class:`matplotlib.figure.Figure`.

    Raises:
        ValueError: ``image`` is not ``(C, H, W)``.
    """
    from .noise import get_corruption

    if image.dim() != 3:
        raise ValueError(f"image must be (C, H, W), got {tuple(image.shape)}")
    plt = _plt()
    fig, axes = plt.subplots(len(pairs), 4, figsize=(scale * 4, scale * len(pairs)), squeeze=False)
    for i, pair in enumerate(pairs):
        for j, name in enumerate(pair):
            corrupted, mask = get_corruption(name)(image[None], torch.Generator().manual_seed(seed))
            _show(axes[i, 2 * j], corrupted[0], name)
            m = mask[0, 0]
            if m.all():  # the whole image: show the middle crop of the noise instead of the mask's centre
                cy, cx = m.shape[0] // 2, m.shape[1] // 2
            else:
                ys, xs = torch.nonzero(m, as_tuple=True)
                cy, cx = int(ys.float().mean()), int(xs.float().mean())
            h, w = m.shape
            half = min(zoom, h, w) // 2
            y0, x0 = min(max(cy - half, 0), h - 2 * half), min(max(cx - half, 0), w - 2 * half)
            _show(axes[i, 2 * j + 1], corrupted[0, :, y0 : y0 + 2 * half, x0 : x0 + 2 * half], f"{name}, zoom")
    fig.tight_layout()
    return fig
