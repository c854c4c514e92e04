"""A trained run on new images: a calibrated threshold and a decision per image (book chapter 8, "Beyond the paper",
section "Your own images").

* :func:`predict` — ``stainlib.predict(run, images)``: each image's ``pred_score``, ``anomaly_map``, ``pred_label``
  and ``pred_mask`` (anomalib's names), the images read and resized as the run was trained;
* the image and pixel thresholds it decides with are :mod:`stainlib.threshold`'s (calibrated once on the run's clean
  validation images, kept in ``threshold.json``);
* :func:`best_map` — the map a run detects best with, by the image AUROC of its evaluations;
* :func:`image_files` and :func:`read_images` — files and folders of images, converted exactly as the training data
  (:class:`stainlib.data.MVTecAD`'s reading); an unreadable file is named and skipped;
* :func:`predict_to_folder` is ``stainlib predict``: the decisions written by
  :func:`stainlib.predictions.write_predictions` (``predictions.csv``, one heatmap PNG per image and ``summary.txt``).

The maps are :func:`stainlib.detect.anomaly_maps`' and the scores :func:`stainlib.detect.image_score`'s, the
functions ``stainlib evaluate`` calls, on all the images at once: the same images in the same order get the same
scores as there.  (The Monte-Carlo-dropout masks come from one seeded stream over the images, as in ``evaluate``, so
an image's uncertainty map varies slightly with the images before it; the residual does not.)

An image is flagged defective when its score is **strictly above** the image threshold, and a pixel when its map value
is strictly above the pixel threshold.  This module is also callable: ``stainlib.predict(run, images)`` is
:func:`predict`.
"""

from __future__ import annotations

import math
import os
import sys
import types
from pathlib import Path

import torch

from .checkpoints import load_run, read_config
from .data import IMAGE_SUFFIXES, DataError, MVTecAD
from .detect import METHODS, anomaly_maps, image_score
from .predictions import summary_text, write_predictions
from .runs import read_metrics
from .spec import stored_settings
from .threshold import (
    DEFAULT_FPR,
    THRESHOLDS,
    calibrated_metrics,
    read_thresholds,
    settings_and_root,
    threshold_at,
    thresholds,
    validation_images,
)
from .train import pick_device

__all__ = [
    "DEFAULT_FPR",
    "THRESHOLDS",
    "best_map",
    "calibrated_metrics",
    "image_files",
    "predict",
    "predict_to_folder",
    "read_images",
    "read_thresholds",
    "threshold_at",
    "thresholds",
]


# ---------------------------------------------------------------------------------------------------------------------
# Which map


def best_map(run) -> tuple[str, str]:
    """The map of ``run`` with the highest image AUROC in its ``metrics.json``, and why, in words.

    A run never evaluated gets the residual, the paper's map.
    """
    metrics = read_metrics(run)
    found = {m: metrics[m]["image_auroc"] for m in METHODS if "image_auroc" in metrics.get(m, {})}
    if not found:
        return "residual", "the paper's map; the run has no evaluation in metrics.json to choose by"
    best = max(found, key=found.get)
    listed = ", ".join(f"{m} {v:.3f}" for m, v in found.items())
    return best, f"the run's best by image AUROC on its test split ({listed})"


# ---------------------------------------------------------------------------------------------------------------------
# Reading new images


class _Reader(MVTecAD):
    """:class:`~stainlib.data.MVTecAD`'s image reading (size, grey or RGB, 8 or 16 bits) without a dataset folder."""

    def __init__(self, size: int, color: str):  # no MVTecAD.__init__: there is no folder to index
        self.size, self.color = int(size), color

    def read(self, path) -> torch.Tensor:
        return self._load_image(Path(path))


