"""A run, from its spec to its scores: train, evaluate, load-or-train (book chapters 4, 5 and 7).

* :func:`train` trains (or resumes) the run of a :class:`~stainlib.spec.RunSpec` in ``<out>/<category>/<name>``;
* :func:`evaluate` scores a run folder on its test split and merges the result into its ``metrics.json``;
* :func:`load_or_train` gives the model of a spec: loaded when its folder holds the same, finished run, trained or
  resumed otherwise, and refused (or retrained, when asked) when the folder holds a run with other settings;
* :func:`read_metrics` is the one reader of ``metrics.json``, and :func:`evaluate` its one writer.

A run's initial weights are drawn from its seed (:func:`new_model`), without touching the caller's random state, so
the same spec trained twice gives the same weights.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from .book import shown_path
from .data import MVTecAD
from .detect import combined_map, fit_normalizer, image_score, reconstruct, residual_map, uncertainty_map
from .files import atomic_write, read_json
from .metrics import aupro, f1_max, image_auroc, per_defect_auroc, pixel_auroc
from .models import build_model
from .spec import RunSpec, stored_settings
from .synthetic import is_synthetic
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
    "train",
]

METHODS = ("residual", "uncertainty", "combined")


def read_config(run) -> dict:
    """A run folder's ``config.json``."""
    path = Path(run) / "config.json"
    if not path.exists():
        raise RunError(f"{run} is not a run folder (no config.json)")
    return read_json(path)


def read_metrics(run) -> dict:
    """A run folder's ``metrics.json`` (``{method: result}``), empty when it has none."""
    path = Path(run) / "metrics.json"
    return read_json(path) if path.exists() else {}


def _write_metrics(run: Path, method: str, result: dict) -> None:
    merged = read_metrics(run)
    merged[method] = result
    atomic_write(run / "metrics.json", lambda p: p.write_text(json.dumps(merged, indent=2) + "\n"))


