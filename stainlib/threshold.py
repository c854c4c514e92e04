"""The calibrated threshold of a run: the image and pixel thresholds of a map at a false-positive rate on the run's
clean validation images (book chapter 8, "Beyond the paper", section "Your own images").

* :func:`threshold_at` — the threshold that at most a share ``fpr`` of clean scores lie above;
* :func:`thresholds` — computed once per map and kept in the run folder's ``threshold.json``, which ``SHA256SUMS``
  covers (:func:`read_thresholds` checks it);
* :func:`calibrated_metrics` — their precision, recall and F1 on a labelled test split (``stainlib evaluate``
  reports them beside F1-max).

An image is flagged defective when its score is **strictly above** the image threshold, and a pixel when its map value
is strictly above the pixel threshold.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .checkpoints import RunError, load_run, read_config
from .checksums import check_checksum, read_checksums, write_listed
from .data import MVTecAD
from .detect import METHODS, anomaly_maps, image_score
from .files import read_json
from .metrics import at_threshold
from .spec import stored_settings
from .train import pick_device

__all__ = [
    "DEFAULT_FPR",
    "THRESHOLDS",
    "calibrated_metrics",
    "read_thresholds",
    "settings_and_root",
    "threshold_at",
    "thresholds",
    "validation_images",
]

THRESHOLDS = "threshold.json"
DEFAULT_FPR = 0.01


def threshold_at(clean_scores, fpr: float) -> tuple[float, int]:
    """The threshold that at most ``floor(fpr x n)`` of the ``n`` clean scores lie above, and how many do.

    It is the (k+1)-th largest clean score, k = floor(fpr x n): flagging scores strictly above it flags at most k of
    the clean ones (fewer where scores tie).  With fewer than 1 / fpr scores, k is 0 and the threshold is the highest
    clean score: the rate that n clean images can resolve is 1 / n, not ``fpr``.

    Args:
        clean_scores: scores of clean images or pixels, any shape (a tensor or a sequence), finite.
        fpr: the false-positive rate to allow, in (0, 1).

    Returns:
        ``(threshold, above)``: the threshold and how many clean scores lie strictly above it;
        ``threshold_at([1., 2., 3., 4.], 0.25) == (3.0, 1)``.

    Raises:
        ValueError: ``fpr`` is outside (0, 1), there are no scores, or one is not finite.
    """
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must lie in (0, 1), got {fpr}")
    s = torch.as_tensor(clean_scores).detach().flatten().float().cpu()
    if s.numel() == 0:
        raise ValueError("no clean scores to calibrate a threshold on")
    if not bool(torch.isfinite(s).all()):
        raise ValueError("the clean scores hold NaN or infinite values")
    k = math.floor(fpr * s.numel() + 1e-9)
    t = torch.topk(s, k + 1).values[-1]
    return float(t), int((s > t).sum())


def settings_and_root(run: Path, data_root=None) -> tuple[dict, Path]:
    """A run's stored settings and the absolute data root its data is read from.

    Args:
        run: the run folder.
        data_root: a data root to use instead of the stored one (resolved), or ``None``.

    Returns:
        ``(settings, root)``: :func:`stainlib.spec.stored_settings` of its ``config.json``, and the root as a
        :class:`~pathlib.Path`.

    Raises:
        RunError: the stored root is relative and no ``data_root`` is given.
    """
    settings = stored_settings(read_config(run))
    root = Path(data_root).resolve() if data_root is not None else Path(settings["data_root"])
    if not root.is_absolute():
        raise RunError(
            f"{run} stores a relative data root {str(root)!r}, which depends on the current folder; pass data_root"
        )
    return settings, root


def validation_images(settings: dict, root: Path) -> torch.Tensor:
    """The run's clean validation images, the split :func:`stainlib.runs.evaluate` reads.

    Args:
        settings, root: :func:`settings_and_root`'s pair.

    Returns:
        The ``(N, C, H, W)`` images in [0, 1].
    """
    s = settings
    val = MVTecAD(root, s["category"], "val", size=s["image_size"], color=s["color"], seed=s["seed"])
    return val.tensors()["image"]


def read_thresholds(run) -> dict:
    """A run folder's ``threshold.json`` after its checksum is checked.

    Args:
        run: the run folder.

    Returns:
        ``{map: record}`` as :func:`thresholds` stores it; ``{}`` without the file.

    Raises:
        RunError: the file was changed after stainlib wrote it.
    """
    run = Path(run)
    if not (run / THRESHOLDS).exists():
        return {}
    check_checksum(run, THRESHOLDS)
    return read_json(run / THRESHOLDS)


def _key(method: str, fpr: float, n_samples: int, run: Path) -> dict:
    return {
        "map": method,
        "fpr": float(fpr),
        "n_samples": None if method == "residual" else int(n_samples),
        "checkpoint_sha256": (read_checksums(run).get("best.pt") or [None])[-1],
    }


def thresholds(
    run,
    method: str,
    fpr: float = DEFAULT_FPR,
    n_samples: int = 30,
    device: str = "auto",
    data_root=None,
    model=None,
    val_images=None,
    log=print,
) -> dict:
    """The image and pixel thresholds of ``method`` on ``run`` at ``fpr``: read from ``threshold.json``, or calibrated.

    Calibrating scores the run's clean validation images (the seeded 20 % of ``train/good`` that training held out)
    with the map and sets each threshold by :func:`threshold_at`: the image threshold on their scores, the pixel
    threshold on all their pixels.  The record is stored in ``threshold.json`` (its digest in ``SHA256SUMS``) with
    what it was made from: the map, ``fpr``, the MC passes and the digest of ``best.pt``; any of them changed, it is
    calibrated anew.  A run folder that cannot be written to keeps nothing (a line says so).

    The validation images are not fully unseen: they chose the best epoch (by PSNR), and for the combined map they
    also fit its normaliser, which lowers their scores, so new clean images exceed the threshold more often than
    ``fpr`` (the record's ``how`` says so).

    Args:
        run: the run folder.
        method: the map, one of :data:`stainlib.detect.METHODS`.
        fpr: the false-positive rate allowed on clean images, in (0, 1).
        n_samples: the MC-dropout passes of the uncertainty map.
        device: where to score, when ``model`` is not given.
        data_root: a data root instead of the stored one.
        model, val_images: the run's model and validation images, when the caller has them already.
        log: where the line about an unwritable folder goes.

    Returns:
        The record: ``image_threshold``, ``pixel_threshold``, the clean images' false-positive rates, ``how`` in words
        and what it was made from.

    Raises:
        ValueError: the map is unknown.
    """
    run = Path(run)
    if method not in METHODS:
        raise ValueError(f"unknown map {method!r}; known: {', '.join(METHODS)}")
    key = _key(method, fpr, n_samples, run)
    stored = read_thresholds(run)
    record = stored.get(method)
    if record is not None and all(record.get(k) == v for k, v in key.items()):
        return record
    settings, root = settings_and_root(run, data_root)
    if model is None:
        model, _ = load_run(run, device=pick_device(device))
    val = validation_images(settings, root) if val_images is None else val_images
    maps = anomaly_maps(model, val, (method,), n_samples, val)[method]
    image_t, image_above = threshold_at(image_score(maps), fpr)
    pixel_t, pixel_above = threshold_at(maps, fpr)
    n, n_pix = len(val), maps.numel()
    how = (
        f"calibrated on the run's {n} clean validation images at a false-positive rate of {fpr:g}: "
        f"{image_above} of {n} score above it"
    )
    if fpr * n < 1:
        how += f" (with {n} images the smallest rate they resolve is 1/{n} = {1 / n:.3f}, so it is their highest score)"
    if method == "combined":
        how += "; they also fit the combined map's normaliser, so new clean images exceed it more often"
    record = {
        **key,
        "image_threshold": image_t,
        "pixel_threshold": pixel_t,
        "n_val": n,
        "n_val_pixels": n_pix,
        "val_image_fpr": image_above / n,
        "val_pixel_fpr": pixel_above / n_pix,
        "data": {"data_root": str(root), "category": settings["category"], "split": "val"},
        "device": str(next(model.parameters()).device),
        "how": how,
    }
    stored[method] = record
    try:
        write_listed(run, THRESHOLDS, lambda p: p.write_text(json.dumps(stored, indent=2) + "\n"))
    except OSError as exc:
        log(f"the threshold is not kept: cannot write {run / THRESHOLDS} ({exc})")
    return record


def calibrated_metrics(
    run,
    method: str,
    model,
    pred_score,
    gt_label,
    anomaly_map,
    gt_mask,
    n_samples: int = 30,
    data_root=None,
    val_images=None,
    fpr: float = DEFAULT_FPR,
) -> dict:
    """Precision, recall and F1 of the calibrated thresholds on a labelled test split (``stainlib evaluate``'s).

    Beside F1-max, which picks its threshold on the test labels, this is what a user who never saw a defect gets.

    Args:
        run, method, model, n_samples, data_root, val_images, fpr: as :func:`thresholds`.
        pred_score, gt_label: ``(N,)`` image scores and labels (1: defective) of the test split.
        anomaly_map, gt_mask: ``(N, 1, H, W)`` maps and ground-truth masks of the test split.

    Returns:
        ``{"image_threshold", "image_precision", "image_recall", "image_f1", "image_counts", "pixel_...", "fpr",
        "n_val", "how"}``.
    """
    t = thresholds(run, method, fpr, n_samples, data_root=data_root, model=model, val_images=val_images)
    image = at_threshold(pred_score, gt_label, t["image_threshold"])
    pixel = at_threshold(anomaly_map, gt_mask, t["pixel_threshold"])
    return {
        "fpr": t["fpr"],
        "n_val": t["n_val"],
        "image_threshold": t["image_threshold"],
        "image_precision": image["precision"],
        "image_recall": image["recall"],
        "image_f1": image["f1"],
        "image_counts": {k: image[k] for k in ("tp", "fp", "fn", "tn")},
        "pixel_threshold": t["pixel_threshold"],
        "pixel_precision": pixel["precision"],
        "pixel_recall": pixel["recall"],
        "pixel_f1": pixel["f1"],
        "how": t["how"],
    }
