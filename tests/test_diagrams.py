"""Claims about the diagrams drawn from code (stainlib.diagrams): the architecture follows the model it is given."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import FancyArrowPatch

from stainlib.diagrams import FONT, WIDTH, architecture_figure, pipeline_figure
from stainlib.models import AE, AESc


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(ax, gid):
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def arrows(ax, gid):
    return [p for p in ax.patches if isinstance(p, FancyArrowPatch) and p.get_gid() == gid]


def channels(labels):
    """The ``N`` of every ``... px × N`` label, in drawing order."""
    return [int(m.group(1)) for label in labels for m in [re.search(r"× (\d+)$", label.splitlines()[0])] if m]


def test_aesc_figure_has_one_skip_arrow_per_skip_level_and_the_ae_figure_none():
    fig = architecture_figure({"AE": AE(), "AESc": AESc()})
    ae_ax, aesc_ax = fig.axes
    assert arrows(ae_ax, "skip") == []
    skip_levels = sum(1 for j in range(len(AESc().decoder)) if len(AESc().encoder) - 2 - j >= 0)
    assert len(arrows(aesc_ax, "skip")) == skip_levels == 5  # the paper's 8 to 128 px
    assert [t for t in texts(aesc_ax, "decoder")] == [t for t in texts(ae_ax, "decoder")]  # same network otherwise


def test_channel_labels_match_the_models_convolution_widths_for_depth_5_and_width_8():
    model = AESc(depth=5, base_width=8, dropout=[0.0] * 5)
    ax = architecture_figure(model).axes[0]
    assert channels(texts(ax, "encoder")) == [b[0].out_channels for b in model.encoder[:-1]] == [8, 16, 32, 64]
    assert channels(texts(ax, "decoder")) == [b[0].out_channels for b in model.decoder]
    latent = texts(ax, "latent")[0]
    assert latent.startswith(f"latent 4×4×{model.encoder[-1][0].out_channels}")  # 128 px input by default
    assert texts(ax, "input")[0].splitlines()[1] == "128 px × 1"
    assert len(arrows(ax, "skip")) == len(model.decoder) == 4


def test_resolution_labels_follow_the_input_size_given():
    ax = architecture_figure(AESc(), size=512).axes[0]
    sides = [int(label.split(" px")[0]) for label in texts(ax, "encoder")]
    assert sides == [256, 128, 64, 32, 16]
    assert texts(ax, "latent")[0].startswith("latent 8×8×512")


def test_dropout_labels_follow_set_dropout():
    model = AESc()
    paper = texts(architecture_figure(model).axes[0], "dropout")
    assert paper == [f"MC dropout {p:g}" for p in (0.1, 0.2, 0.3, 0.4)]  # encoder only, as model.drop holds
    model.set_dropout("code")
    code = texts(architecture_figure(model).axes[0], "dropout")
    rates = [m.p for m in [*model.drop, *model.dec_drop] if m.p > 0]
    assert code == [f"MC dropout {p:g}" for p in rates]
    assert len(code) > len(paper)  # the code's reading also drops out in the decoder


def test_a_model_without_dropout_has_no_dropout_label():
    ax = architecture_figure(AE(dropout=[0.0] * 6)).axes[0]
    assert texts(ax, "dropout") == []


def test_legacy_decoder_draws_its_extra_full_resolution_block_without_a_skip():
    model = AESc(decoder="legacy")
    ax = architecture_figure(model).axes[0]
    assert len(texts(ax, "decoder")) == len(model.decoder) == 6
    assert len(arrows(ax, "skip")) == 5


def test_architecture_figure_draws_into_a_given_axes_and_refuses_what_is_not_a_model():
    fig, ax = plt.subplots()
    assert architecture_figure(AE(), ax=ax) is fig
    assert texts(ax, "latent")
    with pytest.raises(TypeError, match="AutoEncoder"):
        architecture_figure(object())
    with pytest.raises(ValueError, match="ax draws one model"):
        architecture_figure({"AE": AE(), "AESc": AESc()}, ax=ax)


@pytest.mark.parametrize("draw", [lambda: architecture_figure({"AE": AE(), "AESc": AESc()}), pipeline_figure])
def test_figures_fit_the_content_width_with_no_font_under_8_pt(draw):
    fig = draw()
    assert fig.get_figwidth() <= WIDTH
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.texts]
    assert sizes and min(sizes) >= FONT >= 8


def test_pipeline_figure_names_the_project_vocabulary_and_both_metrics():
    words = " ".join(t.get_text() for t in pipeline_figure().axes[0].texts)
    for word in ("Stain", "MSE", "anomaly_map", "pred_score", "gt_mask", "gt_label", "image AUROC", "pixel AUROC"):
        assert word in words, word
    assert "MC-dropout" in words and "residual" in words
