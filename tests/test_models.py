"""Claims about stainlib.models: the paper's AESc and AE, and Monte-Carlo dropout (book chapter 4)."""

import pytest
import torch

from stainlib.models import AE, AESc, MCDropout, build_model


def conv(c_in, c_out, k=5):
    return c_in * c_out * k * k + c_out


def _hand_count(decoder):
    widths = [16, 32, 64, 128, 256, 512]
    encoder = sum(conv(a, b) + 2 * b for a, b in zip([1, *widths[:-1]], widths))  # conv + batch norm
    dec_in, dec_out = widths[::-1], [256, 128, 64, 32, 16, 8]
    if decoder == "paper":  # five blocks, then the output convolution 16 -> 1: six decoder convolutions
        dec_in, dec_out = dec_in[:-1], dec_out[:-1]
    return sum(conv(a, b) + 2 * b for a, b in zip(dec_in, dec_out)) + encoder + conv(dec_out[-1], 1)


def test_default_aesc_parameter_count_matches_the_hand_count_of_the_papers_six_convolution_decoder():
    expected = _hand_count("paper")
    assert sum(p.numel() for p in AESc().parameters()) == expected == 8_734_913
    assert len(AESc().decoder) + 1 == 6  # five blocks and the head: "6 layers of convolution"
    # AE has the same weights: the skips are additions, not layers.
    assert sum(p.numel() for p in AE().parameters()) == expected


def test_legacy_decoder_keeps_the_extra_full_resolution_block_and_its_parameter_count():
    model = AESc(decoder="legacy").eval()
    assert sum(p.numel() for p in model.parameters()) == _hand_count("legacy") == 8_737_937  # the committed runs
    assert len(model.decoder) == 6 and model.head.in_channels == 8
    assert model(torch.rand(1, 1, 64, 64)).shape == (1, 1, 64, 64)


def test_unknown_decoder_and_dropout_readings_are_refused():
    with pytest.raises(ValueError, match="decoder"):
        AESc(decoder="code")
    with pytest.raises(ValueError, match="dropout reading"):
        AESc(dropout="authors")


def test_code_dropout_reading_uses_higher_deep_rates_and_puts_dropout_in_the_decoder_too():
    paper, code = AESc(), AESc(dropout="code")
    assert [m.p for m in paper.drop] == [0.0, 0.0, 0.1, 0.2, 0.3, 0.4]
    assert all(m.p == 0 for m in paper.dec_drop)
    assert [m.p for m in code.drop] == [0.0, 0.0, 0.1, 0.2, 0.4, 0.5]
    # decoder block j outputs the resolution of level 4 - j (8 px, 16 px, ... for a 256 px input)
    assert [m.p for m in code.dec_drop] == [0.4, 0.2, 0.1, 0.0, 0.0]
    assert code.config["decoder_dropout"] == [0.0, 0.0, 0.1, 0.2, 0.4, 0.5]


def test_set_dropout_switches_a_trained_model_between_readings_without_touching_its_weights():
    torch.manual_seed(0)
    model = AESc().eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 1, 64, 64)
    clean = model(x)
    model.set_dropout("code")
    assert [m.p for m in model.dec_drop] == [0.4, 0.2, 0.1, 0.0, 0.0]
    assert torch.equal(model(x), clean)  # dropout still off outside MC sampling
    with model.mc_sampling():
        assert all(m.active for m in model.dec_drop)
    assert not any(m.active for m in model.dec_drop)
    model.set_dropout("paper")
    assert [m.p for m in model.drop] == [0.0, 0.0, 0.1, 0.2, 0.3, 0.4] and all(m.p == 0 for m in model.dec_drop)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_with_code_dropout_the_decoder_dropout_alone_makes_samples_differ():
    torch.manual_seed(0)
    model = AESc(dropout=[0.0] * 6, decoder_dropout=[0.0, 0.0, 0.1, 0.2, 0.4, 0.5]).eval()
    x = torch.rand(2, 1, 64, 64)
    with model.mc_sampling():
        assert not torch.equal(model(x), model(x))


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


def test_mc_dropout_on_the_cpu_draws_the_same_masks_for_a_channels_last_input_as_for_a_contiguous_one():
    # F.dropout fills its mask in memory order: on a channels_last tensor that would be another mask for the seed.
    drop = MCDropout(0.3)
    drop.active = True
    x = torch.rand(3, 8, 6, 5)
    torch.manual_seed(4)
    contiguous = drop(x)
    torch.manual_seed(4)
    channels_last = drop(x.contiguous(memory_format=torch.channels_last))
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(channels_last, contiguous) and (contiguous == 0).any()


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


@pytest.mark.parametrize("decoder_dropout", [None, [0.0, 0.0, 0.2, 0.3]])
@pytest.mark.parametrize("decoder", ["paper", "legacy"])
@pytest.mark.parametrize("skips", [True, False])
def test_sampling_from_shared_levels_equals_a_forward_pass_of_repeated_copies_for_the_same_seed(
    skips, decoder, decoder_dropout
):
    torch.manual_seed(0)
    model = AESc(
        skips=skips,
        depth=4,
        base_width=4,
        dropout=[0.0, 0.0, 0.2, 0.3],
        decoder=decoder,
        decoder_dropout=decoder_dropout,
    ).eval()
    assert model.shared_levels() == 2
    x = torch.rand(3, 1, 64, 64)
    with model.mc_sampling(), torch.no_grad():
        torch.manual_seed(5)
        reference = model(x.repeat_interleave(4, 0))
        torch.manual_seed(5)
        shared = model.encode_shared(x)
        samples = model.sample_from(shared, 4)
    assert len(shared[1]) == 2 and shared[1][0].shape[0] == 3  # computed once per image, not per copy
    # Same dropout draws; the shared convolutions ran on 3 images instead of 12 copies (same values to rounding).
    assert samples.shape == reference.shape
    assert torch.allclose(samples, reference, rtol=0, atol=1e-6)
    assert not torch.equal(samples[0], samples[1])  # the copies are different samples


def test_a_model_with_dropout_from_the_first_level_shares_nothing_and_one_without_shares_all():
    assert AESc(depth=3, dropout=[0.1, 0.2, 0.3]).shared_levels() == 0
    model = AESc(depth=3, base_width=4, dropout=[0.0, 0.0, 0.0]).eval()
    assert model.shared_levels() == 3
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.sample_from(model.encode_shared(x), 3), model(x).repeat_interleave(3, 0), atol=1e-6)
