"""The corruption explorer: an ipywidgets view of the Stain model and the others (book chapter 2, "Corruptions").

``corruption_explorer(image)`` returns one widget box that works in two modes.

* **Static mode**, for the online book, where the page holds the saved widget state and no kernel runs.  The explorer
  pre-renders what a reader can choose there: every corruption model of the paper's readings
  (:data:`~stainlib.noise.PAPER_CORRUPTIONS`; the ``-code`` readings would push the page past its 3 MB budget, and
  chapter 2 shows them beside the paper's in a figure instead) x the seeds ``0 .. seeds - 1`` (8 by default), and for
  the Stain each of the :data:`STAIN_PRESETS` of size, grey level and irregularity.  The controls are linked to the
  pictures in the browser (``jsdlink``): the model dropdown selects a page of an outer ``Stack``, the Stain preset a
  page of the Stain's ``Stack``, and the seed slider a page of every per-model ``Stack`` of seeds.  So choosing a model,
  a preset or a seed shows the matching picture with no kernel.  The fine Stain sliders (size, grey level, irregularity,
  edge blur) cannot redraw there: dragging them needs Python.  So the static page shows, per preset, a set of disabled
  sliders at the preset's values, with their readouts, in a ``Stack`` whose page the preset selects (``jsdlink``
  again): a preset moves the sliders to its values, and the readouts always match the picture.
* **Live mode**, under a kernel (Jupyter, Colab, Binder): every control is live, the seed goes up to 99, and each
  change redraws the picture with :func:`render_corruption`, as the explorer always did.  For a model with a
  ``-code`` reading (Drops, Gaussian, Mix1), the "authors' code reading" box shows the paper's reading and the
  code's side by side, with the same seed (:func:`stainlib.corruption_figures.readings_figure`).

How the explorer knows that a kernel is listening: a hidden directional link (``jsdlink``) copies 1 into a hidden
"probe" integer as soon as a browser front end loads the widgets.  Under a kernel that copy reaches Python, whose
observer switches to live mode (and removes the browser-side links).  In the static page nobody listens, and the
explorer stays static.  Touching any control under a kernel switches to live mode too, for front ends that do not run
links.

Page weight (the choice, stated): the pre-rendered pictures are the corrupted image and its mask, side by side, at
``side`` = 128 px at most (the image is first downscaled with area averaging to that side, and corrupted there), as
PNG.  With 8 seeds: 8 models x 8 seeds, the Stain's 4 presets x 8 seeds, and one picture of ``none`` (it draws
nothing, whatever the seed), 97 pictures.  On a 256 px grey image of the book's synthetic data the explorer's saved
state weighs about 1.9 MB (the site test prints its share of the page and holds it under the 3 MB budget).  Live mode
corrupts the full-size image, so a seed draws a similar corruption in both modes, not the same pixels.

ipywidgets is imported only when the function is called (it belongs to the ``book`` extra).
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import torch

from .corruption import check_image
from .noise import CODE_READINGS, PAPER_CORRUPTIONS, get_corruption
from .stain import Stain

CODE_READING_OF = {paper: code for code, paper in CODE_READINGS.items()}  # "drops" -> "drops-code", ...

__all__ = ["STAIN_PRESETS", "corruption_explorer", "render_corruption", "render_preview"]

STAIN_PRESETS = {
    # name: (semi-axes as fractions of the side, grey level range out of 255, irregularity (jitter))
    "paper": ((0.01, 0.12), (10, 220), 0.1),
    "large, dark": ((0.12, 0.25), (0, 60), 0.1),
    "small, light": ((0.01, 0.05), (190, 255), 0.1),
    "irregular": ((0.05, 0.15), (10, 220), 0.4),
}
"""The Stain settings pre-rendered for the static page; ``paper`` is the paper's (and the sliders' default)."""


def _percent(size) -> tuple[int, int]:
    """Semi-axes as fractions of the side -> in whole percent (the explorer's slider)."""
    return tuple(round(100 * x) for x in size)


def _describe(preset: str) -> str:
    (lo, hi), (dark, light), jitter = _percent(STAIN_PRESETS[preset][0]), *STAIN_PRESETS[preset][1:]
    return f"semi-axes {lo} to {hi} % of the side, grey {dark} to {light}, irregularity {jitter:g}"


def _stain(size, level, jitter, blur=0.0) -> Stain:
    return Stain(size=size, level=level, jitter=jitter, blur=blur)


def _preset_model(name: str, preset: str | None):
    if name != "stain":
        return get_corruption(name)
    size, level, jitter = STAIN_PRESETS[preset or "paper"]
    return _stain(size, (level[0] / 255, level[1] / 255), jitter)


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

    model = _stain(size, level, jitter, blur) if name == "stain" else get_corruption(name)
    g = torch.Generator().manual_seed(int(seed))
    corrupted, mask = model(image[None], g)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(3 * scale, scale))
    _show(axes[0], image, "image")
    _show(axes[1], corrupted[0], f"{name}, seed {seed}")
    _show(axes[2], mask[0].float(), f"mask ({mask.float().mean().item():.1%} of the pixels)")
    fig.tight_layout()
    return fig