def image_files(paths, exclude=None) -> tuple[list[Path], list[tuple[str, str]]]:
    """The image files that ``paths`` name: files as given, folders searched (recursively, sorted) for images.

    Returns the files and the ``(path, reason)`` of each path that names nothing usable.  Files under ``exclude``
    (the output folder) are left out, so a second run does not read the first one's heatmaps.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    skip = Path(exclude).resolve() if exclude is not None else None
    files, problems = [], []
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(
                p
                for p in given.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            found = [p for p in found if skip is None or skip not in p.resolve().parents]
            if not found:
                problems.append((str(given), f"no image ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder {given}"))
            files += found
        elif given.is_file():
            files.append(given)
        else:
            problems.append((str(given), f"no such file or folder: {given}"))
    return files, problems


def read_images(files, size: int, color: str, strict: bool = False, progress: bool = False, log=print):
    """``files`` as one ``(N, C, size, size)`` tensor in [0, 1], read exactly as the training images are.

    Returns the tensor, the files read and the ``(path, reason)`` of each file skipped; with ``strict``, the first
    unreadable file raises :class:`~stainlib.data.DataError` instead.
    """
    from tqdm.auto import tqdm

    reader, images, kept, skipped = _Reader(size, color), [], [], []
    for path in tqdm(files, desc="reading", unit="image", disable=not progress):
        try:
            images.append(reader.read(path))
            kept.append(Path(path))
        except DataError as exc:
            if strict:
                raise
            log(f"skipped: {exc}")
            skipped.append((str(path), str(exc)))
    channels = 1 if color == "gray" else 3
    stacked = torch.stack(images) if images else torch.zeros(0, channels, size, size)
    return stacked, kept, skipped


# ---------------------------------------------------------------------------------------------------------------------
# Predicting


def _given(value, what: str):
    if value is None or value == "auto":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be 'auto' or a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def predict(
    run,
    images,
    map: str | None = None,
    threshold="auto",
    pixel_threshold="auto",
    fpr: float = DEFAULT_FPR,
    n_samples: int = 30,
    device: str = "auto",
    batch_size: int = 32,
    data_root=None,
    strict: bool = False,
    progress: bool = False,
    exclude=None,
    log=print,
) -> dict:
    """Score ``images`` with the run folder ``run`` and decide, per image and per pixel, whether it is defective.

    ``images`` is a path or a list of paths (image files, or folders searched recursively: PNG, JPEG, BMP, TIFF, any
    size and mode, converted as the run's training images were), or a ``(N, C, H, W)`` tensor already at the run's
    size and channels.  ``map`` is the kind of anomaly map, ``residual``, ``uncertainty`` or ``combined`` (default:
    :func:`best_map`); ``threshold`` and ``pixel_threshold`` are ``"auto"`` (calibrated at ``fpr`` by
    :func:`thresholds`) or numbers, which override them.  ``batch_size`` is the batch of the reconstruction pass; the
    GPU is used where there is one (``device="auto"``).

    Returns a dict with ``pred_score`` ``(N,)``, ``anomaly_map`` ``(N, 1, H, W)``, ``pred_label`` ``(N,)`` and
    ``pred_mask`` ``(N, 1, H, W)`` (booleans, True = defective), the ``image`` tensor, the ``path`` of each image
    (None for a tensor), the ``skipped`` files with the reason, the ``map`` with ``map_reason``, and the
    ``image_threshold`` and ``pixel_threshold`` with ``threshold_how``.
    """
    run = Path(run)
    settings = stored_settings(read_config(run))
    size, color = int(settings["image_size"]), settings["color"]
    image_t, pixel_t = _given(threshold, "threshold"), _given(pixel_threshold, "pixel_threshold")
    if map is None:
        map, reason = best_map(run)
    elif map in METHODS:
        reason = "chosen"
    else:
        raise ValueError(f"unknown map {map!r}; known: {', '.join(METHODS)}")

    if isinstance(images, torch.Tensor):
        channels = 1 if color == "gray" else 3
        if images.dim() != 4 or tuple(images.shape[1:]) != (channels, size, size):
            raise ValueError(
                f"images must be (N, {channels}, {size}, {size}) for this run ({color}, {size} px), got "
                f"{tuple(images.shape)}; pass the files instead to have them converted"
            )
        x, paths, skipped = images.float().cpu(), [None] * len(images), []
    else:
        files, skipped = image_files(images, exclude=exclude)
        if skipped and strict:
            raise DataError(skipped[0][1])
        for _, why in skipped:
            log(f"skipped: {why}")
        x, paths, unreadable = read_images(files, size, color, strict=strict, progress=progress, log=log)
        skipped += unreadable

    model, _ = load_run(run, device=pick_device(device))
    # The validation images are read only where needed: the combined map's normaliser, or a threshold not yet kept.
    val = validation_images(*settings_and_root(run, data_root)) if map == "combined" else None
    how = {}
    if image_t is None or pixel_t is None:
        record = thresholds(run, map, fpr, n_samples, data_root=data_root, model=model, val_images=val, log=log)
        if image_t is None:
            image_t, how["image"] = record["image_threshold"], record["how"]
        if pixel_t is None:
            pixel_t = record["pixel_threshold"]
            how["pixel"] = f"calibrated the same way on the {record['n_val_pixels']:,} validation pixels"
    how.setdefault("image", f"given ({image_t:g})")
    how.setdefault("pixel", f"given ({pixel_t:g})")

    if len(x):
        if progress:
            passes = "" if map == "residual" else f", T = {n_samples}"
            log(f"computing the {map} map of {len(x)} images{passes}")
        anomaly_map = anomaly_maps(model, x, (map,), n_samples, val, batch_size=batch_size)[map]
    else:
        anomaly_map = torch.zeros(0, 1, size, size)
    pred_score = image_score(anomaly_map)
    return {
        "pred_score": pred_score,
        "anomaly_map": anomaly_map,
        "pred_label": pred_score > image_t,
        "pred_mask": anomaly_map > pixel_t,
        "image": x,
        "path": [None if p is None else str(p) for p in paths],
        "skipped": skipped,
        "map": map,
        "map_reason": reason,
        "image_threshold": image_t,
        "pixel_threshold": pixel_t,
        "threshold_how": how,
        "run": str(run),
        "device": str(next(model.parameters()).device),
        "n_samples": None if map == "residual" else n_samples,
    }


def predict_to_folder(run, paths, out, log=print, **options) -> int:
    """``stainlib predict``: :func:`predict` on ``paths``, :func:`write_predictions` into ``out``, the summary printed.

    Returns 0, or 1 when a path was skipped: each is named as it is met, in the summary, and once more on stderr at
    the end.  ``options`` are :func:`predict`'s.
    """
    options.setdefault("progress", True)
    result = predict(run, paths, exclude=out, log=log, **options)
    written = write_predictions(result, out, progress=options["progress"])
    log(summary_text(result) + f"written: {written['csv']}, {written['summary']}, {len(written['heatmaps'])} heatmaps")
    if result["skipped"]:
        names = ", ".join(path for path, _ in result["skipped"])
        print(f"stainlib predict: {len(result['skipped'])} path(s) skipped: {names}", file=sys.stderr)
    return 1 if result["skipped"] else 0


class _CallableModule(types.ModuleType):
    """This module, callable: ``stainlib.predict(run, images)`` is :func:`predict`."""

    def __call__(self, *args, **kwargs):
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
