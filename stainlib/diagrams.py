"""Diagrams drawn from code: the networks' architecture (book chapter 3, "Networks") and the method's train/test
pipeline (the book's introduction, "Reconstruction-based anomaly detection").

* :func:`architecture_figure` — an :class:`~stainlib.models.AutoEncoder` (AE or AESc) as a U: each encoder level,
  the latent, each decoder block and the output head, labelled with their resolution and channels; the additive skips
  where the model has them; the Monte-Carlo dropout rates where they are not zero.  Every label is read from the
  model's own modules (``encoder``, ``decoder``, ``head``, ``drop``, ``dec_drop``), so ``AESc(depth=5, ...)``,
  ``base_width=8`` or :meth:`~stainlib.models.AutoEncoder.set_dropout` change the drawing.
* :func:`pipeline_figure` — training (clean image, corruption, autoencoder, reconstruction, MSE) and testing (test
  image, autoencoder, residual or MC-dropout variance, ``anomaly_map``, ``pred_score``, image and pixel AUROC).

Both return a :class:`matplotlib.figure.Figure` sized for the book's content column (7.5 in at 100 dpi, about 750
px) with no font under 8 pt; they never call ``plt.show``.  The drawn artists carry a ``gid`` (``"encoder"``,
``"latent"``, ``"decoder"``, ``"head"``, ``"input"``, ``"skip"``, ``"dropout"``, ``"box"``, ``"arrow"``), so that
tests and readers can find them.
"""

from __future__ import annotations

__all__ = ["architecture_figure", "pipeline_figure"]

