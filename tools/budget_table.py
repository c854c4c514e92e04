"""Collect the snapshot metrics of budget-study runs into one CSV: one row per (run, step, map).

    python tools/budget_table.py /work/budget-runs/bottle/aesc-stain-s0 ... --out results/bottle/budget/budget.csv

Each run folder's snapshots were scored with ``stainlib evaluate RUN --at-step N --map residual|uncertainty``
(``steps/metrics-NNNNNN.json``, read by :func:`stainlib.runs.read_step_metrics`).  The columns are ``network,
corruption, seed, steps, images_seen, map, image_auroc, pixel_auroc, decoder``.
"""

import argparse
import csv
from pathlib import Path

from stainlib.learning_curve import COLUMNS
from stainlib.runs import read_config, read_step_metrics
from stainlib.spec import stored_settings


def rows(run) -> list[dict]:
    """The rows of one run folder, by step then map."""
    settings = stored_settings(read_config(run))
    out = []
    for step, by_map in sorted(read_step_metrics(run).items()):
        for name, result in sorted(by_map.items()):
            out.append(
                {
                    "network": settings["model"],
                    "corruption": settings["corruption"],
                    "seed": settings["seed"],
                    "steps": step,
                    "images_seen": result["images_seen"],
                    "map": name,
                    "image_auroc": round(result["image_auroc"], 4),
                    "pixel_auroc": round(result["pixel_auroc"], 4),
                    "decoder": settings["decoder"],
                }
            )
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders with evaluated snapshots")
    p.add_argument("--out", required=True, help="the CSV to write")
    args = p.parse_args(argv)
    table = [row for run in args.runs for row in rows(run)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(table)
    print(f"{len(table)} rows into {args.out}")


if __name__ == "__main__":
    main()
