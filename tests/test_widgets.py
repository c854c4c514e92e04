"""Claims about the corruption explorer of stainlib.widgets (book chapter 3): static and live modes."""

import io

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from stainlib.noise import PAPER_CORRUPTIONS, Stain, get_corruption
from stainlib.widgets import GAP, STAIN_PRESETS, corruption_explorer, preview_image, render_corruption, render_preview

matplotlib.use("Agg")

SEEDS = 3  # pre-rendered seeds in these tests (the book uses the default, 8)


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def explorer(image):
    box = corruption_explorer(image, seeds=SEEDS, side=64)
    yield box
    box.close_all()


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def as_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8)[0].numpy()


def test_every_model_seed_and_stain_preset_is_prerendered_once_and_none_once():
    box = corruption_explorer(torch.full((1, 64, 64), 0.5), seeds=SEEDS, side=64)
    expected = {(n, None, s) for n in PAPER_CORRUPTIONS if n not in ("none", "stain") for s in range(SEEDS)}
    expected |= {("stain", p, s) for p in STAIN_PRESETS for s in range(SEEDS)} | {("none", None, 0)}
    assert set(box.parts.renders) == expected
    box.close_all()


@pytest.mark.parametrize("name,preset", [("stain", "paper"), ("stain", "large, dark"), ("drops", None), ("mix2", None)])
def test_prerendered_picture_is_the_models_corruption_with_that_seed_beside_its_mask(explorer, image, name, preset):
    seed = 2
    png = explorer.parts.renders[(name, preset, seed)].value
    if name == "stain":
        size, level, jitter = STAIN_PRESETS[preset]
        model = Stain(size=size, level=(level[0] / 255, level[1] / 255), jitter=jitter)
    else:
        model = get_corruption(name)
    corrupted, mask = model(image[None], torch.Generator().manual_seed(seed))
    pixels = decode(png)
    assert pixels.shape == (64, 2 * 64 + GAP)
    np.testing.assert_array_equal(pixels[:, :64], as_uint8(corrupted[0]))
    np.testing.assert_array_equal(pixels[:, 64 + GAP :], as_uint8(mask[0].float()))
    assert mask.float().sum() > 0, "the chosen seed draws something"


def test_two_seeds_and_two_presets_give_different_pictures(explorer):
    renders = explorer.parts.renders
    assert renders[("stain", "paper", 0)].value != renders[("stain", "paper", 1)].value
    assert renders[("stain", "paper", 0)].value != renders[("stain", "irregular", 0)].value


def test_browser_links_map_the_model_preset_and_seed_controls_onto_the_matching_stack_pages(explorer):
    p = explorer.parts
    names, presets = list(PAPER_CORRUPTIONS), list(STAIN_PRESETS)
    by_target = {link.target[0].model_id: link.source for link in p.links}
    assert by_target[p.rendered.model_id] == (p.model, "index")
    assert p.model.options == tuple(names) and p.rendered.selected_index == names.index(p.model.value)
    stain_stack = p.rendered.children[names.index("stain")]
    assert by_target[stain_stack.model_id] == (p.preset, "index")
    assert p.preset.options == tuple(presets)

    def page(stack, index):  # the render shown on a seed stack's page: a VBox (caption, image)
        return stack.children[index].children[1]

    seed_stacks = [stain_stack.children[i] for i in range(len(presets))]
    seed_stacks += [p.rendered.children[i] for i, n in enumerate(names) if n not in ("none", "stain")]
    assert all(by_target[s.model_id] == (p.seed, "value") for s in seed_stacks)
    for i, preset in enumerate(presets):
        for s in range(SEEDS):
            assert page(stain_stack.children[i], s) is p.renders[("stain", preset, s)]
    for i, name in enumerate(names):
        if name not in ("none", "stain"):
            assert [page(p.rendered.children[i], s) for s in range(SEEDS)] == [
                p.renders[(name, None, s)] for s in range(SEEDS)
            ]
    assert p.seed.max == SEEDS - 1, "the static page's seed slider stops at the last pre-rendered seed"


def test_static_mode_shows_the_prerendered_pictures_and_disables_the_sliders_that_need_a_kernel(explorer):
    p = explorer.parts
    assert p.view.selected_index == 0 and p.view.children[0].children[1] is p.rendered
    assert all(c.disabled for c in (p.size, p.level, p.jitter, p.blur))
    assert p.picture.value == b"", "no live picture is rendered into the saved state"
    assert "Colab" in p.note.value
    # Dragging the Stain's sliders needs Python: the title says so, and the sliders the static page shows are disabled.
    assert "live only" in p.fine_title.value
    assert p.sliders.selected_index == 0 and p.sliders.children[0].children == p.preset_sliders["paper"]


def test_static_stain_sliders_show_each_presets_values_and_the_preset_selects_them_in_the_browser(explorer):
    p = explorer.parts
    presets = list(STAIN_PRESETS)
    by_target = {link.target[0].model_id: link.source for link in p.links}
    assert by_target[p.sliders.model_id] == (p.preset, "index"), "the preset picks the sliders' page with no kernel"
    for i, name in enumerate(presets):
        size, level, jitter, blur = p.sliders.children[i].children
        (lo, hi), grey, irregularity = STAIN_PRESETS[name]
        assert size.value == (round(100 * lo), round(100 * hi)), "the semi-axes in % of the side"
        assert (level.value, jitter.value, blur.value) == (grey, irregularity, 0.0)
        assert all(c.disabled and c.readout for c in (size, level, jitter, blur)), "disabled, with their values shown"
    assert p.sliders.children[len(presets)].children == (p.size, p.level, p.jitter, p.blur), "then the live ones"