def check_run(spec: RunSpec, run, retrain: bool = False, log=print) -> bool:
    """Whether ``run`` already holds the finished run of ``spec``; a run with other settings is an error.

    Returns False when the folder is empty or holds an unfinished (or shorter) run of the same spec, to be trained.
    With ``retrain``, a folder made with other settings is deleted instead of refused.
    """
    run = Path(run)
    if not (run / "config.json").exists():
        if (run / "last.pt").exists() and retrain:
            shutil.rmtree(run)
        return False
    diffs = spec.differences(read_config(run))
    if diffs and retrain:
        log(f"retraining {run}: it was made with other settings ({'; '.join(diffs)})")
        shutil.rmtree(run)
        return False
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
) -> Path:
    """Train the run of ``spec`` into ``<out>/<category>/<name>`` (resuming an unfinished one); returns the folder.

    The data, the image size and the device are checked before the run folder is touched (even with ``retrain``).
    ``compile`` (``"off"``, ``"on"``, ``"auto"``) is :class:`~stainlib.train.TrainConfig`'s: how the run is trained,
    not part of its identity.
    """
    run = spec.folder(out)
    settings = spec.to_dict()
    train_set, val_set = _split(settings, "train"), _split(settings, "val")
    net = new_model(spec)
    net.check_input(torch.zeros(1, net.config["in_channels"], spec.image_size, spec.image_size))
    pick_device(device)
    check_run(spec, run, retrain=retrain, log=log)
    cfg = TrainConfig(
        out=str(run),
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        lr=spec.lr,
        seed=spec.seed,
        samples_per_epoch=spec.samples_per_epoch,
        val_samples=spec.val_samples,
        device=device,
        compile=compile,
        progress=progress,
        data=spec.data_config(),
    )
    log(
        f"data: {Path(spec.data_root) / spec.category}: {len(train_set)} training, {len(val_set)} validation images; "
        f"run folder: {run}"
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
        log(f"loaded {what} from {shown_path(run)}")
    else:
        train(spec, out, device=device, progress=progress, log=lambda *_: None)
        b = read_config(run).get("budget", {})
        log(
            f"trained {what}, {spec.epochs} epochs ({b.get('steps')} steps, {b.get('images_seen')} images seen)\n"
            f"  into {shown_path(run)}"
        )
    net, _ = load_run(run, device=pick_device(device))
    return net, run


def anomaly_maps(
    model, images: torch.Tensor, methods=METHODS, n_samples: int = 30, val_images=None, batch_size: int = 32
) -> dict:
    """The reconstruction and the anomaly maps ``methods`` of ``images`` (all on the CPU).

    ``combined`` needs ``val_images``, clean images whose residual and uncertainty statistics standardise the maps.
    ``batch_size`` is the reconstruction's batch.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; known: {', '.join(METHODS)}")
    recon = reconstruct(model, images, batch_size).cpu()
    maps = {"reconstruction": recon, "residual": residual_map(images, recon)}
    if "uncertainty" in methods or "combined" in methods:
        maps["uncertainty"] = uncertainty_map(model, images, n_samples=n_samples, seed=0).cpu()
    if "combined" in methods:
        if val_images is None:
            raise ValueError("the combined map needs val_images (clean images) to standardise the maps")
        norm = fit_normalizer(
            residual_map(val_images, reconstruct(model, val_images, batch_size).cpu()),
            uncertainty_map(model, val_images, n_samples=n_samples, seed=1).cpu(),
        )
        maps["combined"] = combined_map(maps["residual"], maps["uncertainty"], norm)
    return maps


def evaluate(
    run,
    method: str = "residual",
    n_samples: int = 30,
    device: str = "auto",
    data_root=None,
    figure: bool = True,
    spec: RunSpec | None = None,
    log=print,
    fpr: float = 0.01,
) -> dict:
    """Evaluate a run folder on its test split; merge the result into ``run/metrics.json`` and return it.

    Scores each image by the L2 norm of the chosen map and reports image and pixel AUROC, AUPRO, F1-max, the
    per-defect image AUROC, the counts, the data used and the seconds taken; under ``calibrated``, the precision,
    recall and F1 of the thresholds calibrated at ``fpr`` on the clean validation images
    (:func:`stainlib.predict.calibrated_metrics`, kept in ``threshold.json``).  The data is read from the absolute root
    stored in the run (``data_root`` overrides it); with ``spec``, the run must have been made with it.  With
    ``figure``, saves ``figure_<method>.png``: the two best- and worst-detected defective images and the most
    suspicious good one.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    t0 = time.perf_counter()
    run = Path(run)
    settings = stored_settings(read_config(run))
    read_metrics(run)  # a broken metrics.json is an error now, not after the evaluation
    if spec is not None:
        diffs = spec.differences(read_config(run), extend=False)
        if diffs:
            raise RunError(f"run folder {run} was not made with this spec:\n  " + "\n  ".join(diffs))
    root = Path(data_root).resolve() if data_root is not None else Path(settings["data_root"])
    if not root.is_absolute():
        raise RunError(
            f"{run} stores a relative data root {str(root)!r}, which depends on the current folder; pass data_root"
        )
    dev = pick_device(device)
    model, _ = load_run(run, device=dev)
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
            "dataset": "synthetic" if is_synthetic(root, settings["category"]) else "mvtec_ad",
            "category": settings["category"],
            "n_test": len(labels),
            "n_val": None if val is None else len(val),
        },
        "budget": read_config(run).get("budget"),
        "device": str(dev),
        "seconds": None,
    }
    from .predict import calibrated_metrics

    result["calibrated"] = calibrated_metrics(
        run, method, model, pred_score, labels, anomaly_map, test["gt_mask"], n_samples, root, val, fpr
    )
    if figure:
        _save_figure(run / f"figure_{method}.png", test, maps, pred_score, model, n_samples)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    _write_metrics(run, method, result)
    log(
        f"{run.name} [{method}]: image AUROC {result['image_auroc']:.3f}, pixel AUROC {result['pixel_auroc']:.3f}, "
        f"AUPRO {result['pixel_aupro']:.3f} ({result['n_images']} images, {result['seconds']} s); at the threshold "
        f"calibrated at FPR {fpr:g}: image precision {result['calibrated']['image_precision']:.3f}, recall "
        f"{result['calibrated']['image_recall']:.3f}, F1 {result['calibrated']['image_f1']:.3f} "
        f"(F1-max {result['image_f1_max']:.3f})"
    )
    return result


def _save_figure(path, test, maps, pred_score, model, n_samples):
    from .plotting import detection_figure

    labels = test["gt_label"]
    defective = torch.nonzero(labels == 1).flatten()
    good = torch.nonzero(labels == 0).flatten()
    ranked = defective[torch.argsort(pred_score[defective], descending=True)]
    picks = [*ranked[:2].tolist(), *ranked[-2:].tolist()]
    titles = ["best", "best", "worst", "worst"][: len(picks)]
    if len(good):
        picks.append(int(good[torch.argmax(pred_score[good])]))
        titles.append("good, highest score")
    idx = torch.tensor(picks)
    titles = [f"{t}: {test['defect_type'][i]}" for t, i in zip(titles, picks)]
    # Residual-only evaluations compute the uncertainty of the shown images alone.
    if "uncertainty" in maps:
        unc = maps["uncertainty"][idx]
    else:
        unc = uncertainty_map(model, test["image"][idx], n_samples, seed=0).cpu()
    recon, residual = maps["reconstruction"][idx], maps["residual"][idx]
    fig = detection_figure(test["image"][idx], recon, residual, unc, test["gt_mask"][idx], titles)
    fig.savefig(path, dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
