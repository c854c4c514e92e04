"""Exact detection metrics on torch tensors or numpy arrays (book chapter 5; chapter 8 for AUPRO and F1-max).

* :func:`auroc` — the area under the ROC curve, exact with ties (the Mann-Whitney statistic, ties counted one
  half, in integer arithmetic); it equals ``sklearn.metrics.roc_auc_score``.  The scores of the negatives and of the
  positives are sorted apart (no index array), and each positive is located among the negatives by binary search.
* :func:`image_auroc`, :func:`pixel_auroc` (pooled over every pixel of every test image, good images included),
  :func:`per_defect_auroc`.
* :func:`aupro` — the normalised area under the per-region-overlap curve up to a false-positive rate of 0.3, as the
  MVTec AD evaluation defines it (defect regions are 8-connected); :func:`f1_max`.

Scores are compared in their own precision: float64 and integer scores are never rounded to float32 (distinct
scores stay distinct), and float16 and bfloat16 ones are widened to float32, which is exact.  Scores that require
grad are detached.  Equal scores tie, -0.0 and 0.0 included.

AUPRO and F1-max need the negatives sorted only above a cut: AUPRO above the false-positive rate limit, F1-max above
the count of false positives that could still beat the best F1 found.  They select that part in linear time
(``numpy.partition``) and sort only it, so they cost about what :func:`pixel_auroc` costs.  Memory beyond the input
stays near one copy of the negative scores (4 bytes a pixel for float32 maps), plus a boolean mask.

Scores may live on any device; CUDA tensors are sorted on the GPU.  Bad input (shapes that differ, a single class,
NaN or infinite scores, labels other than 0 and 1) raises ``ValueError``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["aupro", "auroc", "at_threshold", "f1_max", "image_auroc", "per_defect_auroc", "pixel_auroc"]


# ---------------------------------------------------------------------------------------------------------------------
# Inputs: numpy arrays on the CPU, torch tensors on an accelerator, in an exact, sortable dtype.


def _array(x, what: str):
    """``x`` as a numpy array (CPU) or a detached torch tensor (other devices), in a dtype that sorts exactly.

    bool becomes uint8; float16, bfloat16 and the float8 types become float32 (exact); float32, float64 and the
    integer types stay as they are.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.device.type == "meta":
            raise ValueError(f"{what}: the scores are on the 'meta' device, which holds no values")
        if x.is_complex():
            raise ValueError(f"{what}: complex scores cannot be ordered")
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()
        if x.dtype == torch.bool:
            x = x.view(torch.uint8)
        return x.numpy() if x.device.type == "cpu" else x
    x = np.asarray(x)
    if x.dtype == np.bool_:
        return x.view(np.uint8)
    if x.dtype.kind == "f" and x.dtype.itemsize < 4:
        return x.astype(np.float32)
    if x.dtype.kind not in "fiu":
        raise ValueError(f"{what}: scores must be real numbers, got dtype {x.dtype}")
    return x


