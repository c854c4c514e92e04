"""The corruption explorer: an ipywidgets view of the Stain model and the others (book chapter 3).

``corruption_explorer(image)`` returns a widget box: choose the model, the seed, the stain's size range, grey range,
irregularity (jitter) and edge blur, and the image, the corrupted image and the mask update live.  ipywidgets is
imported only when the function is called (it belongs to the ``book`` extra).
"""

from __future__ import annotations

import io

import torch

from .noise import CORRUPTIONS, Stain, get_corruption

__all__ = ["corruption_explorer", "render_corruption"]


def render_corruption(
    image: torch.Tensor,
    name: str = "stain",
    seed: int = 0,
    size=(0.01, 0.12),
    level=(10 / 255, 220 / 255),
    jitter: float = 0.1,
    blur: float = 0.0,
    scale: float = 2.4,
):
    """Figure of ``image`` (C, H, W), its corruption by ``name`` and the mask; stain settings apply to ``stain``."""
    from .plotting import _plt, _show

    model = Stain(size=size, level=level, jitter=jitter, blur=blur) if name == "stain" else get_corruption(name)
    g = torch.Generator().manual_seed(int(seed))
    corrupted, mask = model(image[None], g)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(3 * scale, scale))
    _show(axes[0], image, "image")
    _show(axes[1], corrupted[0], f"{name}, seed {seed}")
    _show(axes[2], mask[0], f"mask ({mask.float().mean().item():.1%} of the pixels)")
    fig.tight_layout()
    return fig


def corruption_explorer(image: torch.Tensor):
    """An interactive explorer of the corruption models on ``image`` (C, H, W) in [0, 1]."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    style = {"description_width": "110px"}
    layout = w.Layout(width="420px")
    model = w.Dropdown(options=list(CORRUPTIONS), value="stain", description="model", style=style, layout=layout)
    seed = w.IntSlider(0, 0, 99, description="seed", style=style, layout=layout, continuous_update=False)
    size = w.FloatRangeSlider(
        value=(0.01, 0.12),
        min=0.005,
        max=0.3,
        step=0.005,
        description="semi-axes (side)",
        readout_format=".3f",
        style=style,
        layout=layout,
        continuous_update=False,
    )
    level = w.IntRangeSlider(
        value=(10, 220), min=0, max=255, description="grey level", style=style, layout=layout, continuous_update=False
    )
    jitter = w.FloatSlider(
        0.1,
        min=0.0,
        max=0.5,
        step=0.01,
        description="irregularity",
        style=style,
        layout=layout,
        continuous_update=False,
    )
    blur = w.FloatSlider(
        0.0, min=0.0, max=0.5, step=0.01, description="edge blur", style=style, layout=layout, continuous_update=False
    )
    picture = w.Image(format="png", layout=w.Layout(width="720px"))
    stain_only = [size, level, jitter, blur]

    def update(_=None):
        for control in stain_only:
            control.disabled = model.value != "stain"
        fig = render_corruption(
            image,
            model.value,
            seed.value,
            size.value,
            (level.value[0] / 255, level.value[1] / 255),
            jitter.value,
            blur.value,
        )
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        plt.close(fig)
        picture.value = buf.getvalue()

    for control in [model, seed, *stain_only]:
        control.observe(update, names="value")
    update()
    return w.VBox([w.HBox([w.VBox([model, seed, size]), w.VBox([level, jitter, blur])]), picture])
