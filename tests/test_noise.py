"""Claims about the corruption models of stainlib.noise (book chapter 2)."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from stainlib.noise import CORRUPTIONS, Mixture, Stain, get_corruption

NAMES = list(CORRUPTIONS)
MASK_EXACT = [n for n in NAMES if not n.startswith("gaussian") and n != "mix2"]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def batch(b=8, c=1, h=64, w=64, seed=1):
    # Continuous random values: a corruption that paints a grey level never hits an unchanged pixel by chance.
    return torch.rand((b, c, h, w), generator=gen(seed))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", MASK_EXACT)
def test_mask_is_exactly_the_set_of_changed_pixels(name, channels):
    image = batch(16, channels, 96, 80)
    corrupted, mask = get_corruption(name)(image, gen())
    changed = (corrupted != image).any(1, keepdim=True)
    assert mask.shape == (16, 1, 96, 80)
    assert torch.equal(changed, mask.bool())
    if name != "none":
        assert mask.sum() > 0


def test_mix2_mask_is_the_stain_or_the_whole_image_and_covers_every_changed_pixel():
    image = batch(32, 1, 64, 64)
    corrupted, mask = get_corruption("mix2")(image, gen())
    changed = (corrupted != image).any(1, keepdim=True)
    assert not (changed & ~mask.bool()).any()
    full = mask.flatten(1).all(1)
    assert 0 < full.sum() < 32  # both components were used


@pytest.mark.parametrize("sigma", [0.1, 0.2, 0.4, 0.8])
def test_gaussian_noise_has_the_stated_standard_deviation_and_stays_in_0_1(sigma):
    image = torch.full((4, 1, 128, 128), 0.5)
    corrupted, mask = get_corruption(f"gaussian-{sigma}")(image, gen())
    assert mask.all()
    assert corrupted.min() >= 0 and corrupted.max() <= 1
    inside = corrupted[(corrupted > 0) & (corrupted < 1)] - 0.5
    if sigma == 0.1:  # clipping is negligible (x = 0.5 is 5 sigma from both bounds): std is sigma within 2 %
        assert inside.std().item() == pytest.approx(sigma, rel=0.02)
    else:  # clipping at 0 and 1 truncates the distribution, but never to nothing
        assert 0.25 * sigma < inside.std().item() < sigma


def stains(n=2000, side=256, **kw):
    model = Stain(**kw)
    g = gen(123)
    shapes = model.sample(n, side, side, g, "cpu")
    return model, shapes


def test_stain_semi_axes_lie_in_1_to_12_percent_of_the_side_over_2000_draws():
    _, shapes = stains()
    axes = shapes["axes"] / 256
    assert axes.min() >= 0.01 and axes.max() <= 0.12
    # Both ends of the range are actually reached (uniform draws: expected gap at the ends is 0.11 / 4001).
    assert axes.min() < 0.0105 and axes.max() > 0.1195


def test_stain_lies_wholly_inside_the_image_over_2000_draws():
    _, shapes = stains()
    lo = shapes["center"] - shapes["r_max"][:, None]
    hi = shapes["center"] + shapes["r_max"][:, None]
    assert lo.min() >= 0 and hi.max() <= 255


def test_stain_grey_level_lies_in_10_to_220_over_2000_draws_and_fills_the_stain_without_noise():
    model, shapes = stains()
    assert shapes["level"].min() >= 10 / 255 and shapes["level"].max() <= 220 / 255
    image = batch(64, 3, 128, 128)
    corrupted, mask = Stain(noise=0.0)(image, gen(5))
    for b in range(64):
        inside = corrupted[b][:, mask[b, 0].bool()]
        assert inside.numel() > 0
        assert torch.all(inside == inside[0, 0])  # one grey level, the same on every channel
        assert 10 / 255 - 1e-6 <= inside[0, 0] <= 220 / 255 + 1e-6


def test_stain_is_one_connected_filled_region_over_2000_draws_at_256px():
    model = Stain()
    image = torch.full((250, 1, 256, 256), 0.5)
    g = gen(7)
    for _ in range(8):
        _, mask = model(image, g)
        for m in mask[:, 0].numpy().astype(bool):
            # The standard digital-topology pair: the stain is one 8-connected region, and it has no hole, that is
            # no 4-connected background component cut off from the border.
            _, count = ndimage.label(m, structure=np.ones((3, 3)))
            assert count == 1
            assert np.array_equal(ndimage.binary_fill_holes(m), m)


def moment_ellipse_iou(mask: np.ndarray) -> float:
    """IoU of a region with the ellipse of the same area, centre and second moments."""
    ys, xs = np.nonzero(mask)
    cov = np.cov(np.stack([ys, xs]).astype(float))
    inv = np.linalg.inv(cov)
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    d = np.stack([yy - ys.mean(), xx - xs.mean()], -1)
    q = np.einsum("...i,ij,...j->...", d, inv, d)
    # A uniform ellipse with covariance cov has q <= 4 inside.
    ellipse = q <= 4
    return (ellipse & mask).sum() / (ellipse | mask).sum()


def test_stain_outline_is_measurably_irregular_compared_with_a_plain_ellipse():
    # Large stains (8-12 % of the side) so that pixelation does not dominate the measure.
    kw = dict(size=(0.08, 0.12), noise=0.0)
    image = torch.full((60, 1, 256, 256), 0.5)
    _, smooth = Stain(jitter=0.0, **kw)(image, gen(3))
    _, rough = Stain(jitter=0.1, **kw)(image, gen(3))
    iou_smooth = np.mean([moment_ellipse_iou(m) for m in smooth[:, 0].numpy().astype(bool)])
    iou_rough = np.mean([moment_ellipse_iou(m) for m in rough[:, 0].numpy().astype(bool)])
    # The jitter-free outline is a cubic spline through 20 points of an ellipse: nearly the ellipse itself.
    assert iou_smooth > 0.97
    # The default jitter (10 % of the mean semi-axis) makes the outline depart from any ellipse.
    assert iou_rough < iou_smooth - 0.02


def test_stain_blur_softens_edges_and_grows_the_mask():
    image = torch.full((16, 1, 128, 128), 0.5)
    hard, hard_mask = Stain(noise=0.0, level=(0.0, 0.0))(image, gen(2))
    soft, soft_mask = Stain(noise=0.0, level=(0.0, 0.0), blur=0.2)(image, gen(2))
    assert set(torch.unique(hard).tolist()) == {0.0, 0.5}
    assert len(torch.unique(soft)) > 10  # intermediate grey values on the edges
    assert soft_mask.sum() > hard_mask.sum()
    assert torch.equal((soft != image).any(1, keepdim=True), soft_mask.bool())


def test_stain_sizes_scale_with_the_image():
    small = Stain().sample(500, 64, 64, gen(), "cpu")["axes"]
    big = Stain().sample(500, 512, 512, gen(), "cpu")["axes"]
    assert torch.allclose(big / 512, small / 64, atol=1e-6)


def test_drops_are_ten_partly_overlapping_discs_forming_one_region():
    model = get_corruption("drops")
    image = torch.full((64, 1, 256, 256), 0.5)
    _, mask = model(image, gen(9))
    d = model.sample(64, 256, 256, gen(9), "cpu")
    diam = 2 * d["radii"] / 256
    assert diam.min() >= 0.01 and diam.max() <= 0.02 and d["radii"].shape == (64, 10)
    areas = (math.pi * d["radii"] ** 2).sum(1)
    for b in range(64):
        m = mask[b, 0].numpy().astype(bool)
        assert ndimage.label(m)[1] == 1  # consecutive drops overlap: one chain
        assert m.sum() < areas[b]  # overlapping: less than the sum of the discs


@pytest.mark.parametrize("name,shares", [("mix1", [0.6, 0.2, 0.2]), ("mix2", [0.6, 0.4])])
def test_mixtures_pick_components_in_the_stated_proportions(name, shares):
    model: Mixture = get_corruption(name)
    n = 20000
    picks = model.choose(n, gen(11), "cpu")
    counts = torch.bincount(picks, minlength=len(shares)).numpy()
    for k, p in zip(counts, shares):
        # Binomial(n, p): 4 standard deviations is a two-sided tolerance of about 6e-5 per component.
        assert abs(k - n * p) <= 4 * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_and_different_seed_different_output(name):
    image = batch(6, 1, 64, 64)
    model = get_corruption(name)
    a, ma = model(image, gen(42))
    b, mb = model(image, gen(42))
    assert torch.equal(a, b) and torch.equal(ma, mb)
    if name != "none":
        c, _ = model(image, gen(43))
        assert not torch.equal(a, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_input_is_untouched_dtype_and_device_are_kept_and_the_mask_is_bool(name, dtype):
    image = batch(4, 3, 48, 40).to(dtype)
    before = image.clone()
    corrupted, mask = get_corruption(name)(image, gen())
    assert torch.equal(image, before)
    assert corrupted.dtype == dtype and mask.dtype == torch.bool
    assert corrupted.device == image.device and corrupted.shape == image.shape
    assert corrupted.min() >= 0 and corrupted.max() <= 1


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 33, 257), (1, 1, 300, 64)])
@pytest.mark.parametrize("name", NAMES)
def test_any_size_from_32px_works_in_gray_and_rgb(name, shape):
    corrupted, mask = get_corruption(name)(torch.rand(shape, generator=gen()), gen())
    assert corrupted.shape == shape and mask.shape == (shape[0], 1, *shape[2:])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_output_stays_on_cuda_and_is_deterministic(name):
    image = batch(4, 1, 64, 64).cuda()
    model = get_corruption(name)
    a, ma = model(image, torch.Generator("cuda").manual_seed(0))
    b, _ = model(image, torch.Generator("cuda").manual_seed(0))
    assert a.is_cuda and ma.is_cuda and torch.equal(a, b)


BAD = {
    "wrong rank": (torch.rand(1, 64, 64), "rank 4"),
    "integer dtype": (torch.zeros(1, 1, 64, 64, dtype=torch.uint8), "float"),
    "above 1": (torch.full((1, 1, 64, 64), 1.5), r"\[0, 1\]"),
    "below 0": (torch.full((1, 1, 64, 64), -0.1), r"\[0, 1\]"),
    "NaN": (torch.full((1, 1, 64, 64), float("nan")), "NaN"),
    "too small": (torch.rand(1, 1, 31, 64), "at least 32"),
    "two channels": (torch.rand(1, 2, 64, 64), "channels"),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("name", ["stain", "scratch", "drops", "gaussian-0.1", "mix1", "none"])
def test_bad_input_raises_value_error_and_leaves_input_untouched(name, case):
    image, message = BAD[case]
    before = image.clone()
    with pytest.raises(ValueError, match=message):
        get_corruption(name)(image, gen())
    assert torch.equal(image, before) or case == "NaN"  # NaN != NaN; NaN input checked below
    if case == "NaN":
        assert torch.isnan(image).all()


def test_unknown_model_name_lists_the_known_names():
    with pytest.raises(ValueError, match="known: none, stain, scratch"):
        get_corruption("stains")


def test_generator_on_another_device_type_is_refused_clearly():
    with pytest.raises(ValueError, match="generator"):
        get_corruption("stain")(batch(), "not a generator")


@pytest.mark.parametrize("name", NAMES)
def test_out_buffers_receive_exactly_the_fresh_result_even_when_reused_dirty(name):
    image = batch(4, 3, 64, 48)
    fresh, fresh_mask = get_corruption(name)(image, gen(3))
    out = (torch.full_like(image, 0.25), torch.ones(4, 1, 64, 48, dtype=torch.bool))  # stale contents
    corrupted, mask = get_corruption(name)(image, gen(3), out=out)
    assert corrupted is out[0] and mask is out[1]
    assert torch.equal(corrupted, fresh) and torch.equal(mask, fresh_mask)


@pytest.mark.parametrize(
    "out,message",
    [
        ((torch.empty(4, 1, 64, 64), torch.empty(4, 1, 64, 64)), "mask must be a contiguous torch.bool"),
        ((torch.empty(4, 1, 64, 32), torch.empty(4, 1, 64, 64, dtype=torch.bool)), "corrupted must be"),
        ((torch.empty(4, 1, 64, 64).transpose(2, 3), torch.empty(4, 1, 64, 64, dtype=torch.bool)), "not contiguous"),
        (torch.empty(4, 1, 64, 64), "pair of tensors"),
    ],
)
def test_wrong_out_buffers_are_refused_clearly(out, message):
    with pytest.raises(ValueError, match=message):
        get_corruption("stain")(batch(4, 1, 64, 64), gen(), out=out)


def test_check_values_false_skips_only_the_value_scan():
    bad = torch.full((2, 1, 64, 64), 1.5)
    get_corruption("stain")(bad, gen(), check_values=False)  # no scan: no error
    with pytest.raises(ValueError, match="rank 4"):
        get_corruption("stain")(torch.rand(1, 64, 64), gen(), check_values=False)


@pytest.mark.parametrize("blur", [0.0, 0.2])
def test_fixed_size_device_windows_paint_the_same_pixels_as_the_cpu_size_sorted_groups(blur):
    # The fixed-size windows are what a GPU uses (no size read back); on the CPU, windows fit groups of stains.
    model = Stain(blur=blur)
    for side, seed in ((64, 0), (256, 1), (97, 2)):
        shapes = model.sample(200, side, side + 13, gen(seed), "cpu")
        alpha, rows, cols = model.window(shapes, side, side + 13, half=model.max_half(side, side + 13))
        fixed = alpha.new_zeros(200, side, side + 13)
        fixed[torch.arange(200)[:, None, None], rows[:, :, None], cols[:, None, :]] = alpha
        assert torch.equal(model.opacity(shapes, side, side + 13)[:, 0], fixed)
        index, y, x, a = model.pixels(shapes, side, side + 13)
        ragged = torch.zeros_like(fixed)
        ragged[index, y, x] = a
        assert torch.equal(ragged, fixed)


def test_max_half_bounds_every_stain_over_2000_draws_at_extreme_settings():
    model = Stain(size=(0.3, 0.4), jitter=0.9)
    shapes = model.sample(2000, 128, 128, gen(4), "cpu")
    half = model.max_half(128, 128)
    assert shapes["r_max"].max() + 1 <= half
    assert shapes["r_max"].max() > 0.5 * half  # and the bound is not vacuous


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["stain", "scratch", "drops", "gaussian-0.1", "none"])
def test_cuda_corruption_with_trusted_values_never_waits_for_the_device(name):
    image = batch(16, 1, 256, 256).cuda()
    model, g = get_corruption(name), torch.Generator("cuda").manual_seed(0)
    out = (torch.empty_like(image), torch.empty(16, 1, 256, 256, dtype=torch.bool, device="cuda"))
    model(image, g, out=out, check_values=False)  # warm-up: per-device constants are made once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        model(image, g, out=out, check_values=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_every_code_reading_stands_beside_a_paper_reading_and_paper_names_are_the_ten_of_table_iii():
    from stainlib.noise import CODE_READINGS, PAPER_CORRUPTIONS

    assert set(CODE_READINGS) == {"drops-code", "mix1-code"} | {f"gaussian-{s}-code" for s in (0.1, 0.2, 0.4, 0.8)}
    assert all(paper in PAPER_CORRUPTIONS for paper in CODE_READINGS.values())
    assert len(PAPER_CORRUPTIONS) == 10 and not set(PAPER_CORRUPTIONS) & set(CODE_READINGS)


def test_drops_code_reading_piles_the_drops_into_one_disc_of_6_to_12_px_on_256_px():
    image = batch(64, 1, 256, 256)
    drops = get_corruption("drops-code").sample(64, 256, 256, gen(), None)
    radii = drops["radii"]
    assert radii.min() >= 0.01 * 256 + 1 - 1e-4 and radii.max() <= 0.02 * 256 + 1 + 1e-4  # radius 1-2 % + 1 px
    spread = (drops["centers"] - drops["centers"].mean(1, keepdim=True)).norm(dim=-1)
    assert spread.max() < 0.5  # centres within a few hundredths of the radius: one disc
    _, mask = get_corruption("drops-code")(image, gen())
    for m in mask[:, 0]:
        labels, n = ndimage.label(m.numpy())
        assert n == 1  # one connected disc
        ys, xs = np.nonzero(labels)
        across = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        assert 6 <= across <= 13  # 2 x (2.56 + 1) px .. 2 x (5.12 + 1) px, one pixel of rounding


def test_drops_paper_reading_draws_ten_droplets_of_diameter_1_to_2_percent():
    drops = get_corruption("drops").sample(64, 256, 256, gen(), None)
    diameters = 2 * drops["radii"]
    assert diameters.shape == (64, 10)
    assert diameters.min() >= 0.01 * 256 - 1e-4 and diameters.max() <= 0.02 * 256 + 1e-4


@pytest.mark.parametrize("sigma", [0.1, 0.2, 0.4, 0.8])
def test_gaussian_code_reading_takes_sigma_as_the_variance_and_the_paper_reading_as_the_deviation(sigma):
    image = torch.full((4, 1, 128, 128), 0.5)
    paper, _ = get_corruption(f"gaussian-{sigma}")(image, gen())
    code, _ = get_corruption(f"gaussian-{sigma}-code")(image, gen())
    assert paper.min() >= 0 and paper.max() <= 1 and code.min() >= 0 and code.max() <= 1  # both clipped
    # Same draws: before clipping, the code's noise is the paper's times sqrt(sigma) / sigma; compare where neither
    # reading clipped (within 0.5 of the mean).
    noise_paper, noise_code = paper - 0.5, code - 0.5
    inside = (noise_code.abs() < 0.499) & (noise_paper.abs() < 0.499) & (noise_paper.abs() > 0.01)
    assert inside.sum() > 1000
    ratio = noise_code[inside] / noise_paper[inside]
    assert torch.allclose(ratio, torch.full_like(ratio, math.sqrt(sigma) / sigma), rtol=1e-3)  # float32 rounding


def test_gaussian_overflow_wraps_around_only_when_asked_by_name():
    from stainlib.noise import Gaussian

    image = torch.full((2, 1, 64, 64), 0.9)
    wrapped, _ = Gaussian(0.4, reading="code", overflow=True)(image, gen())
    clipped, _ = Gaussian(0.4, reading="code")(image, gen())
    share = ((wrapped - clipped).abs() > 1 / 255).float().mean().item()
    assert 0.3 < share < 0.7  # N(0.9, 0.63^2) leaves [0, 1] about half the time; those pixels wrap
    assert torch.allclose(wrapped * 255, (wrapped * 255).round(), atol=1e-3)  # 8-bit values
    assert not any(getattr(get_corruption(n), "overflow", False) for n in NAMES)


def test_mix1_code_reading_draws_stain_scratch_drops_20_20_60_and_the_paper_reading_60_20_20():
    for name, expected in (("mix1", [0.6, 0.2, 0.2]), ("mix1-code", [0.2, 0.2, 0.6])):
        model = get_corruption(name)
        assert [m.name for m in model.models] == ["stain", "scratch", "drops"]
        pick = model.choose(20_000, gen(), "cpu")
        share = torch.bincount(pick, minlength=3).double() / 20_000
        assert torch.allclose(share, torch.tensor(expected, dtype=torch.float64), atol=0.015)  # > 4 sd of 20,000


def test_unknown_readings_are_refused():
    from stainlib.noise import Drops, Gaussian

    with pytest.raises(ValueError, match="reading"):
        Drops(reading="authors")
    with pytest.raises(ValueError, match="reading"):
        Gaussian(0.1, reading="variance")
