"""Claims about the corruption explorer of stainlib.widgets (book chapter 3)."""

import matplotlib
import torch

from stainlib.widgets import corruption_explorer, render_corruption

matplotlib.use("Agg")


def controls(box):
    first, second = box.children[0].children
    named = {c.description: c for c in (*first.children, *second.children)}
    return named, box.children[1]


def test_explorer_redraws_when_a_control_moves_and_disables_stain_sliders_for_other_models():
    image = torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0))
    box = corruption_explorer(image)
    named, picture = controls(box)
    first = picture.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    named["seed"].value = 7
    assert picture.value != first
    named["model"].value = "drops"
    assert named["irregularity"].disabled and named["edge blur"].disabled
    named["model"].value = "stain"
    assert not named["irregularity"].disabled


def test_rendered_stain_follows_the_grey_range_and_size_of_the_sliders():
    image = torch.full((1, 64, 64), 0.5)
    fig = render_corruption(image, "stain", seed=1, size=(0.1, 0.1), level=(1.0, 1.0), jitter=0.0)
    corrupted = fig.axes[1].images[0].get_array()
    stain = corrupted != 0.5
    # White (1.0) with the slight pixel noise, clipped at 1: every stained pixel is close to white.
    assert corrupted[stain].min() > 0.9 and corrupted.max() == 1.0
    area = stain.mean()
    assert 0.02 < area < 0.04  # a circle of radius 6.4 px on 64 x 64: pi * 6.4^2 / 4096 = 0.031