def _on(x, like):
    """``x`` (array, tensor on any device, or list) on the backend and device of ``like``."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.device.type == "meta":
            raise ValueError("the labels or masks are on the 'meta' device, which holds no values")
    if isinstance(like, np.ndarray):
        return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return torch.as_tensor(x, device=like.device)


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else np.shape(x)


def _is_bool(a) -> bool:
    return a.dtype == torch.bool if isinstance(a, torch.Tensor) else a.dtype == np.bool_


def _mask(gt_mask, like, what: str):
    """Binary ground truth: ``gt_mask > 0.5`` (a boolean mask is taken as it is), on the backend of ``like``."""
    m = _on(gt_mask, like)
    return m if _is_bool(m) else _array(m, what) > 0.5


def _f64(a):
    return a.astype(np.float64) if isinstance(a, np.ndarray) else a.double()


def _count(mask) -> int:
    # numpy reduces a large boolean array on one core many times faster than torch does.
    return int(np.count_nonzero(mask)) if isinstance(mask, np.ndarray) else int(mask.sum())


def _check_finite(scores, what: str) -> None:
    if scores.dtype.is_floating_point if isinstance(scores, torch.Tensor) else scores.dtype.kind == "f":
        lo, hi = float(scores.min()), float(scores.max())  # NaN propagates through min and max; no temporary array
        if not (math.isfinite(lo) and math.isfinite(hi)):
            finite = np.isfinite(scores) if isinstance(scores, np.ndarray) else torch.isfinite(scores)
            raise ValueError(f"{what}: {scores.shape[0] - _count(finite)} scores are NaN or infinite")


def _as_flat(scores, labels, what: str):
    """Flat scores and boolean labels on one backend, validated."""
    scores = _array(scores, what)
    labels = _on(labels, scores)
    if tuple(scores.shape) != tuple(labels.shape):
        raise ValueError(f"{what}: scores have shape {tuple(scores.shape)} but labels {tuple(labels.shape)}")
    scores, labels = scores.reshape(-1), labels.reshape(-1)
    if scores.shape[0] == 0:
        raise ValueError(f"{what}: no scores")
    _check_finite(scores, what)
    if not _is_bool(labels):
        if not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError(f"{what}: labels must be 0 or 1")
        labels = labels == 1
    positives = _count(labels)
    if positives in (0, labels.shape[0]):
        present = "defective (1)" if positives else "good (0)"
        raise ValueError(f"{what}: only one class is present ({present}); an AUROC needs both good and defective")
    return scores, labels


# ---------------------------------------------------------------------------------------------------------------------
# Sorting and searching, on either backend.  Arrays passed to these are the metric's own copies.


def _sorted(a):
    if isinstance(a, np.ndarray):
        a.sort()  # in place; numpy's vectorised sort is several times faster than torch's on the CPU
        return a
    return torch.sort(a).values


def _top(a, k: int):
    """The ``k`` largest values of ``a``, sorted ascending (values equal to the smallest of them may also lie outside).

    On the CPU the rest is split off in linear time (``partition``) and left unsorted; ``a`` is reordered.
    """
    n = a.shape[0]
    if k >= n:
        return _sorted(a)
    if isinstance(a, np.ndarray):
        a.partition(n - k)
        return _sorted(a[n - k :])
    return torch.sort(a).values[n - k :]


def _search(sorted_a, keys, side: str):
    if isinstance(sorted_a, np.ndarray):
        return np.searchsorted(sorted_a, keys, side=side)
    return torch.searchsorted(sorted_a, keys, side=side)


def _sum(a) -> int:
    return int(a.sum(dtype=np.int64)) if isinstance(a, np.ndarray) else int(a.sum())


# ---------------------------------------------------------------------------------------------------------------------
# AUROC


def _mann_whitney_u_x2(scores, labels) -> int:
    """Twice the Mann-Whitney U, exactly: the sum over positives of 2 x (negatives below) + (negatives tied).

    Only the scores are sorted (negatives and positives apart, no index array); each positive is located among the
    negatives by binary search, where the left and the right insertion points add up to exactly that count.  Float
    comparison makes -0.0 and 0.0 tie.  The positives are searched in sorted order, which keeps the search in cache.
    """
    negatives = _sorted(scores[~labels])
    positives = _sorted(scores[labels])
    return _sum(_search(negatives, positives, "left")) + _sum(_search(negatives, positives, "right"))


def auroc(scores, labels, what: str = "auroc") -> float:
    """Exact area under the ROC curve of ``scores`` against binary ``labels`` (any shapes, equal).

    Example: ``auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75``.
    """
    scores, labels = _as_flat(scores, labels, what)
    n_pos = _count(labels)
    n_neg = labels.shape[0] - n_pos
    return _mann_whitney_u_x2(scores, labels) / (2 * n_pos * n_neg)


def image_auroc(pred_score, gt_label) -> float:
    """Image-level AUROC: one score per image ``(N,)`` against its label (1 defective).

    Example: ``image_auroc(image_score(maps), test["gt_label"])``.
    """
    return auroc(pred_score, gt_label, "image_auroc")


def pixel_auroc(anomaly_map, gt_mask) -> float:
    """Pixel-level AUROC pooled over every pixel of every image: ``(N, 1, H, W)`` maps against masks (> 0.5).

    Example: ``pixel_auroc(maps, test["gt_mask"])`` for ``(N, 1, H, W)`` maps and masks.
    """
    anomaly_map = _array(anomaly_map, "pixel_auroc")
    if _shape(anomaly_map) != _shape(gt_mask):
        raise ValueError(f"pixel_auroc: anomaly_map has shape {_shape(anomaly_map)} but gt_mask {_shape(gt_mask)}")
    return auroc(anomaly_map, _mask(gt_mask, anomaly_map, "pixel_auroc"), "pixel_auroc")


def per_defect_auroc(pred_score, defect_type: list[str]) -> dict[str, float]:
    """Image AUROC of each defect type against the good images.

    Args:
        pred_score: one score per image ``(N,)``.
        defect_type: each image's defect type, ``"good"`` for the good images.

    Returns:
        ``{defect type: image AUROC of its images against the good ones}``.
    """
    pred_score = _array(pred_score, "per_defect_auroc").reshape(-1)
    if len(defect_type) != pred_score.shape[0]:
        raise ValueError(f"per_defect_auroc: {pred_score.shape[0]} scores but {len(defect_type)} defect types")
    kinds = np.array(defect_type)
    good = kinds == "good"
    out = {}
    for kind in sorted(set(defect_type) - {"good"}):
        keep = good | (kinds == kind)
        out[kind] = auroc(pred_score[_on(keep, pred_score)], kinds[keep] == kind, f"image_auroc[{kind}]")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# F1-max


def f1_max(scores, labels) -> float:
    """The best F1 score over all thresholds (predict defective when score >= threshold).

    The best threshold is a positive's score (lowering a threshold past negatives only lowers F1).  At threshold t,
    F1 = 2 TP / (TP + FP + P) with TP and FP the positives and negatives >= t.  Only the negatives above a cut are
    sorted: every threshold at or below the k-th largest negative has FP >= k, so F1 <= 2P / (2P + k) there; when the
    best F1 above the cut reaches that bound it is the answer, otherwise all negatives are sorted.

    Example: ``f1_max([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.8`` (threshold 0.35: TP 2, FP 1).
    """
    scores, labels = _as_flat(scores, labels, "f1_max")
    positives = _sorted(scores[labels])
    negatives = scores[~labels]
    n_pos, n_neg = positives.shape[0], negatives.shape[0]
    tp = n_pos - _search(positives, positives, "left")  # positives >= each positive's score
    k = min(n_neg, 8 * n_pos)  # enough when the best F1 is >= 0.2
    while True:
        top = _top(negatives, k)
        fp = top.shape[0] - _search(top, positives, "left")  # exact wherever the threshold exceeds top[0]
        exact = positives > top[0] if k < n_neg else positives == positives
        f1 = 2 * _f64(tp[exact]) / _f64(tp[exact] + fp[exact] + n_pos)
        best = float(f1.max()) if f1.shape[0] else 0.0
        if k == n_neg or best >= 2 * n_pos / (2 * n_pos + k):
            return best
        k = n_neg


def at_threshold(scores, labels, threshold: float) -> dict:
    """Precision, recall and F1 of one decision rule, defective when ``score > threshold``, and its four counts.

    Strictly above: a threshold set at a clean image's score (:func:`stainlib.predict.threshold_at`) does not flag
    that image.  (:func:`f1_max` searches thresholds with ``>=``; at a threshold between two scores they agree.)
    Labels (or masks) are defective where > 0.5; one class alone is allowed.  With nothing flagged, the precision is
    0, as scikit-learn reports it.

    Returns:
        ``{"precision", "recall", "f1", "tp", "fp", "tn", "fn"}``.
    """
    s = np.asarray(_on(_array(scores, "at_threshold"), np.empty(0))).reshape(-1)
    y = np.asarray(_on(labels, np.empty(0))).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"at_threshold: {s.shape[0]} scores but {y.shape[0]} labels")
    if s.shape[0] == 0:
        raise ValueError("at_threshold: no scores")
    _check_finite(s, "at_threshold")
    y = y if y.dtype == np.bool_ else y > 0.5
    flagged = s > threshold
    tp = _count(flagged & y)
    fp, fn = _count(flagged) - tp, _count(y) - tp
    tn = s.shape[0] - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


# ---------------------------------------------------------------------------------------------------------------------
# AUPRO


_STRUCTURES = {4: np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]]), 8: np.ones((3, 3), int)}


def _regions(masks: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """Region id of every positive pixel, in the flat (C) order of ``masks`` ``(N, H, W)``, and each region's size."""
    from scipy import ndimage

    ids, offset = [], 0
    for i in np.flatnonzero(masks.reshape(masks.shape[0], -1).any(1)):
        regions, count = ndimage.label(masks[i], structure=_STRUCTURES[connectivity])
        ids.append(regions[masks[i]] + (offset - 1))
        offset += count
    ids = np.concatenate(ids)
    return ids, np.bincount(ids, minlength=offset)


def aupro(anomaly_map, gt_mask, fpr_limit: float = 0.3, connectivity: int = 8) -> float:
    """Normalised area under the per-region-overlap (PRO) curve for false-positive rates up to ``fpr_limit``.

    The MVTec AD evaluation's definition (Bergmann et al.): each connected region of the ground truth (8-connected;
    ``connectivity=4`` for edge neighbours only) counts equally, whatever its size.  At a threshold t, PRO(t) is the
    mean over regions of the fraction of the region's pixels with a score >= t, and FPR(t) the fraction of
    defect-free pixels with a score >= t.  The curve through the points at every distinct score is integrated with
    the trapezoid rule up to ``fpr_limit`` (interpolated linearly there), and divided by ``fpr_limit``.

    ``anomaly_map`` and ``gt_mask`` are ``(N, 1, H, W)`` or ``(N, H, W)``, mask pixels > 0.5 being defective.

    Computed without a threshold sweep: the area up to the last full segment is a weighted Mann-Whitney count, the
    sum over positive pixels p of weight(p) x (negatives above the cut that p beats, ties one half) / (negatives),
    with weight(p) = 1 / (size of p's region x number of regions); the partial segment at the cut is added apart.

    Returns:
        The normalised area, in [0, 1] (1: every region fully found before any false positive).
    """
    what = "aupro"
    if connectivity not in _STRUCTURES:
        raise ValueError(f"{what}: connectivity must be 4 or 8, got {connectivity}")
    if not 0 < fpr_limit <= 1:
        raise ValueError(f"{what}: fpr_limit must lie in (0, 1], got {fpr_limit}")
    scores = _array(anomaly_map, what)
    shape, mask_shape = _shape(scores), _shape(gt_mask)
    if not (len(shape) == 3 or (len(shape) == 4 and shape[1] == 1)):
        raise ValueError(f"{what}: anomaly_map must have shape (N, 1, H, W) or (N, H, W), got {shape}")
    if shape != mask_shape:
        raise ValueError(f"{what}: anomaly_map has shape {shape} but gt_mask {mask_shape}")
    scores, labels = _as_flat(scores, _mask(gt_mask, scores, what), what)
    masks = _on(labels, np.empty(0)).reshape(shape[0], shape[-2], shape[-1])
    ids, sizes = _regions(masks, connectivity)
    n_regions = sizes.shape[0]

    negatives = scores[~labels]
    n_neg = negatives.shape[0]
    k = max(1, min(n_neg, math.ceil(fpr_limit * n_neg)))  # the cut lies in the segment of the k-th largest negative
    top = _top(negatives, k)
    cut = top[0]  # FPR(> cut) < fpr_limit <= FPR(>= cut)
    top = top[_sum(_search(top, top[:1], "right")) :]  # the negatives above the cut, sorted
    n_above = top.shape[0]
    n_at_cut = _count(negatives == cut)

    positives = scores[labels]
    order = torch.sort(positives).indices if isinstance(positives, torch.Tensor) else np.argsort(positives)
    positives = positives[order]  # searched in sorted order, which keeps the search in cache
    beaten = _search(top, positives, "left") + _search(top, positives, "right")  # twice (below + half tied)
    ids_sorted = ids[_on(order, ids)]
    per_region = np.bincount(ids_sorted, weights=_f64(_on(beaten, ids)), minlength=n_regions)
    area = float((per_region / sizes).sum()) / (2 * n_regions * n_neg)

    # The partial segment: from (FPR(> cut), PRO(> cut)) towards (FPR(>= cut), PRO(>= cut)), stopped at fpr_limit.
    above = _on(positives > cut, ids)
    at_least = _on(positives >= cut, ids)
    pro_above = float((np.bincount(ids_sorted[above], minlength=n_regions) / sizes).mean())
    pro_at_least = float((np.bincount(ids_sorted[at_least], minlength=n_regions) / sizes).mean())
    width = fpr_limit - n_above / n_neg
    if width > 0:
        reached = pro_above + (fpr_limit * n_neg - n_above) / n_at_cut * (pro_at_least - pro_above)
        area += width * (pro_above + reached) / 2
    return area / fpr_limit
