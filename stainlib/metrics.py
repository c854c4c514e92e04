"""Exact detection metrics on torch tensors (book chapter 6; chapter 9 for AUPRO and F1-max).

* :func:`auroc` — the area under the ROC curve, exact with ties (the Mann-Whitney statistic, ties counted one
  half, in integer arithmetic); it equals ``sklearn.metrics.roc_auc_score``.  The float32 scores of the negatives
  and of the positives are sorted apart (no index array), and each positive is located among the negatives by
  binary search.  Memory stays at about 9 bytes per pixel (the sorted copy and the labels), about 1 GB for the
  largest MVTec AD category (1,725 test images x 65,536 pixels).
* :func:`image_auroc`, :func:`pixel_auroc` (pooled over every pixel of every test image, good images included),
  :func:`per_defect_auroc`.
* :func:`aupro` — the normalised area under the per-region-overlap curve up to a false-positive rate of 0.3, as the
  MVTec AD authors define it; :func:`f1_max`.

Scores may live on any device; CUDA tensors are sorted on the GPU.  Bad input (shapes that differ, a single class,
NaN or infinite scores) raises ``ValueError``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["aupro", "auroc", "f1_max", "image_auroc", "per_defect_auroc", "pixel_auroc"]


def _all(mask: torch.Tensor) -> bool:
    # numpy reduces a large boolean array on one core many times faster than torch does.
    return bool(mask.numpy().all()) if mask.device.type == "cpu" else bool(mask.all())


def _count(mask: torch.Tensor) -> int:
    return int(np.count_nonzero(mask.numpy())) if mask.device.type == "cpu" else int(mask.sum())


def _as_flat(scores, labels, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.as_tensor(scores)
    labels = torch.as_tensor(labels, device=scores.device)
    if scores.shape != labels.shape:
        raise ValueError(f"{what}: scores have shape {tuple(scores.shape)} but labels {tuple(labels.shape)}")
    scores, labels = scores.reshape(-1), labels.reshape(-1)
    if scores.numel() == 0:
        raise ValueError(f"{what}: no scores")
    finite = torch.from_numpy(np.isfinite(scores.numpy())) if scores.device.type == "cpu" else torch.isfinite(scores)
    if not _all(finite):
        raise ValueError(f"{what}: {finite.numel() - _count(finite)} scores are NaN or infinite")
    if labels.dtype != torch.bool:
        if not _all((labels == 0) | (labels == 1)):
            raise ValueError(f"{what}: labels must be 0 or 1")
        labels = labels.bool()
    positives = _count(labels)
    if positives in (0, labels.numel()):
        present = "defective (1)" if positives else "good (0)"
        raise ValueError(f"{what}: only one class is present ({present}); an AUROC needs both good and defective")
    return scores, labels


def _sort_keys(scores: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Sorted int64 keys: the float32 score's order-preserving bits, shifted left, with the label in bit 0.

    Within a group of tied scores, negatives (label 0) sort before positives.
    """
    keys = (_ordered_keys(scores) << 1) | labels.to(torch.int64)
    if keys.device.type == "cpu":
        out = keys.numpy()
        out.sort()  # numpy's vectorised sort is several times faster than torch's on the CPU
        return out
    return torch.sort(keys).values.cpu().numpy()


def _ordered_keys(scores: torch.Tensor) -> torch.Tensor:
    """uint32-ordered keys of float32 scores, as int64: equal scores get equal keys, order is kept (-0.0 == 0.0)."""
    s = scores.to(torch.float32) + 0.0  # -0.0 becomes +0.0, so that the two zeros tie
    bits = s.view(torch.int32).to(torch.int64)
    return torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


def _mann_whitney_u_x2(scores: torch.Tensor, labels: torch.Tensor) -> int:
    """Twice the Mann-Whitney U, exactly: the sum over positives of 2 x (negatives below) + (negatives tied).

    Only the scores are sorted (negatives and positives apart, no index array); each positive is located among the
    negatives by binary search, where the left and the right insertion points add up to exactly that count.  Float
    comparison makes -0.0 and 0.0 tie.  The positives are searched in sorted order, which keeps the search in cache.
    """
    if scores.device.type == "cpu":
        s = scores.to(torch.float32).numpy()
        lab = labels.numpy()
        negatives = np.sort(s[~lab])  # numpy's vectorised sort is several times faster than torch's on the CPU
        positives = np.sort(s[lab])
        left = np.searchsorted(negatives, positives, side="left")
        right = np.searchsorted(negatives, positives, side="right")
        return int(left.sum(dtype=np.int64)) + int(right.sum(dtype=np.int64))
    s = scores.to(torch.float32)
    negatives = torch.sort(s[~labels]).values
    positives = torch.sort(s[labels]).values
    left = torch.searchsorted(negatives, positives, side="left")
    right = torch.searchsorted(negatives, positives, side="right")
    return int(left.sum()) + int(right.sum())


def auroc(scores, labels, what: str = "auroc") -> float:
    """Exact area under the ROC curve of ``scores`` against binary ``labels`` (any shapes, equal)."""
    scores, labels = _as_flat(scores, labels, what)
    n_pos = _count(labels)
    n_neg = labels.numel() - n_pos
    return _mann_whitney_u_x2(scores, labels) / (2 * n_pos * n_neg)