def test_semi_axes_slider_is_in_percent_of_the_side_and_the_picture_uses_the_fraction(explorer, monkeypatch):
    # A readout gets about 72 px in a 300 px slider: "0.010 - 0.120" was clipped, "0.01 - 0.12" takes 73 px in DejaVu
    # Sans; "12 - 25" fits.  The browser tests check the fit itself (test_site offline, test_lab live).
    import stainlib.widgets

    for (lo, hi), _, _ in STAIN_PRESETS.values():
        assert abs(100 * lo - round(100 * lo)) < 1e-9 and abs(100 * hi - round(100 * hi)) < 1e-9, "whole percents"
    drawn = []
    real = stainlib.widgets.render_corruption
    monkeypatch.setattr(stainlib.widgets, "render_corruption", lambda *a, **k: drawn.append(a) or real(*a, **k))
    p = explorer.parts
    explorer.go_live()
    p.size.value = (5, 20)
    assert drawn[-1][3] == (0.05, 0.20), "the Stain draws semi-axes of 5 to 20 % of the side"


def test_the_probe_that_a_front_end_sets_switches_to_live_mode(explorer):
    p = explorer.parts
    p.probe.value = 1  # what the browser-side jsdlink does as soon as a front end with a kernel loads the widgets
    assert p.view.selected_index == 1
    assert p.picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(link.comm is None for link in p.links), "the browser-side links are removed"
    assert p.seed.max == 99
    assert not any(c.disabled for c in (p.size, p.level, p.jitter, p.blur))
    assert "Live" in p.note.value
    assert all(c.readout for c in (p.size, p.level, p.jitter, p.blur)) and "live only" not in p.fine_title.value
    assert p.sliders.selected_index == len(STAIN_PRESETS), "the live sliders replace the preset's"


def test_live_explorer_redraws_when_a_control_moves_and_disables_stain_controls_for_other_models(explorer):
    p = explorer.parts
    explorer.go_live()
    first = p.picture.value
    p.seed.value = 57
    assert p.picture.value != first
    p.model.value = "drops"
    assert p.jitter.disabled and p.blur.disabled and p.preset.disabled
    p.model.value = "stain"
    assert not p.jitter.disabled and not p.preset.disabled


def test_live_explorer_shows_the_papers_and_the_codes_reading_side_by_side_for_models_that_have_both(
    explorer, monkeypatch
):
    import stainlib.corruption_figures

    drawn = []
    real = stainlib.corruption_figures.readings_figure
    monkeypatch.setattr(
        stainlib.corruption_figures, "readings_figure", lambda *a, **k: drawn.append((a, k)) or real(*a, **k)
    )
    p = explorer.parts
    assert p.compare.disabled, "static mode cannot draw the code's reading"
    explorer.go_live()
    assert p.compare.disabled, "the Stain has no code reading"
    p.model.value = "drops"
    assert not p.compare.disabled
    alone = p.picture.value
    p.compare.value = True
    assert p.picture.value != alone
    assert drawn[-1][0][1] == (("drops", "drops-code"),) and drawn[-1][0][2] == p.seed.value
    p.model.value = "gaussian-0.4"
    assert drawn[-1][0][1] == (("gaussian-0.4", "gaussian-0.4-code"),)
    p.model.value = "stain"
    assert p.compare.disabled and len(drawn) == 2, "the Stain is drawn alone even with the box ticked"


def test_touching_a_control_switches_to_live_mode_even_without_the_probe(explorer):
    p = explorer.parts
    p.model.value = "scratch"
    assert p.view.selected_index == 1 and p.seed.max == 99


def test_live_preset_sets_the_stain_sliders_and_moving_a_slider_clears_it(explorer):
    p = explorer.parts
    explorer.go_live()
    p.preset.value = "large, dark"
    size, level, jitter = STAIN_PRESETS["large, dark"]
    assert p.size.value == (12, 25) and size == (0.12, 0.25), "in % of the side"
    assert p.level.value == level and p.jitter.value == jitter
    before = p.picture.value
    p.jitter.value = 0.3
    assert p.preset.value is None and p.picture.value != before
    p.jitter.value = jitter
    assert p.preset.value == "large, dark", "settings equal to a preset select it again"


def test_preview_image_downscales_by_area_to_the_longest_side_and_keeps_small_images():
    x = torch.rand(1, 128, 64, generator=torch.Generator().manual_seed(1))
    small = preview_image(x, side=64)
    assert small.shape == (1, 64, 32)
    assert torch.allclose(small[0, 0, 0], x[0, :2, :2].mean(), atol=1e-6)
    assert torch.equal(preview_image(x, side=256), x)


def test_bad_input_is_refused_with_a_clear_error(image):
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        corruption_explorer(image[0])
    with pytest.raises(ValueError, match="seeds"):
        corruption_explorer(image, seeds=0)
    with pytest.raises(ValueError, match="side"):
        corruption_explorer(image, side=16)
    with pytest.raises(ValueError, match="preset"):
        render_preview(image, "stain", 0, "huge")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corruption_explorer(image * 2)


def test_rendered_stain_follows_the_grey_range_and_size_of_the_sliders():
    image = torch.full((1, 64, 64), 0.5)
    fig = render_corruption(image, "stain", seed=1, size=(0.1, 0.1), level=(1.0, 1.0), jitter=0.0)
    corrupted = fig.axes[1].images[0].get_array()
    stain = corrupted != 0.5
    # White (1.0) with the slight pixel noise, clipped at 1: every stained pixel is close to white.
    assert corrupted[stain].min() > 0.9 and corrupted.max() == 1.0
    area = stain.mean()
    assert 0.02 < area < 0.04  # a circle of radius 6.4 px on 64 x 64: pi * 6.4^2 / 4096 = 0.031
