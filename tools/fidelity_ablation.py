"""Issue 15's ablation: each ambiguous setting, the paper's text against the authors' code, all else equal.

Book chapter 8 ("Beyond the paper") reads the CSV this writes.  AESc, one seed per reading, a budget stated in
optimiser steps (one epoch of ``steps * batch_size`` images drawn from the training split), the residual map scored
by image and pixel AUROC; the dropout row scores the uncertainty map of the paper-reading Stain model under both
dropout readings, and the masks row scores that model's residual against both mask readings (no retraining).  The
seed spread is the Stain/paper run trained with ``--spread-seeds`` more seeds at the same budget.

    python tools/fidelity_ablation.py --data-root /work/shared/data/mvtec_ad --category bottle --out results/fidelity
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from stainlib.data import MVTecAD
from stainlib.detect import image_score, reconstruct, residual_map, uncertainty_map
from stainlib.metrics import image_auroc, pixel_auroc
from stainlib.runs import train
from stainlib.spec import RunSpec
from stainlib.train import load_run

ROWS = [  # (row, reading, corruption, decoder)
    ("drops", "paper", "drops", "paper"),
    ("drops", "code", "drops-code", "paper"),
    ("gaussian-0.4", "paper", "gaussian-0.4", "paper"),
    ("gaussian-0.4", "code", "gaussian-0.4-code", "paper"),
    ("mix1", "paper", "mix1", "paper"),
    ("mix1", "code", "mix1-code", "paper"),
    ("decoder", "paper", "stain", "paper"),
    ("decoder", "legacy", "stain", "legacy"),
]
FIELDS = [
    "row",
    "reading",
    "corruption",
    "decoder",
    "dropout",
    "mask_reading",
    "method",
    "seed",
    "image_auroc",
    "pixel_auroc",
    "steps",
    "batch_size",
    "image_size",
    "device",
    "train_seconds",
]


def score(run, test, method="residual", dropout="paper", n_samples=30):
    model, _ = load_run(run)
    if method == "uncertainty":
        maps = uncertainty_map(model.set_dropout(dropout), test["image"], n_samples=n_samples, seed=0)
    else:
        maps = residual_map(test["image"], reconstruct(model, test["image"]))
    return image_auroc(image_score(maps), test["gt_label"]), pixel_auroc(maps, test["gt_mask"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--category", default="bottle")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--spread-seeds", type=int, default=2, help="extra seeds of stain/paper for the seed spread")
    p.add_argument("--out", default="results/fidelity")
    p.add_argument("--runs", default="runs/fidelity", help="where the trained runs go (kept out of results/)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    base = RunSpec(
        a.data_root,
        a.category,
        "aesc",
        image_size=a.image_size,
        epochs=1,
        samples_per_epoch=a.steps * a.batch_size,
        batch_size=a.batch_size,
    )
    tests = {
        m: MVTecAD(base.data_root, a.category, "test", size=a.image_size, mask_reading=m).tensors()
        for m in ("nearest", "code")
    }
    rows = []

    def record(row, reading, spec, method="residual", dropout="paper", masks="nearest", seconds=None):
        run = spec.folder(Path(a.runs) / spec.decoder)
        img, pix = score(run, tests[masks], method, dropout)
        rows.append(
            dict(
                row=row,
                reading=reading,
                corruption=spec.corruption,
                decoder=spec.decoder,
                dropout=dropout,
                mask_reading=masks,
                method=method,
                seed=spec.seed,
                image_auroc=round(img, 4),
                pixel_auroc=round(pix, 4),
                steps=a.steps,
                batch_size=a.batch_size,
                image_size=a.image_size,
                device=f"cpu ({torch.get_num_threads()} threads)" if not torch.cuda.is_available() else "cuda",
                train_seconds=seconds,
            )
        )
        print(rows[-1], flush=True)

    def trained(spec):
        t0 = time.perf_counter()
        train(spec, Path(a.runs) / spec.decoder, progress=False, log=lambda *_: None)
        return round(time.perf_counter() - t0, 1)

    for row, reading, corruption, decoder in ROWS:
        spec = base.replace(corruption=corruption, decoder=decoder)
        record(row, reading, spec, seconds=trained(spec))
    stain = base.replace(corruption="stain")
    for dropout in ("paper", "code"):
        record("dropout", dropout, stain, "uncertainty", dropout)
    record("masks", "code", stain, masks="code")  # the paper reading is the decoder row's paper line
    for seed in range(1, 1 + a.spread_seeds):
        spec = stain.replace(seed=seed)
        record("seed spread", f"seed {seed}", spec, seconds=trained(spec))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "ablation.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