def image_auroc(pred_score, gt_label) -> float:
    """Image-level AUROC: one score per image ``(N,)`` against its label (1 defective)."""
    return auroc(pred_score, gt_label, "image_auroc")


def pixel_auroc(anomaly_map, gt_mask) -> float:
    """Pixel-level AUROC pooled over every pixel of every image: ``(N, 1, H, W)`` maps against masks."""
    anomaly_map, gt_mask = torch.as_tensor(anomaly_map), torch.as_tensor(gt_mask)
    if anomaly_map.shape != gt_mask.shape:
        raise ValueError(
            f"pixel_auroc: anomaly_map has shape {tuple(anomaly_map.shape)} but gt_mask {tuple(gt_mask.shape)}"
        )
    return auroc(anomaly_map, gt_mask > 0.5, "pixel_auroc")


def per_defect_auroc(pred_score, defect_type: list[str]) -> dict[str, float]:
    """Image AUROC of each defect type against the good images."""
    pred_score = torch.as_tensor(pred_score).reshape(-1)
    if len(defect_type) != len(pred_score):
        raise ValueError(f"per_defect_auroc: {len(pred_score)} scores but {len(defect_type)} defect types")
    kinds = np.array(defect_type)
    good = kinds == "good"
    out = {}
    for kind in sorted(set(defect_type) - {"good"}):
        keep = torch.from_numpy(good | (kinds == kind))
        out[kind] = auroc(
            pred_score[keep.to(pred_score.device)],
            torch.from_numpy(kinds[keep.numpy()] == kind),
            f"image_auroc[{kind}]",
        )
    return out


def f1_max(scores, labels) -> float:
    """The best F1 score over all thresholds (predict defective when score >= threshold)."""
    scores, labels = _as_flat(scores, labels, "f1_max")
    keys = _sort_keys(-scores.to(torch.float32), labels)  # descending scores
    values, lab = keys >> 1, keys & 1
    ends = np.concatenate([np.flatnonzero(values[1:] != values[:-1]), [len(keys) - 1]])
    tp = np.cumsum(lab)[ends].astype(np.float64)
    predicted = (ends + 1).astype(np.float64)
    n_pos = float(lab.sum())
    f1 = 2 * tp / (predicted + n_pos)
    return float(f1.max())


def aupro(anomaly_map, gt_mask, fpr_limit: float = 0.3) -> float:
    """Normalised area under the per-region-overlap (PRO) curve for false-positive rates up to ``fpr_limit``.

    Each connected region of the ground truth counts equally, whatever its size (Bergmann et al., MVTec AD).  At a
    threshold t, PRO(t) is the mean over regions of the fraction of the region's pixels with a score >= t, and FPR(t)
    the fraction of defect-free pixels with a score >= t.  The curve is exact at every distinct score, integrated with
    the trapezoid rule up to ``fpr_limit`` (interpolated there), and divided by ``fpr_limit``.
    """
    from scipy import ndimage

    anomaly_map = torch.as_tensor(anomaly_map)
    gt_mask = torch.as_tensor(gt_mask)
    if anomaly_map.shape != gt_mask.shape:
        raise ValueError(f"aupro: anomaly_map has shape {tuple(anomaly_map.shape)} but gt_mask {tuple(gt_mask.shape)}")
    if not 0 < fpr_limit <= 1:
        raise ValueError(f"aupro: fpr_limit must lie in (0, 1], got {fpr_limit}")
    scores, labels = _as_flat(anomaly_map, gt_mask > 0.5, "aupro")
    masks = (gt_mask > 0.5).reshape(gt_mask.shape[0], *gt_mask.shape[-2:]).cpu().numpy()
    weights = np.zeros(masks.shape, np.float64)
    n_regions = 0
    for i, m in enumerate(masks):
        regions, count = ndimage.label(m)
        if count:
            sizes = np.bincount(regions.ravel())
            weights[i] = np.where(regions > 0, 1.0 / sizes[regions], 0.0)
            n_regions += count
    weights = weights.ravel() / n_regions
    negatives = ~labels.cpu().numpy()
    values = scores.cpu().numpy().astype(np.float32)
    order = np.argsort(-values, kind="stable")
    sorted_scores = values[order]
    ends = np.concatenate([np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), [len(order) - 1]])
    pro = np.concatenate([[0.0], np.cumsum(weights[order])[ends]])
    fpr = np.concatenate([[0.0], np.cumsum(negatives[order])[ends] / negatives.sum()])
    keep = fpr <= fpr_limit
    x, y = fpr[keep], pro[keep]
    if x[-1] < fpr_limit and keep.sum() < len(fpr):  # interpolate the curve at the limit
        j = keep.sum()
        t = (fpr_limit - fpr[j - 1]) / (fpr[j] - fpr[j - 1])
        x = np.append(x, fpr_limit)
        y = np.append(y, pro[j - 1] + t * (pro[j] - pro[j - 1]))
    return float(np.trapezoid(y, x) / fpr_limit)
