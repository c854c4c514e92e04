"""A run, from its spec to its scores: train, evaluate, load-or-train (book chapters 4, 5 and 7).

* :func:`train` trains (or resumes) the run of a :class:`~stainlib.spec.RunSpec` in ``<out>/<category>/<name>``;
* :func:`evaluate` scores a run folder on its test split and merges the result into its ``metrics.json``;
* :func:`load_or_train` gives the model of a spec: loaded when its folder holds the same, finished run, trained or
  resumed otherwise, and refused (or retrained, when asked) when the folder holds a run with other settings;
* :func:`read_metrics` is the one reader of ``metrics.json``, and :func:`evaluate` its one writer;
* with ``at_step``, :func:`evaluate` scores a snapshot (``steps/step-000125.pt``, kept by ``train(keep_steps=...)``)
  instead of the final model, and merges the result into ``steps/metrics-000125.json``, which
  :func:`read_step_metrics` reads back as a learning curve; ``metrics.json`` is left as it is.

A run's initial weights are drawn from its seed (:func:`new_model`), without touching the caller's random state, so
the same spec trained twice gives the same weights.

Training, clearing a folder for ``retrain`` and evaluating each hold the run folder's lock
(:func:`stainlib.files.run_lock`), so none of them mixes its files with another process's.  ``retrain`` clears a
folder made with other settings, or damaged, but never one that holds files stainlib did not write (it names them).
An unfinished run (fewer epochs in its ``history.csv`` than its config asks) is not evaluated unless asked
(``unfinished=True``, ``--unfinished``), and then its ``metrics.json`` records the epochs, steps and images trained.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from .checkpoints import (
    SNAPSHOTS,
    evaluated_steps,
    foreign_files,
    kept_steps,
    load_checkpoint,
    read_config,
    snapshot_name,
    trained_epochs,
)
from .checksums import read_listed_json, write_listed
from .data import MVTecAD, skipped_words, train_fingerprint
from .detect import METHODS, anomaly_maps, image_score
from .files import LOCK_NAME, run_lock, stale_temporaries
from .metrics import aupro, f1_max, image_auroc, per_defect_auroc, pixel_auroc
from .models import build_model
from .plotting import evaluation_figure
from .spec import RunSpec, stored_settings
from .synthetic import is_synthetic_category
from .threshold import calibrated_metrics
from .train import RunError, TrainConfig, fit, is_complete, load_run, pick_device

__all__ = [
    "METHODS",
    "anomaly_maps",
    "check_run",
    "evaluate",
    "load_or_train",
    "new_model",
    "read_config",
    "read_metrics",
    "figure_name",
    "read_step_metrics",
    "train",
]


def read_metrics(run) -> dict:
    """A run folder's ``metrics.json`` (``{method: result}``), empty when it has none; checked against
    ``SHA256SUMS`` where it is listed there, and for its layout (an object of objects)."""
    path = Path(run) / "metrics.json"
    if not path.exists():
        return {}
    metrics = read_listed_json(run, "metrics.json")
    bad = [k for k, v in metrics.items() if not isinstance(v, dict)]
    if bad:
        raise ValueError(f"{path}: the entry {bad[0]!r} is not an object of results; delete or repair the file")
    return metrics


def _metrics_name(step: int | None) -> str:
    return "metrics.json" if step is None else f"{SNAPSHOTS}/metrics-{int(step):06d}.json"


def figure_name(map_name: str, step: int | None = None) -> str:
    """The figure ``evaluate`` saves for ``map_name``, relative to the run folder: ``figure_residual.png``, or
    ``steps/figure_residual-002000.png`` for the snapshot of step 2,000."""
    return f"figure_{map_name}.png" if step is None else f"{SNAPSHOTS}/figure_{map_name}-{int(step):06d}.png"


def read_step_metrics(run) -> dict:
    """The metrics of a run's snapshots, ``{step: {map: result}}`` (steps evaluated with ``at_step``), by step; the
    weights need not be there (a committed result keeps the metrics only)."""
    return {step: read_listed_json(run, _metrics_name(step)) for step in evaluated_steps(run)}


def _write_metrics(run: Path, method: str, result: dict, step: int | None = None) -> None:
    name = _metrics_name(step)
    merged = read_listed_json(run, name) if (run / name).exists() else {}
    merged[method] = result
    write_listed(run, _metrics_name(step), lambda p: p.write_text(json.dumps(merged, indent=2) + "\n"))


def _damage(run: Path) -> str | None:
    """Why the run folder ``run`` cannot be loaded or resumed as it is (a damaged or missing file), or None."""
    try:
        read_config(run)
        read_metrics(run)
        for name in ("last.pt", "best.pt"):
            if (run / name).exists():
                load_checkpoint(run, name)
    except (RunError, ValueError, OSError) as exc:
        return str(exc).splitlines()[0]
    if (run / "last.pt").exists() and not (run / "best.pt").exists():
        return "its best.pt is missing"
    return None


def _clear(run: Path, why: str, log) -> None:
    """Delete the files of the run folder ``run`` (not its lock) to train it anew; refuse if stainlib did not write
    all of them."""
    with run_lock(run):
        foreign = foreign_files(run)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise RunError(
                f"refusing to retrain {run} ({why}): it holds files stainlib did not write ({shown}); move them out "
                "of the folder, then run again"
            )
        log(f"retraining {run}: {why}")
        for p in run.iterdir():
            if p.is_dir():  # steps/, the snapshots: foreign_files has checked what it holds
                shutil.rmtree(p)
            elif p.name != LOCK_NAME:
                p.unlink()


def check_run(spec: RunSpec, run, retrain: bool = False, log=print) -> bool:
    """Whether ``run`` already holds the finished run of ``spec``; a run with other settings is an error.

    Returns False when the folder is empty or holds an unfinished (or shorter) run of the same spec, to be trained.
    With ``retrain``, a folder made with other settings or other training images, or damaged (a file that fails its
    checksum or cannot be read, a lost ``best.pt``), is cleared instead of refused, under the folder's lock; a folder
    that holds files stainlib did not write is never cleared (:class:`RunError` names them).
    """
    run = Path(run)
    if not (run / "config.json").exists():
        if retrain and any((run / name).exists() for name in ("last.pt", "best.pt", "metrics.json")):
            _clear(run, "it has no config.json", log)
        return False
    if retrain:
        why = _damage(run)
        diffs = [] if why else spec.differences(read_config(run))
        if diffs:
            more = f"; {len(diffs) - 3} more" if len(diffs) > 3 else ""
            why = f"it was made with other settings ({'; '.join(diffs[:3])}{more})"
        elif not why:
            then = read_config(run).get("data", {}).get("fingerprint")
            if then is not None and then != train_fingerprint(spec.data_root, spec.category):
                why = "its training images changed since it was made"
        if why:
            _clear(run, why, log)
            return False
    diffs = spec.differences(read_config(run))
    if diffs:
        raise RunError(
            f"run folder {run} was made with other settings; refusing to reuse it (pass retrain=True, or "
            "--retrain, to train it anew):\n  " + "\n  ".join(diffs)
        )
    return is_complete(run) and read_config(run)["train"]["epochs"] == spec.epochs


def _split(spec_or_settings: dict, split: str, data_root=None) -> MVTecAD:
    s = spec_or_settings
    return MVTecAD(
        data_root or s["data_root"], s["category"], split, size=s["image_size"], color=s["color"], seed=s["seed"]
    )


def train(
    spec: RunSpec,
    out="runs",
    device: str = "auto",
    retrain: bool = False,
    progress: bool = True,
    log=print,
    compile: str = "auto",
    keep_steps=(),
) -> Path:
    """Train the run of ``spec`` into ``<out>/<category>/<name>`` (resuming an unfinished one); returns the folder.

    The data, the image size and the device are checked before the run folder is touched (even with ``retrain``).
    ``compile`` (``"off"``, ``"on"``, ``"auto"``) is :class:`~stainlib.train.TrainConfig`'s: how the run is trained,
    not part of its identity.  ``keep_steps`` (optimiser steps) keeps the weights at those steps as snapshots.
    """
    run = spec.folder(out)
    settings = spec.to_dict()
    train_set, val_set = _split(settings, "train"), _split(settings, "val")
    net = new_model(spec)
    net.check_input(torch.zeros(1, net.config["in_channels"], spec.image_size, spec.image_size))
    pick_device(device)
    with run_lock(run):  # held from the check (and a retrain's clearing) to the end of the training
        check_run(spec, run, retrain=retrain, log=log)
        return _train_locked(spec, run, train_set, val_set, net, device, progress, log, compile, keep_steps)


def _train_locked(spec, run, train_set, val_set, net, device, progress, log, compile, keep_steps=()) -> Path:
    fingerprint = train_fingerprint(spec.data_root, spec.category)
    how = {"device": device, "compile": compile, "progress": progress, "keep_steps": list(keep_steps)}
    cfg = TrainConfig.from_spec(spec, run, **how, data={**spec.data_config(), "fingerprint": fingerprint})
    skipped = f" (skipped: {skipped_words(train_set.skipped)})" if train_set.skipped else ""
    log(
        f"data: {Path(spec.data_root) / spec.category}: {len(train_set)} training, {len(val_set)} validation images"
        f"{skipped}; run folder: {run}"
    )
    result = fit(net, train_set, val_set, spec.corruption, cfg, log=log)
    log(f"best validation PSNR: {result['best_val_psnr']:.2f} dB")
    return run


def new_model(spec: RunSpec):
    """The untrained network of ``spec``, its weights drawn from ``spec.seed``; the global random state is kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        return build_model(spec.model, in_channels=1 if spec.color == "gray" else 3, decoder=spec.decoder)