FONT = 8  # the smallest font size used: readable at the book's content width
WIDTH = 7.5  # inches: the book's content column at 100 dpi
COLOURS = {
    "input": "#e8e8e8",
    "encoder": "#cfe2f3",
    "latent": "#b4a7d6",
    "decoder": "#d9ead3",
    "head": "#e8e8e8",
    "skip": "#c0504d",
    "dropout": "#b45f06",
    "train": "#fdf3e1",
    "test": "#eaf1fb",
}


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _box(ax, x, y, w, h, text, gid, colour="#ffffff", fontsize=FONT, weight="normal"):
    """A rounded box centred on (x, y) with its text; both carry ``gid``."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.06",
            facecolor=colour,
            edgecolor="#404040",
            linewidth=0.8,
            gid=gid,
        )
    )
    return ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, weight=weight, gid=gid)


def _arrow(ax, start, end, gid="arrow", colour="#404040", style="-|>", connection="arc3", linestyle="-", width=1.0):
    from matplotlib.patches import FancyArrowPatch

    return ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=9,
            color=colour,
            linewidth=width,
            linestyle=linestyle,
            connectionstyle=connection,
            shrinkA=0,
            shrinkB=0,
            gid=gid,
        )
    )


def _side(px: float) -> str:
    return f"{px:g} px"


def _levels(model, size: int):
    """The drawing's content, read from the model: ``(kind, row, label, dropout rate)`` per box.

    Rows count halvings of the resolution: row 0 is the full resolution (input and output), row ``depth`` the
    latent.  Encoder level ``i`` is at row ``i + 1``; decoder block ``j`` at the row of its output's resolution.
    """
    depth = len(model.encoder)
    in_channels = model.encoder[0][0].in_channels
    boxes = [("input", 0, f"image\n{_side(size)} × {in_channels}", 0.0)]
    for i, (block, drop) in enumerate(zip(model.encoder, model.drop)):
        kind = "latent" if i == depth - 1 else "encoder"
        side = size / 2 ** (i + 1)
        channels = block[0].out_channels
        label = f"latent {side:g}×{side:g}×{channels}" if kind == "latent" else f"{_side(side)} × {channels}"
        boxes.append((kind, i + 1, label, drop.p))
    for j, (block, drop) in enumerate(zip(model.decoder, model.dec_drop)):
        row = depth - 1 - j
        boxes.append(("decoder", row, f"{_side(size / 2**row)} × {block[0].out_channels}", drop.p))
    head = f"output, sigmoid\n{_side(size)} × {model.head.out_channels}"
    boxes.append(("head", 0 if model.head_upsample else -1, head, 0.0))
    return boxes


def _draw_architecture(ax, model, size, title):
    depth = len(model.encoder)
    w, h, dy = 1.25, 0.42, 0.62  # box width and height, row spacing (inches: the axes are drawn 1:1)
    x_enc, x_dec, x_latent = 0.7, 3.05, 1.875
    boxes = _levels(model, size)
    rows = [row for _, row, _, _ in boxes]
    top, bottom = min(rows), max(rows)

    def y_of(row):
        return (bottom - row) * dy + 0.25

    where = {}
    for kind, row, label, rate in boxes:
        x = {"input": x_enc, "encoder": x_enc, "latent": x_latent, "decoder": x_dec, "head": x_dec}[kind]
        if rate > 0:
            label += "\n "  # room for the dropout line, drawn in its own colour below
        height = h
        _box(ax, x, y_of(row), w, height, label, kind, COLOURS[kind])
        if rate > 0:
            ax.text(
                x,
                y_of(row) - height / 2 + 0.11,
                f"MC dropout {rate:g}",
                ha="center",
                va="center",
                fontsize=FONT,
                color=COLOURS["dropout"],
                gid="dropout",
            )
        where.setdefault(kind, []).append((row, x, y_of(row), height))

    # The data path: down the encoder, into the latent, up the decoder, into the head.
    left = sorted(where["input"] + where["encoder"])
    for (_, x0, y0, h0), (_, x1, y1, h1) in zip(left, left[1:]):
        _arrow(ax, (x0, y0 - h0 / 2), (x1, y1 + h1 / 2))
    (_, xl, yl, hl) = where["latent"][0]
    (_, xe, ye, he) = left[-1]
    _arrow(ax, (xe, ye - he / 2), (xl - w / 2, yl), connection="angle,angleA=-90,angleB=0")
    right = sorted(where["decoder"] + where["head"], reverse=True)
    (_, xd, yd, hd) = right[0]
    _arrow(ax, (xl + w / 2, yl), (xd, yd - hd / 2), connection="angle,angleA=0,angleB=90")
    for (_, x0, y0, h0), (_, x1, y1, h1) in zip(right, right[1:]):
        _arrow(ax, (x0, y0 + h0 / 2), (x1, y1 - h1 / 2))

    # The additive skips: decoder block j adds encoder level depth - 2 - j (same resolution), as in the forward pass.
    if model.skips:
        encoder_at = {row: (x, y) for row, x, y, _ in where["encoder"]}
        for j, (_row, x, y, _) in enumerate(sorted(where["decoder"], reverse=True)):
            level = depth - 2 - j
            if level >= 0 and level + 1 in encoder_at:
                xe, ye = encoder_at[level + 1]
                _arrow(ax, (xe + w / 2, ye), (x - w / 2, y), gid="skip", colour=COLOURS["skip"], width=1.3)
                ax.text(
                    x - w / 2 - 0.08,
                    y + 0.07,
                    "+",
                    ha="center",
                    va="bottom",
                    fontsize=FONT + 2,
                    color=COLOURS["skip"],
                    weight="bold",
                    gid="skip-label",
                )

    ax.text(x_enc, y_of(top) + 0.42, "encoder\nconv 5×5, stride 2", ha="center", va="bottom", fontsize=FONT)
    ax.text(x_dec, y_of(top) + 0.42, "decoder\nup ×2, conv 5×5", ha="center", va="bottom", fontsize=FONT)
    if title:
        ax.text(x_latent, y_of(top) + 0.95, title, ha="center", va="bottom", fontsize=FONT + 2, weight="bold")
    ax.set_xlim(0, 3.75)
    ax.set_ylim(0, y_of(top) + 1.3)
    ax.set_aspect("equal")
    ax.axis("off")


def architecture_figure(model, size: int | None = None, ax=None):
    """Draw an AE or an AESc of :mod:`stainlib.models`, or several side by side.

    Args:
        model: an :class:`~stainlib.models.AutoEncoder`, or a dict ``{title: model}`` (e.g. ``{"AE": AE(), "AESc":
            AESc()}``), drawn left to right.
        size: the input side in pixels that the labels assume; by default the one that gives a 4x4 latent
            (``4 * 2 ** depth``: 256 px for the paper's six levels).
        ax: draw a single model into this axes instead of a new figure.

    Skip arrows are drawn only where the model adds encoder features (AESc, from 8 px to half the input side); each
    MC-dropout layer with a non-zero rate is labelled with its rate, read from ``model.drop`` and ``model.dec_drop``.
    """
    from .models import AutoEncoder

    models = model if isinstance(model, dict) else {None: model}
    if not models:
        raise ValueError("architecture_figure needs at least one model")
    for m in models.values():
        if not isinstance(m, AutoEncoder):
            raise TypeError(f"expected a stainlib.models.AutoEncoder (AE or AESc), got {type(m).__name__}")
    if ax is not None and len(models) != 1:
        raise ValueError("ax draws one model; pass a dict of models without ax to draw them side by side")
    if ax is not None:
        title, m = next(iter(models.items()))
        _draw_architecture(ax, m, size or 4 * 2 ** len(m.encoder), title)
        return ax.figure
    plt = _plt()
    n = len(models)
    depth = max(len(m.encoder) for m in models.values())
    height = (depth + 1) * 0.62 + 1.6
    fig, axes = plt.subplots(1, n, figsize=(WIDTH if n > 1 else WIDTH / 2, height), squeeze=False)
    for a, (title, m) in zip(axes[0], models.items()):
        _draw_architecture(a, m, size or 4 * 2 ** len(m.encoder), title)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01, wspace=0.02)
    return fig


def pipeline_figure():
    """The method as boxes and arrows: training on the top row, testing below.

    Training: a clean good ``image`` is corrupted (the Stain), the autoencoder reconstructs it, and the MSE against
    the clean image is minimised.  Testing: the autoencoder reconstructs a test ``image``; the residual
    :math:`|x - \\hat{x}|` or the variance of T MC-dropout passes is the ``anomaly_map``; its L2 norm is the
    ``pred_score``, compared with ``gt_label`` by the image AUROC; the ``anomaly_map`` is compared with ``gt_mask``
    by the pixel AUROC.
    """
    from matplotlib.patches import FancyBboxPatch

    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH, 4.5))
    w, h = 1.12, 0.5
    xs = [0.7 + 1.52 * i for i in range(5)]

    def panel(y0, y1, name, colour):
        ax.add_patch(
            FancyBboxPatch(
                (0.05, y0),
                WIDTH - 0.1,
                y1 - y0,
                boxstyle="round,pad=0,rounding_size=0.1",
                facecolor=colour,
                edgecolor="none",
                gid="panel",
            )
        )
        ax.text(0.15, y1 - 0.08, name, ha="left", va="top", fontsize=FONT + 1, weight="bold")

    # Training.
    panel(2.65, 4.45, "training (good images only)", COLOURS["train"])
    yt = 3.45
    train = [
        "clean good\nimage",
        "corruption\n(e.g. Stain)",
        "autoencoder\nAE / AESc",
        "reconstruction\n" + r"$\hat{x}$",
        "MSE loss\nagainst the\nclean image",
    ]
    for x, text in zip(xs, train):
        _box(ax, x, yt, w, h + (0.15 if text.count("\n") > 1 else 0), text, "box", "#ffffff")
    for x0, x1 in zip(xs, xs[1:]):
        _arrow(ax, (x0 + w / 2, yt), (x1 - w / 2, yt))
    _arrow(ax, (xs[0], yt + h / 2), (xs[4], yt + h / 2 + 0.08), connection="arc3,rad=-0.12")
    ax.text((xs[0] + xs[4]) / 2, 4.14, "target", ha="center", va="bottom", fontsize=FONT)
    _arrow(ax, (xs[4], yt - h / 2 - 0.08), (xs[2], yt - h / 2), connection="arc3,rad=-0.15", linestyle="--")
    ax.text(xs[3], 2.93, "gradient step on the autoencoder", ha="center", va="top", fontsize=FONT)

    # Testing.
    panel(0.05, 2.55, "testing", COLOURS["test"])
    yr, ym, yb = 1.85, 1.55, 0.5  # the residual row, the main row, the metrics row
    _box(ax, xs[0], ym, w, h, "test image\n$x$", "box", "#ffffff")
    _box(ax, xs[1], ym, w, h, "autoencoder\n" + r"$\hat{x}$", "box", "#ffffff")
    _box(ax, xs[2], yr + 0.12, w, h, "residual\n" + r"$|x - \hat{x}|$", "box", "#ffffff")
    _box(ax, xs[2], ym - 0.48, w, h + 0.15, "or variance\nof T MC-dropout\npasses", "box", "#ffffff")
    _box(ax, xs[3], ym, w, h, "anomaly_map", "box", "#ffffff")
    _box(ax, xs[4], ym, w, h, "pred_score\n(L2 norm)", "box", "#ffffff")
    _box(ax, xs[3], yb, w, h, "pixel AUROC\nagainst gt_mask", "box", "#ffffff")
    _box(ax, xs[4], yb, w, h, "image AUROC\nagainst gt_label", "box", "#ffffff")
    _arrow(ax, (xs[0] + w / 2, ym), (xs[1] - w / 2, ym))
    _arrow(ax, (xs[1] + w / 2, ym + 0.1), (xs[2] - w / 2, yr + 0.12))
    _arrow(ax, (xs[1] + w / 2, ym - 0.1), (xs[2] - w / 2, ym - 0.48))
    _arrow(ax, (xs[2] + w / 2, yr + 0.12), (xs[3] - w / 2, ym + 0.1))
    _arrow(ax, (xs[2] + w / 2, ym - 0.48), (xs[3] - w / 2, ym - 0.1))
    _arrow(ax, (xs[3] + w / 2, ym), (xs[4] - w / 2, ym))
    _arrow(ax, (xs[3], ym - h / 2), (xs[3], yb + h / 2))
    _arrow(ax, (xs[4], ym - h / 2), (xs[4], yb + h / 2))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, 4.5)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(left=0, right=1, top=1, bottom=0)
    return fig
