"""The ``stainlib`` command line (book chapters 5, 7 and 8).

    stainlib synth     --out data/synthetic                       write the offline MVTec-like dataset
    stainlib download  --out data/mvtec_ad --categories bottle    fetch the real MVTec AD (needs internet)
    stainlib train     --data DIR --category NAME --model aesc --corruption stain --epochs N --out runs/NAME
    stainlib evaluate  RUN_DIR --method residual|uncertainty|combined [--data DIR]
    stainlib sweep     --grid table1|table2|table3 --data DIR --categories ... --epochs N --out results/
    stainlib table     results/ --table I|II|III

The same names as the library: corruption names from :data:`stainlib.noise.CORRUPTIONS`, models ``aesc`` and ``ae``.
Each command is also a Python function here (:func:`train_run`, :func:`evaluate_run`, :func:`sweep`,
:func:`make_table`), which the chapters call.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from .data import MVTEC_OBJECTS, MVTEC_TEXTURES, SYNTHETIC_OBJECTS, SYNTHETIC_TEXTURES, MVTecAD, project_dir
from .detect import combined_map, fit_normalizer, image_score, reconstruct, residual_map, uncertainty_map
from .metrics import aupro, f1_max, image_auroc, per_defect_auroc, pixel_auroc
from .models import MODELS, build_model
from .noise import CORRUPTIONS
from .train import TrainConfig, fit, is_complete, load_run, pick_device

__all__ = [
    "GRIDS",
    "METHODS",
    "PROFILES",
    "book_settings",
    "evaluate_run",
    "load_or_train",
    "main",
    "make_table",
    "run_name",
    "sweep",
    "train_run",
]

METHODS = ("residual", "uncertainty", "combined")
# Tables I and II share one grid: AE and AESc, each trained with none and stain, each scored both ways.
_GRID_1_2 = [(m, c, ("residual", "uncertainty")) for m in ("ae", "aesc") for c in ("none", "stain")]
GRIDS = {"table1": _GRID_1_2, "table2": _GRID_1_2, "table3": [("aesc", c, ("residual",)) for c in CORRUPTIONS]}


def run_name(model: str, corruption: str, seed: int = 0) -> str:
    return f"{model}-{corruption}-s{seed}"


def train_run(
    data,
    category: str,
    model: str = "aesc",
    corruption: str = "stain",
    epochs: int = 250,
    size: int = 256,
    color: str = "gray",
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    out=None,
    device: str = "auto",
    progress: bool = True,
    log=print,
    **model_kwargs,
) -> Path:
    """Train one model on one category (resuming if ``out`` holds an unfinished run); returns the run folder."""
    data = Path(data)
    train_set = MVTecAD(data, category, "train", size=size, color=color, seed=seed)
    val_set = MVTecAD(data, category, "val", size=size, color=color, seed=seed)
    out = Path(out or Path("runs") / category / run_name(model, corruption, seed))
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    net = build_model(model, in_channels=1 if color == "gray" else 3, **model_kwargs)
    cfg = TrainConfig(
        out=str(out),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=progress,
        data={
            "root": str(data),
            "category": category,
            "size": size,
            "color": color,
            "val_fraction": 0.2,
            "split_seed": seed,
        },
    )
    log(f"data: {data / category}: {len(train_set)} training, {len(val_set)} validation images; run folder: {out}")
    result = fit(net, train_set, val_set, corruption, cfg, log=log)
    log(f"best validation PSNR: {result['best_val_psnr']:.2f} dB")
    return out


def _test_data(config: dict, data=None, split: str = "test") -> MVTecAD:
    d = config["data"]
    return MVTecAD(
        Path(data or d["root"]), d["category"], split, size=d["size"], color=d["color"], seed=d.get("split_seed", 0)
    )


def evaluate_run(
    run, method: str = "residual", data=None, n_samples: int = 30, device: str = "auto", figure: bool = True, log=print
) -> dict:
    """Evaluate a run on its test split; merge the result into ``run/metrics.json`` and return it.

    Computes the residual and the uncertainty maps (and the combined map, from statistics of the clean validation
    images), scores each image by the L2 norm of the chosen map, and reports image and pixel AUROC, AUPRO, F1-max,
    the per-defect image AUROC, the counts and the seconds taken.  With ``figure``, saves
    ``figure_<method>.png``: the two best- and worst-detected defective images and the most suspicious good one.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    t0 = time.perf_counter()
    run = Path(run)
    dev = pick_device(device)
    model, config = load_run(run, device=dev)
    test = _test_data(config, data).tensors()
    images = test["image"]
    recon = reconstruct(model, images).cpu()
    residual = residual_map(images, recon)
    uncertainty = uncertainty_map(model, images, n_samples=n_samples, seed=0).cpu() if method != "residual" else None
    if method == "residual":
        anomaly_map = residual
    elif method == "uncertainty":
        anomaly_map = uncertainty
    else:
        val = _test_data(config, data, "val").tensors()["image"]
        norm = fit_normalizer(
            residual_map(val, reconstruct(model, val).cpu()),
            uncertainty_map(model, val, n_samples=n_samples, seed=1).cpu(),
        )
        anomaly_map = combined_map(residual, uncertainty, norm)
    pred_score = image_score(anomaly_map)
    labels = test["gt_label"]
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
        "device": str(dev),
        "seconds": None,
    }
    if figure:
        _save_figure(run / f"figure_{method}.png", test, recon, residual, uncertainty, pred_score, model, n_samples)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    path = run / "metrics.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged[method] = result
    tmp = path.with_name(".metrics.json.tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, path)
    log(
        f"{run.name} [{method}]: image AUROC {result['image_auroc']:.3f}, pixel AUROC {result['pixel_auroc']:.3f}, "
        f"AUPRO {result['pixel_aupro']:.3f} ({result['n_images']} images, {result['seconds']} s)"
    )
    return result


def _save_figure(path, test, recon, residual, uncertainty, pred_score, model, n_samples):
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
    if uncertainty is None:
        unc = uncertainty_map(model, test["image"][idx], n_samples, seed=0).cpu()
    else:
        unc = uncertainty[idx]
    fig = detection_figure(test["image"][idx], recon[idx], residual[idx], unc, test["gt_mask"][idx], titles)
    fig.savefig(path, dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _grid_runs(grid: str, categories, seeds):
    if grid not in GRIDS:
        raise ValueError(f"unknown grid {grid!r}; known: {', '.join(GRIDS)}")
    return [(cat, m, c, methods, s) for cat in categories for s in seeds for m, c, methods in GRIDS[grid]]


def _command(data, out, cat, model, corruption, methods, seed, epochs, size, color, samples, batch_size=16) -> str:
    run = Path(out) / cat / run_name(model, corruption, seed)
    train = (
        f"stainlib train --data {shlex.quote(str(data))} --category {cat} --model {model} "
        f"--corruption {corruption} --epochs {epochs} --size {size} --color {color} --seed {seed} "
        f"--batch-size {batch_size} --out {shlex.quote(str(run))}"
    )
    evals = [f"stainlib evaluate {shlex.quote(str(run))} --method {m} --samples {samples}" for m in methods]
    return " && ".join([train, *evals])


def sweep(
    grid: str,
    data,
    categories,
    epochs: int,
    out="results",
    size: int = 256,
    color: str = "gray",
    seeds=(0,),
    jobs: int = 1,
    samples: int = 30,
    device: str = "auto",
    batch_size: int = 16,
    log=print,
) -> dict:
    """Train and evaluate every run of a grid; skip complete runs, resume unfinished ones, go on after a crash.

    Returns ``{"done": [...], "skipped": [...], "failed": {run: error}}``.  With ``jobs`` > 1, runs go to
    subprocesses, one per GPU in turn where there are several.
    """
    out = Path(out)
    report = {"done": [], "skipped": [], "failed": {}}
    todo = []
    for cat, model, corruption, methods, seed in _grid_runs(grid, categories, seeds):
        run = out / cat / run_name(model, corruption, seed)
        have = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
        if is_complete(run) and all(m in have for m in methods):
            report["skipped"].append(str(run))
        else:
            todo.append((run, cat, model, corruption, methods, seed))
    if jobs > 1:
        gpus = torch.cuda.device_count()

        def work(i_item):
            i, (run, cat, model, corruption, methods, seed) = i_item
            env = dict(os.environ)
            if gpus > 1:
                env["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
            cmd = _command(data, out, cat, model, corruption, methods, seed, epochs, size, color, samples, batch_size)
            proc = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True)
            return run, proc

        with ThreadPoolExecutor(jobs) as pool:
            for run, proc in pool.map(work, enumerate(todo)):
                if proc.returncode == 0:
                    report["done"].append(str(run))
                else:
                    report["failed"][str(run)] = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    else:
        for run, cat, model, corruption, methods, seed in todo:
            try:
                train_run(
                    data,
                    cat,
                    model,
                    corruption,
                    epochs,
                    size,
                    color,
                    batch_size,
                    seed=seed,
                    out=run,
                    device=device,
                    log=log,
                )
                for method in methods:
                    evaluate_run(run, method, n_samples=samples, device=device, log=log)
                report["done"].append(str(run))
            except Exception as exc:  # one crashed run must not stop the others
                report["failed"][str(run)] = f"{type(exc).__name__}: {exc}"
                log(f"FAILED {run}: {type(exc).__name__}: {exc}")
    log(
        f"sweep {grid}: {len(report['done'])} done, {len(report['skipped'])} already complete, "
        f"{len(report['failed'])} failed"
    )
    for run, error in report["failed"].items():
        log(f"  failed: {run}: {error}")
    return report


# ---- chapter settings: the fast and full profiles, and load-or-train ------------------------------------------------

PROFILES = {
    # Synthetic data, small images, few epochs: every chapter runs on 2 CPUs in well under a minute.
    # Batches of 8 give the tiny training set (48 images) enough optimiser steps in few epochs.
    "fast": {
        "data_dir": "data/synthetic",
        "categories": ["wood"],
        "epochs": 20,
        "image_size": 64,
        "batch_size": 8,
        "n_samples": 10,
    },
    # The paper's settings on the real MVTec AD (a GPU is advised).
    "full": {
        "data_dir": "data/mvtec_ad",
        "categories": ["bottle"],
        "epochs": 250,
        "image_size": 256,
        "batch_size": 16,
        "n_samples": 30,
    },
}


def book_settings(
    profile: str = "auto", data_dir=None, categories=None, epochs=None, image_size=None, log=print
) -> dict:
    """Resolve a chapter's parameters: ``auto`` is ``full`` when CUDA is present and ``fast`` otherwise.

    Any of ``data_dir``, ``categories``, ``epochs`` and ``image_size`` overrides the profile's value.  The synthetic
    dataset is generated on first use; a missing real dataset is an error that says how to get it.  Runs go to
    ``runs/book-<profile>/`` in the checkout.
    """
    if profile == "auto":
        profile = "full" if torch.cuda.is_available() else "fast"
    if profile not in PROFILES:
        raise ValueError(f"profile must be 'auto', 'fast' or 'full', got {profile!r}")
    s = dict(PROFILES[profile], profile=profile)
    for key, value in (
        ("data_dir", data_dir),
        ("categories", categories),
        ("epochs", epochs),
        ("image_size", image_size),
    ):
        if value is not None:
            s[key] = value
    root = project_dir()
    data = Path(s["data_dir"])
    data = data if data.is_absolute() else root / data
    s["data_dir"] = data
    s["runs_dir"] = root / "runs" / f"book-{profile}"
    missing = [c for c in s["categories"] if not (data / c / "train" / "good").is_dir()]
    if missing:
        if data.name == "synthetic":
            from .data import make_synthetic

            make_synthetic(data)
        else:
            from .data import MANUAL_HELP

            raise FileNotFoundError(
                f"no category {', '.join(missing)} in {data}. On a machine with internet, run "
                f"stainlib.data.download_mvtec({str(data)!r}, {missing!r}); otherwise: " + MANUAL_HELP.format(root=data)
            )
    log(
        f"profile {profile}: data {data}, categories {', '.join(s['categories'])}, {s['image_size']} px, "
        f"{s['epochs']} epochs, device {pick_device()}"
    )
    return s


def load_or_train(
    settings: dict,
    category: str,
    model: str = "aesc",
    corruption: str = "stain",
    seed: int = 0,
    color: str = "gray",
    log=print,
):
    """The run for these settings: loaded if complete, trained (or resumed) otherwise.  Returns (model, run folder).

    Which of the two happened is printed.  RGB runs get their own folder (suffix ``-rgb``).
    """
    name = run_name(model, corruption, seed) + ("" if color == "gray" else f"-{color}")
    run = settings["runs_dir"] / category / name
    if is_complete(run):
        log(f"loaded {model} + {corruption} ({color}) from {run}")
    else:
        train_run(
            settings["data_dir"],
            category,
            model,
            corruption,
            settings["epochs"],
            settings["image_size"],
            batch_size=settings["batch_size"],
            color=color,
            seed=seed,
            out=run,
            progress=False,
            log=lambda *_: None,
        )
        log(f"trained {model} + {corruption} ({color}, {settings['epochs']} epochs) into {run}")
    net, _ = load_run(run, device=pick_device())
    return net, run


# ---- tables in the paper's layout ----------------------------------------------------------------------------------

# Columns of Tables I and II (as the paper orders them): method, network, training corruption.
_COLUMNS_1_2 = [
    (meth, net, cor) for meth in ("uncertainty", "residual") for net in ("AE", "AESc") for cor in ("none", "stain")
]
TABLE_COLUMNS = {
    "I": ("image_auroc", _COLUMNS_1_2),
    "II": ("pixel_auroc", _COLUMNS_1_2),
    "III": (
        "image_auroc",
        [
            ("residual", "AESc", c)
            for c in (
                "none",
                "drops",
                "gaussian-0.1",
                "gaussian-0.2",
                "gaussian-0.4",
                "gaussian-0.8",
                "scratch",
                "stain",
                "mix1",
                "mix2",
            )
        ],
    ),
}


def _paper_numbers(table: str) -> dict:
    path = project_dir() / "data" / "paper_tables.csv"
    if not path.exists():
        path = Path(__file__).resolve().parents[1] / "data" / "paper_tables.csv"
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["table"] == table:
                out[(row["category"], row["method"], row["network"], row["corruption"])] = float(row["auroc"])
    return out


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=project_dir(), check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def make_table(results, table: str = "I", seed: int = 0, write: bool = True) -> dict:
    """Collect ``results/<category>/<run>/metrics.json`` into the paper's layout, with the paper's number beside ours.

    Returns ``{"rows": [...], "columns": [...], "provenance": {...}, "markdown": str}`` and, with ``write``, saves
    ``table_<table>.csv`` and ``table_<table>.md`` in ``results``.
    """
    if table not in TABLE_COLUMNS:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(TABLE_COLUMNS)}")
    results = Path(results)
    metric, columns = TABLE_COLUMNS[table]
    paper = _paper_numbers(table)
    categories = sorted(p.name for p in results.iterdir() if p.is_dir() and any(p.glob("*/metrics.json")))
    rows, provenance = [], {"data": set(), "size": set(), "epochs": set(), "device": set(), "color": set()}
    for cat in categories:
        row = {"category": cat}
        for meth, net, cor in columns:
            run = results / cat / run_name(net.lower(), cor, seed)
            ours = None
            if (run / "metrics.json").exists():
                m = json.loads((run / "metrics.json").read_text())
                if meth in m:
                    ours = m[meth][metric]
                    cfg = json.loads((run / "config.json").read_text())
                    provenance["data"].add(cfg["data"]["root"])
                    provenance["size"].add(cfg["data"]["size"])
                    provenance["color"].add(cfg["data"]["color"])
                    provenance["epochs"].add(cfg["train"]["epochs"])
                    provenance["device"].add(m[meth]["device"])
            row[f"{meth}/{net}/{cor}"] = ours
            row[f"{meth}/{net}/{cor} (paper)"] = paper.get((cat, meth, net, cor))
        rows.append(row)
    keys = [k for k in (rows[0] if rows else {}) if k != "category"]
    groups = {"mean textures": MVTEC_TEXTURES + SYNTHETIC_TEXTURES, "mean objects": MVTEC_OBJECTS + SYNTHETIC_OBJECTS}
    for label, members in groups.items():
        sub = [r for r in rows if r["category"] in members]
        if sub:
            rows.append({"category": label, **{k: _mean([r[k] for r in sub]) for k in keys}})
    real = [r for r in rows if not r["category"].startswith("mean")]
    if real:
        rows.append({"category": "mean all", **{k: _mean([r[k] for r in real]) for k in keys}})
    prov = {k: sorted(map(str, v)) for k, v in provenance.items()}
    prov["commit"] = _git_commit()
    prov["metric"] = metric
    md = _markdown(table, rows, columns, prov)
    if write and rows:
        with open(results / f"table_{table}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["category", *keys])
            w.writeheader()
            w.writerows(
                [
                    {k: ("" if v is None else (round(v, 4) if isinstance(v, float) else v)) for k, v in r.items()}
                    for r in rows
                ]
            )
        (results / f"table_{table}.md").write_text(md)
    return {"rows": rows, "columns": columns, "provenance": prov, "markdown": md}


def _markdown(table, rows, columns, prov) -> str:
    def cell(v):
        return "–" if v is None else f"{v:.2f}"

    head = "| category | " + " | ".join(f"{m} {n}+{c}" for m, n, c in columns) + " |"
    lines = [f"Table {table}: {prov['metric']}, ours (paper).", "", head, "|" + "---|" * (len(columns) + 1)]
    for r in rows:
        cells = [f"{cell(r[f'{m}/{n}/{c}'])} ({cell(r[f'{m}/{n}/{c} (paper)'])})" for m, n, c in columns]
        lines.append(f"| {r['category']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Provenance: data {', '.join(prov['data']) or '–'}; image size {', '.join(prov['size']) or '–'} px "
        f"({', '.join(prov['color']) or '–'}); epochs {', '.join(prov['epochs']) or '–'}; "
        f"device {', '.join(prov['device']) or '–'}; commit {prov['commit']}.",
    ]
    return "\n".join(lines) + "\n"


# ---- the command line --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stainlib", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write the synthetic MVTec-like dataset")
    s.add_argument("--out", default="data/synthetic")
    s.add_argument("--categories", nargs="*")
    s.add_argument("--n-train", type=int, default=60)
    s.add_argument("--n-test", type=int, default=30)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--seed", type=int, default=0)

    d = sub.add_parser("download", help="download the real MVTec AD (needs internet)")
    d.add_argument("--out", default="data/mvtec_ad")
    d.add_argument("--categories", nargs="*")

    t = sub.add_parser("train", help="train one model on one category")
    t.add_argument("--data", required=True)
    t.add_argument("--category", required=True)
    t.add_argument("--model", choices=list(MODELS), default="aesc")
    t.add_argument("--corruption", default="stain", help=f"one of: {', '.join(CORRUPTIONS)}")
    t.add_argument("--epochs", type=int, default=250)
    t.add_argument("--size", type=int, default=256)
    t.add_argument("--color", choices=["gray", "rgb"], default="gray")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--out")

    e = sub.add_parser("evaluate", help="evaluate a run on its test split")
    e.add_argument("run")
    e.add_argument("--method", choices=METHODS, default="residual")
    e.add_argument("--data")
    e.add_argument("--samples", type=int, default=30)
    e.add_argument("--device", default="auto")

    w = sub.add_parser("sweep", help="train and evaluate a grid of runs")
    w.add_argument("--grid", choices=list(GRIDS), required=True)
    w.add_argument("--data", required=True)
    w.add_argument("--categories", nargs="+", required=True)
    w.add_argument("--epochs", type=int, default=250)
    w.add_argument("--size", type=int, default=256)
    w.add_argument("--color", choices=["gray", "rgb"], default="gray")
    w.add_argument("--seeds", type=int, nargs="+", default=[0])
    w.add_argument("--samples", type=int, default=30)
    w.add_argument("--batch-size", type=int, default=16)
    w.add_argument("--jobs", type=int, default=1)
    w.add_argument("--device", default="auto")
    w.add_argument("--out", default="results")
    w.add_argument("--print-commands", action="store_true", help="print one command per run and exit")

    b = sub.add_parser("table", help="write a results table in the paper's layout")
    b.add_argument("results")
    b.add_argument("--table", choices=list(TABLE_COLUMNS), required=True)
    return p


def _keep_large_blocks() -> None:
    """Ask glibc to keep freed large blocks instead of returning them to the kernel at once.

    Training and MC sampling on the CPU allocate and free tens of MB per step; with the default thresholds, each
    allocation page-faults anew and the process spends as much time in the kernel as in computing.  Only the command
    line does this (importing stainlib changes nothing); it is a no-op where glibc is absent.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the command line draws into files only
    _keep_large_blocks()
    args = _parser().parse_args(argv)
    try:
        if args.command == "synth":
            from .data import make_synthetic

            root = make_synthetic(
                args.out, args.categories, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed
            )
            print(f"synthetic dataset in {root}")
        elif args.command == "download":
            from .data import download_mvtec

            print(f"MVTec AD in {download_mvtec(args.out, args.categories)}")
        elif args.command == "train":
            if args.corruption not in CORRUPTIONS:
                raise ValueError(f"unknown corruption {args.corruption!r}; known: {', '.join(CORRUPTIONS)}")
            train_run(
                args.data,
                args.category,
                args.model,
                args.corruption,
                args.epochs,
                args.size,
                args.color,
                args.batch_size,
                args.lr,
                args.seed,
                args.out,
                args.device,
            )
        elif args.command == "evaluate":
            evaluate_run(args.run, args.method, args.data, args.samples, args.device)
        elif args.command == "sweep":
            if args.print_commands:
                for cat, model, corruption, methods, seed in _grid_runs(args.grid, args.categories, args.seeds):
                    print(
                        _command(
                            args.data,
                            args.out,
                            cat,
                            model,
                            corruption,
                            methods,
                            seed,
                            args.epochs,
                            args.size,
                            args.color,
                            args.samples,
                            args.batch_size,
                        )
                    )
                return 0
            report = sweep(
                args.grid,
                args.data,
                args.categories,
                args.epochs,
                args.out,
                args.size,
                args.color,
                args.seeds,
                args.jobs,
                args.samples,
                args.device,
                args.batch_size,
            )
            return 1 if report["failed"] else 0
        elif args.command == "table":
            print(make_table(args.results, args.table)["markdown"])
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"stainlib {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