def _check_single_image(image) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be one (C, H, W) tensor in [0, 1], got {shape}")
    check_image(image[None])


def preview_image(image: torch.Tensor, side: int = 128) -> torch.Tensor:
    """``image`` (C, H, W) downscaled by area averaging so that its longer side is at most ``side`` pixels."""
    _check_single_image(image)
    h, w = image.shape[-2:]
    if max(h, w) <= side:
        return image.detach().float().cpu()
    size = (max(1, round(h * side / max(h, w))), max(1, round(w * side / max(h, w))))
    return torch.nn.functional.interpolate(image.detach().float().cpu()[None], size=size, mode="area")[0]


def _png(pixels: torch.Tensor) -> bytes:
    """PNG bytes of a (C, H, W) tensor in [0, 1], C = 1 (grey) or 3 (RGB)."""
    import numpy as np
    from PIL import Image

    data = (np.clip(pixels.detach().cpu().numpy(), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)  # rounded to nearest
    array = data[0] if data.shape[0] == 1 else np.ascontiguousarray(data.transpose(1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="png", optimize=True)
    return buf.getvalue()


GAP = 4  # white pixels between the corrupted image and its mask in a preview


def render_preview(small: torch.Tensor, name: str, seed: int, preset: str | None = None) -> tuple[bytes, float]:
    """The static explorer's picture: ``small`` (C, H, W) corrupted by ``name`` with ``seed``, a gap, and the mask.

    ``preset`` names one of :data:`STAIN_PRESETS` (the Stain only; default ``paper``).  Returns the PNG bytes and the
    fraction of the pixels that the mask covers.  ``small`` is used as it is: pass :func:`preview_image`'s output.
    """
    _check_single_image(small)
    if preset is not None and preset not in STAIN_PRESETS:
        raise ValueError(f"unknown Stain preset {preset!r}; known: {', '.join(STAIN_PRESETS)}")
    corrupted, mask = _preset_model(name, preset)(small[None], torch.Generator().manual_seed(int(seed)))
    mask = mask[0].float().expand_as(corrupted[0])
    gap = torch.ones(small.shape[0], small.shape[1], GAP)
    return _png(torch.cat([corrupted[0], gap, mask], dim=2)), mask.mean().item()


def corruption_explorer(image: torch.Tensor, *, seeds: int = 8, side: int = 128):
    """The explorer of the corruption models on ``image`` (C, H, W) in [0, 1]: static in the online book, live under
    a kernel (see the module docstring).

    ``seeds`` and ``side`` size the static mode: the seeds pre-rendered and the longest side of the pictures.  The
    returned ``VBox`` also carries ``.parts``, a namespace of its widgets (``model``, ``seed``, ``preset``, ``size``,
    ``level``, ``jitter``, ``blur``, ``compare``, ``fine_title``, ``note``, ``view``, ``rendered``, ``picture``,
    ``renders``, ``links``, ``probe``; ``sliders``, the stack of the static sliders of each preset and the live ones;
    ``preset_sliders``, the static sliders of each preset), and ``.go_live()``, which switches to live mode as a
    kernel's first message does.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    _check_single_image(image)
    if not 1 <= int(seeds) <= 100:
        raise ValueError(f"seeds must lie in [1, 100], got {seeds}")
    if int(side) < 32:
        raise ValueError(f"side must be at least 32 px, got {side}")
    seeds, names, presets = int(seeds), list(PAPER_CORRUPTIONS), list(STAIN_PRESETS)

    # Two columns of 300 px fit the book's content column (about 690 px) with the range readouts; 420 px were cut.
    # A 300 px slider leaves its readout 72 px: "0.010 - 0.120" was clipped, and "0.01 - 0.12" takes 73 px in DejaVu
    # Sans (a Linux default).  So the semi-axes are in percent of the side ("1 - 12", as the chapter gives them).
    style = {"description_width": "80px"}
    layout = w.Layout(width="300px")
    common = {"style": style, "layout": layout, "continuous_update": False}
    model = w.Dropdown(options=names, value="stain", description="model", style=style, layout=layout)
    # Static mode: only the pre-rendered seeds; live mode widens the range to 0 .. 99.
    seed = w.IntSlider(0, 0, seeds - 1, description="seed", **common)
    preset = w.ToggleButtons(
        options=presets,
        value="paper",
        description="Stain preset",
        style={"description_width": "105px", "button_width": "95px"},
    )

    def stain_sliders(name: str, disabled: bool):
        """The fine Stain sliders (semi-axes, grey level, irregularity, edge blur), set to preset ``name``."""
        size_, level_, jitter_ = STAIN_PRESETS[name]
        fixed = {**common, "disabled": disabled}
        return (
            w.IntRangeSlider(value=_percent(size_), min=1, max=30, description="semi-axes", **fixed),
            w.IntRangeSlider(value=level_, min=0, max=255, description="grey level", **fixed),
            w.FloatSlider(jitter_, min=0.0, max=0.5, step=0.01, description="irregularity", **fixed),
            w.FloatSlider(0.0, min=0.0, max=0.5, step=0.01, description="edge blur", **fixed),
        )

    # Live mode's sliders, disabled until a kernel answers: the static page cannot redraw them.
    size, level, jitter, blur = stain_sliders("paper", disabled=True)
    # Static mode shows, instead, one page of sliders per preset, set to its values (disabled: dragging them needs
    # Python).  The preset picks the page in the browser, so a preset moves the sliders to its settings offline too.
    preset_sliders = {name: stain_sliders(name, disabled=True) for name in presets}
    sliders = w.Stack(
        [w.VBox(list(preset_sliders[name])) for name in presets] + [w.VBox([size, level, jitter, blur])],
        selected_index=0,
    )
    # Live mode only: the model as the paper's text reads it, beside the authors' code's reading.
    compare = w.Checkbox(
        False, description="beside it: the authors' code reading", indent=False, layout=layout, disabled=True
    )
    fine = [size, level, jitter, blur, compare]
    fine_title = w.HTML(
        "<b>Stain settings</b> of the preset, semi-axes in % of the side (dragging them is <b>live only</b>: run the"
        " chapter in Jupyter, Colab or Binder):",
        layout=layout,
    )
    note = w.HTML(
        "<i>Pre-rendered pictures: choose the model, a seed (0 to "
        f"{seeds - 1}) or a Stain preset. Run the chapter (Jupyter, Colab or Binder) to make every slider live.</i>"
    )

    # The pre-rendered pictures, in nested stacks: model -> (Stain: preset ->) seed.
    small = preview_image(image, side)
    strip_width = f"{2 * (2 * small.shape[2] + GAP)}px"
    image_layout, caption_layout = w.Layout(width=strip_width), w.Layout(margin="0 0 2px 0")
    renders: dict[tuple[str, str | None, int], w.Image] = {}
    links = []

    def pictures(name, pre):
        pages = []
        for s in range(1 if name == "none" else seeds):
            png, covered = render_preview(small, name, s, pre)
            label = f"{name}" + (f" ({pre} preset: {_describe(pre)})" if pre else "") + f", seed {s}"
            picture_ = w.Image(value=png, format="png", layout=image_layout)
            picture_.add_class(f"stainlib-render-{name}-{presets.index(pre) if pre else 0}-{s}")
            renders[(name, pre, s)] = picture_
            caption = f"{label}: corrupted and mask ({covered:.1%} of the pixels)"
            pages.append(w.VBox([w.HTML(f"<b>{caption}</b>", layout=caption_layout), picture_]))
        stack = w.Stack(pages, selected_index=0)
        if name != "none":
            links.append(w.jsdlink((seed, "value"), (stack, "selected_index")))
        return stack

    per_model = []
    for name in names:
        if name == "stain":
            by_preset = w.Stack([pictures(name, p) for p in presets], selected_index=0)
            links.append(w.jsdlink((preset, "index"), (by_preset, "selected_index")))
            per_model.append(by_preset)
        else:
            per_model.append(pictures(name, None))
    links.append(w.jsdlink((preset, "index"), (sliders, "selected_index")))
    rendered = w.Stack(per_model, selected_index=names.index("stain"))
    links.append(w.jsdlink((model, "index"), (rendered, "selected_index")))
    original = w.VBox(
        [w.HTML("<b>image</b>", layout=caption_layout), w.Image(value=_png(small), format="png")],
        layout=w.Layout(margin="0 12px 0 0"),
    )
    original.children[1].layout.width = f"{2 * small.shape[2]}px"
    picture = w.Image(format="png", layout=w.Layout(width="720px"))
    picture.add_class("stainlib-live-picture")  # the picture that live mode redraws (the browser tests find it)
    view = w.Stack([w.HBox([original, rendered]), picture], selected_index=0)

    # The kernel probe: the front end copies 1 into ``probe`` when it loads the links; only a kernel sees it.  The
    # probe is in the box, hidden, so that a browser test can see that the front end did set it.
    probe_source, probe = w.IntText(1), w.IntText(0, layout=w.Layout(display="none"))
    probe.add_class("stainlib-kernel-probe")
    probe_link = w.jsdlink((probe_source, "value"), (probe, "value"))

    def redraw():
        for control in [preset, size, level, jitter, blur]:
            control.disabled = model.value != "stain"
        compare.disabled = model.value not in CODE_READING_OF
        if compare.value and model.value in CODE_READING_OF:
            from .corruption_figures import readings_figure

            fig = readings_figure(image, ((model.value, CODE_READING_OF[model.value]),), seed.value)
        else:
            fig = render_corruption(
                image,
                model.value,
                seed.value,
                (size.value[0] / 100, size.value[1] / 100),
                (level.value[0] / 255, level.value[1] / 255),
                jitter.value,
                blur.value,
            )
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        plt.close(fig)
        picture.value = buf.getvalue()

    state = {"live": False, "applying_preset": False}

    def go_live(_=None):
        """Switch to live mode: drop the browser-side links, widen the seed range, redraw from Python."""
        if state["live"]:
            return
        state["live"] = True
        for link in [*links, probe_link]:
            link.unlink()
        seed.max = 99
        sliders.selected_index = len(presets)  # the live sliders, in place of the preset's
        fine_title.value = "<b>Stain settings</b> (live), semi-axes in % of the side:"
        note.value = "<i>Live: every control redraws the picture.</i>"
        redraw()
        view.selected_index = 1

    def apply_preset(name):
        """Set the live sliders to preset ``name``'s values (no redraw)."""
        size_, level_, jitter_ = STAIN_PRESETS[name]
        state["applying_preset"] = True
        try:
            size.value, level.value, jitter.value, blur.value = _percent(size_), level_, jitter_, 0.0
        finally:
            state["applying_preset"] = False

    def on_preset(change):
        if not state["live"]:
            go_live()
        if change["new"] is None:
            return
        apply_preset(change["new"])
        redraw()

    def on_control(_=None):
        if not state["live"]:
            go_live()
            return
        if state["applying_preset"]:
            return
        current = (tuple(size.value), tuple(level.value), jitter.value)
        matching = [p for p, (s, g, j) in STAIN_PRESETS.items() if (_percent(s), g, j) == current and blur.value == 0.0]
        preset.unobserve(on_preset, names="value")
        preset.value = matching[0] if matching else None
        preset.observe(on_preset, names="value")
        redraw()

    for control in [model, seed, *fine]:
        control.observe(on_control, names="value")
    preset.observe(on_preset, names="value")
    probe.observe(go_live, names="value")

    box = w.VBox([w.HBox([w.VBox([model, seed, preset]), w.VBox([fine_title, sliders, compare])]), note, view, probe])
    box.parts = SimpleNamespace(
        model=model,
        seed=seed,
        preset=preset,
        size=size,
        level=level,
        jitter=jitter,
        blur=blur,
        note=note,
        view=view,
        rendered=rendered,
        picture=picture,
        renders=renders,
        links=links,
        probe=probe,
        compare=compare,
        fine_title=fine_title,
        sliders=sliders,
        preset_sliders=preset_sliders,
    )
    box.go_live = go_live
    return box
