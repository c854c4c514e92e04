"""Claims about stainlib.metrics and stainlib.detect (book chapters 6 and 9)."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from stainlib.detect import combined_map, fit_normalizer, image_score, residual_map, uncertainty_map
from stainlib.metrics import aupro, auroc, f1_max, image_auroc, per_defect_auroc, pixel_auroc
from stainlib.models import AESc

# The AUROC is a ratio of integers computed exactly; 1e-9 allows only the final float64 division's rounding.
TOL = 1e-9


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_sklearn_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 5000))
    scores = rng.standard_normal(n).astype(np.float32)
    labels = rng.random(n) < rng.uniform(0.05, 0.5)
    labels[0], labels[1] = True, False
    assert abs(auroc(torch.from_numpy(scores), torch.from_numpy(labels)) - roc_auc_score(labels, scores)) <= TOL


@pytest.mark.parametrize("levels", [2, 5, 50])
def test_auroc_equals_sklearn_with_heavy_ties_and_negative_and_zero_scores(levels):
    rng = np.random.default_rng(levels)
    scores = rng.integers(-levels, levels, 20000).astype(np.float32) / 7
    scores[:10] = -0.0  # negative zero ties with zero
    labels = rng.random(20000) < 0.03
    assert abs(auroc(torch.from_numpy(scores), torch.from_numpy(labels)) - roc_auc_score(labels, scores)) <= TOL


def test_auroc_counts_ties_across_positives_and_negatives_as_one_half():
    scores = torch.tensor([0.0, 0.5, 0.5, 0.5, 1.0])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # Pairs (positive > negative): 1.0 beats both, each 0.5 beats 0.0 and ties 0.5: (2 + 2 * 1.5) / 6.
    assert auroc(scores, labels) == pytest.approx(5 / 6, abs=TOL)


def test_pixel_auroc_pools_every_pixel_of_every_image_good_ones_included():
    rng = np.random.default_rng(1)
    maps = rng.random((6, 1, 16, 16)).astype(np.float32)
    masks = np.zeros_like(maps)
    masks[3:, :, 4:9, 4:9] = 1  # the first three images are good: all their pixels are negatives
    maps[3:, :, 4:9, 4:9] += 0.3
    expected = roc_auc_score(masks.ravel(), maps.ravel())
    assert abs(pixel_auroc(torch.from_numpy(maps), torch.from_numpy(masks)) - expected) <= TOL


def test_per_defect_auroc_compares_each_defect_type_with_the_good_images_only():
    scores = torch.tensor([0.1, 0.2, 0.9, 0.8, 0.15, 0.3])
    kinds = ["good", "good", "crack", "crack", "hole", "hole"]
    out = per_defect_auroc(scores, kinds)
    assert out == {"crack": 1.0, "hole": pytest.approx(roc_auc_score([0, 0, 1, 1], [0.1, 0.2, 0.15, 0.3]))}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auroc_on_cuda_equals_the_cpu_value():
    rng = np.random.default_rng(2)
    s, y = torch.from_numpy(rng.random(10000).astype(np.float32)), torch.from_numpy(rng.random(10000) < 0.1)
    assert auroc(s.cuda(), y.cuda()) == auroc(s, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_aupro_and_f1_max_of_cuda_bfloat16_maps_equal_the_cpu_values():
    rng = np.random.default_rng(2)
    maps = torch.from_numpy(rng.random((4, 1, 32, 32))).to(torch.bfloat16)
    masks = torch.from_numpy(rng.random((4, 1, 32, 32)) < 0.1)
    assert aupro(maps.cuda(), masks.cuda()) == pytest.approx(aupro(maps, masks), abs=1e-12)
    assert f1_max(maps.cuda(), masks.cuda()) == pytest.approx(f1_max(maps, masks), abs=1e-12)
    assert pixel_auroc(maps.cuda(), masks.cuda()) == pixel_auroc(maps, masks)


def test_single_class_is_refused_with_a_message_not_nan():
    with pytest.raises(ValueError, match="only one class is present \\(good \\(0\\)\\)"):
        image_auroc(torch.rand(5), torch.zeros(5))
    with pytest.raises(ValueError, match="only one class"):
        pixel_auroc(torch.rand(2, 1, 4, 4), torch.ones(2, 1, 4, 4))


def test_shape_mismatch_nan_and_inf_are_refused():
    with pytest.raises(ValueError, match="shape"):
        pixel_auroc(torch.rand(2, 1, 4, 4), torch.ones(2, 1, 4, 5))
    with pytest.raises(ValueError, match="shape"):
        image_auroc(torch.rand(4), torch.tensor([0, 1, 0]))
    for bad in (float("nan"), float("inf")):
        s = torch.rand(4)
        s[2] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            image_auroc(s, torch.tensor([0, 1, 0, 1]))


def best_f1_by_sweep(scores, labels):
    """F1 = 2 TP / (2 TP + FP + FN) at every distinct score as the threshold, all thresholds at once."""
    predicted = scores[None, :] >= np.unique(scores)[:, None]
    tp = (predicted & labels).sum(1)
    return float((2 * tp / (predicted.sum(1) + labels.sum())).max())  # TP + FP + TP + FN


def test_f1_max_is_the_best_f1_over_all_thresholds():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 20, 400).astype(np.float32)
    labels = rng.random(400) < 0.3
    best = max(f1_score(labels, scores >= t) for t in np.unique(scores))
    assert f1_max(torch.from_numpy(scores), torch.from_numpy(labels)) == pytest.approx(best, abs=1e-12)
    assert best_f1_by_sweep(scores, labels) == pytest.approx(best, abs=1e-12)  # the sweep used below agrees


@pytest.mark.parametrize("signal", [0.0, 0.3, 3.0])
def test_f1_max_is_exact_whether_or_not_the_negatives_above_the_first_cut_suffice(signal):
    # 2 % positives: a strong detector (best F1 >= 0.2) is answered from the top 8 x P negatives; a weak (0.3) or
    # random (0.0) one, with a best F1 below 0.2, needs every negative sorted.
    rng = np.random.default_rng(9)
    labels = rng.random(3000) < 0.02
    scores = np.round(rng.standard_normal(3000) + signal * labels, 2)
    assert f1_max(scores, labels) == pytest.approx(best_f1_by_sweep(scores, labels), abs=1e-12)


def brute_force_aupro(maps, masks, limit, connectivity=8):
    """The MVTec AD evaluation's definition, threshold by threshold: connected regions from scipy.ndimage.label, the
    curve through every distinct score, linear interpolation at the FPR cut, trapezoids, division by the cut."""
    from scipy import ndimage

    structure = np.ones((3, 3)) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    masks = masks.reshape(masks.shape[0], 1, *masks.shape[-2:]) > 0.5
    maps = maps.reshape(masks.shape)
    thresholds = np.unique(maps)[::-1]
    regions = [ndimage.label(m[0], structure=structure) for m in masks]
    fprs, pros = [0.0], [0.0]
    neg = ~masks
    for t in thresholds:
        pred = maps >= t
        fprs.append((pred & neg).sum() / neg.sum())
        overlaps = [(pred[i, 0][lab == r]).mean() for i, (lab, n) in enumerate(regions) for r in range(1, n + 1)]
        pros.append(np.mean(overlaps))
    fprs, pros = np.array(fprs), np.array(pros)
    keep = fprs <= limit
    x, y = fprs[keep], pros[keep]
    j = keep.sum()
    if j < len(fprs) and x[-1] < limit:
        x = np.append(x, limit)
        y = np.append(y, pros[j - 1] + (limit - fprs[j - 1]) / (fprs[j] - fprs[j - 1]) * (pros[j] - pros[j - 1]))
    return np.trapezoid(y, x) / limit


def test_aupro_matches_a_brute_force_threshold_sweep_and_weights_regions_equally():
    rng = np.random.default_rng(4)
    maps = rng.integers(0, 40, (3, 1, 20, 20)).astype(np.float32)
    masks = np.zeros_like(maps)
    masks[0, 0, 2:4, 2:4] = 1  # a small region
    masks[1, 0, 5:15, 5:15] = 1  # a large one
    masks[1, 0, 17:19, 1:3] = 1  # a second region in the same image
    maps[masks > 0] += 15
    expected = brute_force_aupro(maps, masks, 0.3)
    assert aupro(torch.from_numpy(maps), torch.from_numpy(masks)) == pytest.approx(expected, abs=1e-12)
    perfect = masks * 2 + rng.random(masks.shape).astype(np.float32)
    assert aupro(torch.from_numpy(perfect), torch.from_numpy(masks)) == pytest.approx(1.0)


def test_aupro_joins_diagonal_neighbours_into_one_region_like_the_mvtec_ad_evaluation():
    # Mask pixels (0,0), (1,1), (1,2): one 8-connected region, but two 4-connected ones; only (0,0) is detected.
    masks = np.zeros((1, 1, 4, 4), np.float32)
    masks[0, 0, 0, 0] = masks[0, 0, 1, 1] = masks[0, 0, 1, 2] = 1
    maps = np.zeros_like(masks)
    maps[0, 0, 0, 0] = 1
    eight, four = brute_force_aupro(maps, masks, 0.3, 8), brute_force_aupro(maps, masks, 0.3, 4)
    assert abs(eight - four) > 0.1  # the two definitions really differ here (1/3 against 1/2 of the regions found)
    assert aupro(maps, masks) == pytest.approx(eight, abs=1e-12)  # 8 is the default
    assert aupro(maps, masks, connectivity=4) == pytest.approx(four, abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_aupro_equals_the_definition_on_random_masks_ties_and_fpr_limits(seed):
    # Scattered masks (regions touching diagonally), few score levels (ties across classes), limits from tiny to 1.
    rng = np.random.default_rng(100 + seed)
    n, h, w = int(rng.integers(1, 4)), int(rng.integers(3, 14)), int(rng.integers(3, 14))
    masks = (rng.random((n, 1, h, w)) < rng.uniform(0.05, 0.5)).astype(np.float32)
    masks.reshape(-1)[:2] = [0, 1]  # both classes present
    maps = (rng.integers(0, int(rng.integers(2, 30)), masks.shape) + masks * rng.integers(0, 5)).astype(np.float32)
    limit = [0.3, 1.0, 0.01, float(rng.uniform(0.02, 1))][seed % 4]
    for connectivity in (8, 4):
        expected = brute_force_aupro(maps, masks, limit, connectivity)
        got = aupro(torch.from_numpy(maps), torch.from_numpy(masks), fpr_limit=limit, connectivity=connectivity)
        assert got == pytest.approx(expected, abs=1e-12)


def test_aupro_accepts_n_h_w_and_refuses_other_shapes_with_the_expected_one_named():
    rng = np.random.default_rng(5)
    maps = rng.random((2, 1, 8, 8))
    masks = np.zeros_like(maps)
    masks[1, 0, 2:5, 2:5] = 1
    assert aupro(maps[:, 0], masks[:, 0]) == aupro(maps, masks)
    for shape in [(8, 8), (2, 3, 8, 8), (1, 2, 1, 8, 8)]:
        with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
            aupro(np.zeros(shape), np.ones(shape))
    with pytest.raises(ValueError, match="connectivity"):
        aupro(maps, masks, connectivity=6)


def test_scores_keep_their_precision_distinct_float64_and_large_integer_scores_do_not_tie():
    labels = np.array([0, 1])
    for scores in (
        np.array([2**24, 2**24 + 1], np.int32),  # equal once rounded to float32
        np.array([1.0, 1.0 + 1e-12]),  # equal in float32
        np.array([1e39, 2e39]),  # finite in float64, infinite in float32
        np.array([2**62, 2**62 + 1], np.int64),  # distinct only as integers
    ):
        assert auroc(scores, labels) == 1.0
        assert auroc(torch.from_numpy(scores), torch.from_numpy(labels)) == 1.0
        assert f1_max(scores, labels) == 1.0
    assert auroc(np.array([1.0, 1.0 + 1e-12]), labels) == roc_auc_score(labels, np.array([1.0, 1.0 + 1e-12]))


def test_auroc_of_uniform_float64_scores_equals_sklearn():
    # 50,000 uniform float64 scores: dozens collide once rounded to float32, which moved the AUROC by ~1e-7.
    rng = np.random.default_rng(6)
    scores = rng.random(50000)
    labels = rng.random(50000) < 0.3
    assert len(np.unique(scores.astype(np.float32))) < len(scores)  # float32 would have created ties
    assert abs(auroc(scores, labels) - roc_auc_score(labels, scores)) <= TOL


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.bool, torch.uint8, torch.int16])
def test_every_input_dtype_gives_the_metrics_of_the_same_values_in_float64(dtype):
    # bfloat16 maps come out of an autocast model; float32 holds bf16, fp16, bool and small integers exactly.
    rng = np.random.default_rng(7)
    masks = torch.from_numpy(rng.random((3, 1, 12, 12)) < 0.2)
    raw = torch.from_numpy(rng.random((3, 1, 12, 12)) * 4 + masks.numpy() * 2)
    maps = (raw > 3).to(dtype) if dtype == torch.bool else raw.to(dtype)
    ref = maps.to(torch.float64).numpy()
    assert abs(pixel_auroc(maps, masks) - roc_auc_score(masks.numpy().ravel(), ref.ravel())) <= TOL
    assert aupro(maps, masks) == pytest.approx(brute_force_aupro(ref, masks.numpy(), 0.3), abs=1e-12)
    assert f1_max(maps, masks) == pytest.approx(best_f1_by_sweep(ref.ravel(), masks.numpy().ravel()), abs=1e-12)


def test_scores_that_require_grad_are_accepted():
    rng = np.random.default_rng(8)
    maps = torch.from_numpy(rng.random((2, 1, 8, 8)).astype(np.float32))
    masks = torch.zeros_like(maps)
    masks[1, 0, :3, :3] = 1
    graded = maps.clone().requires_grad_()
    assert pixel_auroc(graded, masks) == pixel_auroc(maps, masks)
    assert aupro(graded, masks) == aupro(maps, masks)
    assert f1_max(graded, masks) == f1_max(maps, masks)
    scores = graded.flatten(1).mean(1) * torch.tensor([1.0, -1.0])  # still attached to the graph
    assert image_auroc(scores, torch.tensor([1, 0])) == 1.0


def test_residual_map_averages_channels_and_image_score_is_the_l2_norm():
    x = torch.zeros(2, 3, 8, 8)
    y = torch.zeros(2, 3, 8, 8)
    y[0, 0, 0, 0] = 0.9
    y[1, :, :2, :2] = 0.3
    res = residual_map(x, y)
    assert res.shape == (2, 1, 8, 8) and res[0, 0, 0, 0].item() == pytest.approx(0.3)
    scores = image_score(res)
    assert scores[0].item() == pytest.approx(0.3)
    assert scores[1].item() == pytest.approx(np.sqrt(4 * 0.3**2))
    assert image_score(res, p=1)[1].item() == pytest.approx(1.2)


def test_uncertainty_map_is_the_exact_variance_of_mc_samples_whatever_the_chunk():
    torch.manual_seed(0)
    model = AESc(depth=3, base_width=4, dropout=[0.2, 0.3, 0.4])
    x = torch.rand(3, 1, 32, 32)
    var, mean = uncertainty_map(model, x, n_samples=10, chunk=64, seed=7, return_mean=True)
    # Reference: the same dropout masks drawn in the same order, one sample at a time.
    torch.manual_seed(7)
    with model.mc_sampling():
        samples = model(x.repeat_interleave(10, 0)).view(3, 10, 32, 32)
    assert torch.allclose(var[:, 0], samples.var(1, unbiased=False), rtol=1e-4, atol=1e-9)
    assert torch.allclose(mean[:, 0], samples.mean(1), atol=1e-6)
    chunked = uncertainty_map(model, x, n_samples=10, chunk=3, seed=7)  # 3 samples per pass, merged
    assert chunked.shape == (3, 1, 32, 32) and (chunked > 0).all()
    assert torch.allclose(chunked.mean(), var.mean(), rtol=0.2)  # other masks, same distribution
    assert torch.equal(uncertainty_map(model, x, n_samples=10, chunk=3, seed=7), chunked)  # seeded: reproducible
    assert not any(m.active for m in model.drop)  # dropout switched off again


def test_uncertainty_map_runs_the_network_channels_last_on_the_cpu_and_gives_the_weights_back():
    torch.manual_seed(0)
    model = AESc(depth=3, base_width=4, dropout=[0.0, 0.3, 0.4])
    before = [(p, p.data_ptr(), p.stride()) for p in model.parameters()]
    layouts = []
    hook = model.encoder[1].register_forward_pre_hook(
        lambda module, _inputs: layouts.append(module[0].weight.is_contiguous(memory_format=torch.channels_last))
    )
    x = torch.rand(2, 1, 32, 32)
    var = uncertainty_map(model, x, n_samples=8, seed=3)
    hook.remove()
    assert layouts and all(layouts)  # the weights were channels_last inside the call
    assert all((p.data_ptr(), p.stride()) == (ptr, st) for p, ptr, st in before)  # the same tensors back after it
    # The same masks (seeded), the convolutions summed in the contiguous layout's order: equal to float32 rounding,
    # which the variance (a difference of close values) magnifies to about 1e-4 of a value.
    torch.manual_seed(3)
    with model.mc_sampling(), torch.no_grad():
        samples = model(x.repeat_interleave(8, 0)).view(2, 8, 32, 32)
    assert torch.allclose(var[:, 0], samples.var(1, unbiased=False), rtol=1e-4, atol=1e-9)


def test_uncertainty_merge_formula_is_exact():
    # Chan's merge of chunk statistics equals the two-pass variance of all samples.
    torch.manual_seed(0)
    model = AESc(depth=2, base_width=4, dropout=[0.3, 0.3]).eval()
    x = torch.rand(2, 1, 16, 16)
    # chunk=6 and 10 samples: one image at a time, in passes of 6 then 4 samples.
    torch.manual_seed(1)
    with model.mc_sampling(), torch.no_grad():
        per_image = [torch.cat([model(x[i : i + 1].repeat_interleave(k, 0))[:, 0] for k in (6, 4)]) for i in range(2)]
    reference = torch.stack(per_image).var(1, unbiased=False)
    merged = uncertainty_map(model, x, n_samples=10, chunk=6, seed=1)[:, 0]
    assert torch.allclose(merged, reference, rtol=1e-4, atol=1e-10)


def test_combined_map_silences_systematic_false_positives_and_keeps_low_contrast_defects():
    # Clean validation maps: the uncertainty is always high on a fixed "edge" at row 10 (a systematic false positive).
    rng = torch.Generator().manual_seed(0)
    res_val = 0.02 * torch.rand((20, 1, 32, 32), generator=rng)
    unc_val = 0.01 * torch.rand((20, 1, 32, 32), generator=rng)
    unc_val[:, :, 10] += 0.2
    norm = fit_normalizer(res_val, unc_val, smooth=0)
    res = 0.02 * torch.rand((1, 1, 32, 32), generator=rng)
    unc = 0.01 * torch.rand((1, 1, 32, 32), generator=rng)
    unc[:, :, 10] += 0.2  # the same edge
    unc[:, :, 20:24, 20:24] += 0.1  # a low-contrast defect: invisible in the residual, seen by the uncertainty
    mask = torch.zeros_like(res)
    mask[:, :, 20:24, 20:24] = 1
    assert pixel_auroc(unc, mask) < 0.99  # the raw uncertainty confuses the edge with the defect
    assert pixel_auroc(combined_map(res, unc, norm), mask) == 1.0
