"""Claims about stainlib.models: the paper's AESc and AE, and Monte-Carlo dropout (book chapter 4)."""

import pytest
import torch

from stainlib.models import AE, AESc, build_model


def conv(c_in, c_out, k=5):
    return c_in * c_out * k * k + c_out


def test_default_aesc_parameter_count_matches_the_hand_count():
    widths = [16, 32, 64, 128, 256, 512]
    encoder = sum(conv(a, b) + 2 * b for a, b in zip([1, *widths[:-1]], widths))  # conv + batch norm
    dec_in, dec_out = widths[::-1], [256, 128, 64, 32, 16, 8]
    decoder = sum(conv(a, b) + 2 * b for a, b in zip(dec_in, dec_out))
    head = conv(8, 1)
    expected = encoder + decoder + head
    assert sum(p.numel() for p in AESc().parameters()) == expected == 8_737_937  # "8.74 M"
    # AE has the same weights: the skips are additions, not layers.
    assert sum(p.numel() for p in AE().parameters()) == expected


def test_a_256px_input_gives_a_4x4x512_latent_and_an_image_in_0_1():
    model = AESc().eval()
    x = torch.rand(2, 1, 256, 256)
    latent = x
    for block in model.encoder:
        latent = block(latent)
    assert latent.shape == (2, 512, 4, 4)
    y = model(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1


def test_with_equal_weights_ae_and_aesc_differ_only_through_the_skips():
    torch.manual_seed(0)
    aesc = AESc().eval()
    ae = AE().eval()
    ae.load_state_dict(aesc.state_dict())
    x = torch.rand(1, 1, 64, 64)
    assert not torch.allclose(aesc(x), ae(x))
    aesc.skips = False  # the same module with its additions switched off is exactly AE
    assert torch.equal(aesc(x), ae(x))


def test_mc_mode_samples_differ_while_normal_mode_is_deterministic_and_batch_norm_stays_in_eval():
    torch.manual_seed(0)
    model = AESc().eval()
    x = torch.rand(2, 1, 64, 64)
    assert torch.equal(model(x), model(x))
    with model.mc_sampling():
        a, b = model(x), model(x)
        assert not torch.equal(a, b)
        assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(model(x), model(x))  # switched off again on exit
    model.mc_dropout(True)
    assert not torch.equal(model(x), model(x))
    model.mc_dropout(False)


def test_dropout_rates_rise_with_depth_as_in_the_paper_and_are_off_in_training_by_default():
    model = AESc()
    assert [m.p for m in model.drop] == [0.0, 0.0, 0.1, 0.2, 0.3, 0.4]
    model.train()
    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    ref = AESc()
    ref.load_state_dict(model.state_dict())
    ref.train()
    assert torch.equal(model(x), ref(x))  # same weights, training mode: no random dropout
    trained_with_dropout = AESc(train_dropout=True).train()
    assert not torch.equal(trained_with_dropout(x), trained_with_dropout(x))


@pytest.mark.parametrize("side", [128, 512])
def test_128_and_512_px_inputs_work(side):
    with torch.no_grad():
        y = AESc().eval()(torch.rand(1, 1, side, side))
    assert y.shape == (1, 1, side, side)


def test_rgb_and_smaller_configurations_work():
    model = AESc(in_channels=3, depth=4, base_width=8, kernel_size=3, dropout=[0, 0.1, 0.2, 0.3]).eval()
    assert model(torch.rand(2, 3, 48, 32)).shape == (2, 3, 48, 32)


@pytest.mark.parametrize("shape", [(1, 1, 100, 128), (1, 1, 128, 96)])
def test_sides_not_divisible_by_2_to_the_depth_are_refused(shape):
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 64"):
        AESc()(torch.rand(shape))


def test_wrong_channel_count_and_unknown_model_are_refused():
    with pytest.raises(ValueError, match="expected input"):
        AESc()(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="known: aesc, ae"):
        build_model("unet")