def load_or_train(
    spec: RunSpec, out="runs", retrain: bool = False, device: str = "auto", progress: bool = True, log=print
):
    """The model of ``spec``: loaded if its folder holds the finished run, trained (or resumed) otherwise.

    Returns (model, run folder) and prints which of the two happened.  While it trains, a progress bar shows the
    epoch, the training loss, the validation PSNR and the time left.  A folder made with other settings is refused
    with the differing keys, or trained anew with ``retrain``.
    """
    run = spec.folder(out)
    what = f"{spec.model} + {spec.corruption} ({spec.color})"
    if check_run(spec, run, retrain=retrain, log=log):
        log(f"loaded {what}: trained before")  # the folder is plumbing; a page names no path
    else:
        train(spec, out, device=device, progress=progress, log=lambda *_: None)
        b = read_config(run).get("budget", {})
        log(f"trained {what}, {spec.epochs} epochs ({b.get('steps')} steps, {b.get('images_seen')} images seen)")
    net, _ = load_run(run, device=pick_device(device))
    return net, run


def evaluate(
    run,
    method: str = "residual",
    n_samples: int = 30,
    device: str = "auto",
    data_root=None,
    figure: bool = True,
    spec: RunSpec | None = None,
    log=print,
    unfinished: bool = False,
    at_step: int | None = None,
    fpr: float = 0.01,
) -> dict:
    """Evaluate a run folder on its test split; merge the result into ``run/metrics.json`` and return it.

    Scores each image by the L2 norm of the chosen map and reports image and pixel AUROC, AUPRO, F1-max, the
    per-defect image AUROC, the counts, the data used and the seconds taken; under ``calibrated``, the precision,
    recall and F1 of the thresholds calibrated at ``fpr`` on the clean validation images
    (:func:`stainlib.predict.calibrated_metrics`, kept in ``threshold.json``).  The data is read from the absolute root
    stored in the run (``data_root`` overrides it); with ``spec``, the run must have been made with it.  With
    ``figure``, saves ``figure_<method>.png``: the two best- and worst-detected defective images and the most
    suspicious good one.  The run folder's lock is held throughout.  An unfinished run is refused unless
    ``unfinished``; then the result's ``budget`` is what was trained, and ``unfinished`` says how far it got.  With
    ``at_step``, the snapshot of that optimiser step is scored instead of ``best.pt``, and
    the result (with ``step`` and ``images_seen``) goes to ``steps/metrics-<step>.json`` and the figure beside it.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if n_samples < 2 and (method != "residual" or figure):
        raise ValueError(
            f"n_samples must be at least 2, got {n_samples} (--n-samples): the uncertainty map"
            + (" (the figure shows it)" if method == "residual" else "")
            + " is the variance of n_samples dropout passes"
        )
    run = Path(run)
    read_config(run)  # not a run folder: an error before a lock file is made in it
    with run_lock(run):
        return _evaluate_locked(run, method, n_samples, device, data_root, figure, spec, log, unfinished, at_step, fpr)


def _evaluate_locked(run, method, n_samples, device, data_root, figure, spec, log, unfinished, at_step, fpr) -> dict:
    t0 = time.perf_counter()
    for tmp in stale_temporaries(run):  # left by a writer killed mid-write; this process holds the lock
        tmp.unlink(missing_ok=True)
    config = read_config(run)
    settings = stored_settings(config)
    read_metrics(run)  # a broken metrics.json is an error now, not after the evaluation
    planned, done = settings["epochs"], trained_epochs(run)
    started = (run / "history.csv").exists() or (run / "best.pt").exists()  # else: "not trained yet", from load_run
    unfinished = unfinished or at_step is not None  # a snapshot is scored for the steps it was kept at
    if isinstance(planned, int) and done < planned and not unfinished and started:
        raise RunError(
            f"{run} is not finished: {done} of its {planned} epochs are trained (history.csv); finish it with the "
            "same train command, or evaluate it as it is with --unfinished (unfinished=True), which records the "
            "epochs trained"
        )
    missing = [k for k in ("data_root", "category", "image_size", "color", "model") if settings[k] is None]
    if missing:
        raise RunError(
            f"{run / 'config.json'} does not say the run's {missing[0]}; the file is damaged: restore it, or retrain "
            "the run (--retrain)"
        )
    if spec is not None:
        diffs = spec.differences(config, extend=False)
        if diffs:
            raise RunError(f"run folder {run} was not made with this spec:\n  " + "\n  ".join(diffs))
    root = Path(data_root).resolve() if data_root is not None else Path(settings["data_root"])
    if not root.is_absolute():
        raise RunError(
            f"{run} stores a relative data root {str(root)!r}, which depends on the current folder; pass data_root"
        )
    dev = pick_device(device)
    which = "best.pt" if at_step is None else snapshot_name(at_step)
    if at_step is not None and not (run / which).exists():
        raise RunError(f"{run} holds no snapshot of step {at_step} (it has {kept_steps(run) or 'none'})")
    model, _ = load_run(run, which, device=dev)
    test = _split(settings, "test", root).tensors()
    val = _split(settings, "val", root).tensors()["image"] if method == "combined" else None
    maps = anomaly_maps(model, test["image"], (method,), n_samples, val)
    anomaly_map, pred_score, labels = maps[method], image_score(maps[method]), test["gt_label"]
    result = {
        "image_auroc": image_auroc(pred_score, labels),
        "pixel_auroc": pixel_auroc(anomaly_map, test["gt_mask"]),
        "pixel_aupro": aupro(anomaly_map, test["gt_mask"]),
        "image_f1_max": f1_max(pred_score, labels),
        "pixel_f1_max": f1_max(anomaly_map, test["gt_mask"] > 0.5),
        "image_auroc_per_defect": per_defect_auroc(pred_score, test["defect_type"]),
        "n_images": len(labels),
        "n_good": int((labels == 0).sum()),
        "n_defective": int(labels.sum()),
        "n_samples": n_samples if method != "residual" else None,
        "data": {
            "data_root": str(root),
            "dataset": "synthetic" if is_synthetic_category(settings["category"]) else "mvtec_ad",
            "category": settings["category"],
            "n_test": len(labels),
            "n_val": None if val is None else len(val),
        },
        "budget": config.get("budget"),
        "device": str(dev),
        "seconds": None,
    }
    if isinstance(planned, int) and done < planned and at_step is None:
        result["unfinished"] = {"epochs_trained": done, "epochs_planned": planned}
        b = result["budget"]
        if b:
            steps, per = b.get("steps_per_epoch"), b.get("samples_per_epoch")
            result["budget"] = {**b, "epochs": done, "steps": steps and steps * done, "images_seen": per and per * done}
    if at_step is not None:
        kept = load_checkpoint(run, which)
        result.update(step=kept["step"], images_seen=kept["images_seen"])
    if at_step is None:  # the kept threshold belongs to best.pt: a snapshot is scored without one
        result["calibrated"] = calibrated_metrics(
            run, method, model, pred_score, labels, anomaly_map, test["gt_mask"], n_samples, root, val, fpr
        )
    if figure:
        fig = evaluation_figure(test, maps, pred_score, model, n_samples)
        fig.savefig(run / figure_name(method, at_step), dpi=80)
        import matplotlib.pyplot as plt  # matplotlib: only where a figure is drawn

        plt.close(fig)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    _write_metrics(run, method, result, at_step)
    where = "" if at_step is None else f" at step {at_step}"
    calibrated = result.get("calibrated")
    log(
        f"{run.name}{where} [{method}]: image AUROC {result['image_auroc']:.3f}, "
        f"pixel AUROC {result['pixel_auroc']:.3f}, AUPRO {result['pixel_aupro']:.3f} "
        f"({result['n_images']} images, {result['seconds']} s)"
        + (
            f"; at the threshold calibrated at FPR {fpr:g}: image precision {calibrated['image_precision']:.3f}, "
            f"recall {calibrated['image_recall']:.3f}, F1 {calibrated['image_f1']:.3f} "
            f"(F1-max {result['image_f1_max']:.3f})"
            if calibrated
            else ""
        )
    )
    return result
