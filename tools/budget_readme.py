"""Write ``results/bottle/budget/README.md`` from the budget study's own files, so that no number in it is typed.

    python tools/budget_readme.py [STUDY]          # STUDY defaults to results/bottle/budget

It reads ``STUDY/budget.csv`` (``tools/budget_table.py``), each run folder's ``config.json``, ``history.csv`` and
``steps/metrics-*.json``, the paper's numbers (:func:`stainlib.paper.paper_numbers`) and, for the scale of the noise,
the seed study of the committed grid (``STUDY/../aesc-stain-s*``).  Where the code that trained a run is known, it is
named in :data:`CODE`.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stainlib.claims import auroc_se  # noqa: E402
from stainlib.describe import budget_text, decoder_words  # noqa: E402
from stainlib.learning_curve import authors_budget, read_budget  # noqa: E402
from stainlib.paper import NETWORKS, paper_numbers  # noqa: E402
from stainlib.runs import read_config, read_step_metrics  # noqa: E402
from stainlib.spec import stored_settings  # noqa: E402
from stainlib.tables import seed_table  # noqa: E402

CODE = {
    0: "`stainlib` frozen at commit `b36cb6f` for the trainings and the snapshot scores; the residual figures of the "
    "largest step were redrawn with the current `plotting.detection_figure`, with the same AUROCs",
    1: "`stainlib` frozen at commit `2cc1b85`",
    2: "`stainlib` frozen at commit `2cc1b85`",
}
"""The code each seed's runs were trained and scored with, by seed (a record, not a number the tool can compute)."""
MAPS = ("residual", "uncertainty")


def _label(network: str, corruption: str) -> str:
    return f"{NETWORKS[network]} + {corruption}"


def runs_of(rows: list[dict]) -> list[tuple]:
    """``(network, corruption, seed)`` of every run the CSV holds, seed 0's runs first in the claims' order."""
    order = {("aesc", "stain"): 0, ("aesc", "none"): 1, ("ae", "none"): 2}
    found = {(r["network"], r["corruption"], r["seed"]) for r in rows}
    return sorted(found, key=lambda k: (k[2], order.get(k[:2], 9), k))


def paper_table(runs) -> list[str]:
    lines = [
        "| run | residual image | residual pixel | uncertainty image | uncertainty pixel |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for network, corruption in dict.fromkeys((n, c) for n, c, _ in runs):
        cells = []
        for map_name in MAPS:
            for table in ("I", "II"):
                v = paper_numbers(table).get(("mvtec_ad", "bottle", map_name, NETWORKS[network], corruption))
                cells.append("–" if v is None else f"{v:.2f}")
        lines.append(f"| {_label(network, corruption)} | " + " | ".join(cells) + " |")
    return lines


def run_table(rows, network, corruption, seed) -> list[str]:
    mine = [r for r in rows if (r["network"], r["corruption"], r["seed"]) == (network, corruption, seed)]
    lines = [
        "| steps | images seen | residual image AUROC | residual pixel AUROC | uncertainty image AUROC | "
        "uncertainty pixel AUROC |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for steps in sorted({r["steps"] for r in mine}):
        at = {r["map"]: r for r in mine if r["steps"] == steps}
        cells = ["–" if m not in at else f"{at[m][f'{level}_auroc']:.3f}" for m in MAPS for level in ("image", "pixel")]
        images = next(iter(at.values()))["images_seen"]
        lines.append(f"| {steps:,} | {images:,} | " + " | ".join(cells) + " |")
    return lines


def training_seconds(run: Path) -> tuple[int, float]:
    """Epochs and training wall time (s) from a run's ``history.csv``."""
    with open(run / "history.csv", newline="") as f:
        epochs = list(csv.DictReader(f))
    return len(epochs), sum(float(e["seconds"]) for e in epochs)


def noise_words(study: Path, rows: list[dict]) -> str:
    """The scale of the noise between two single runs: the grid's seed spread and the AUROCs' standard errors."""
    counts = next(iter(next(iter(read_step_metrics(study / _folder(*runs_of(rows)[0])).values())).values()))
    n_good, n_def = counts["n_good"], counts["n_defective"]
    ses = [auroc_se(r[f"{level}_auroc"], n_good, n_def) for r in rows for level in ("image", "pixel")]
    words = (
        f"the Hanley-McNeil standard error of one AUROC on these {n_good + n_def} test images is {min(ses):.2f} to "
        f"{max(ses):.2f}"
    )
    grid = seed_table(study.parent, "claims")
    sds = [
        statistics.stdev(r["values"][s][f"{level}_auroc"] for s in r["values"])
        for r in grid["rows"]
        if len(r["values"]) > 1
        for level in ("image", "pixel")
    ]
    if sds:
        words = (
            f"the seed study of the committed grid (`results/bottle`) puts the standard deviation of single runs at "
            f"{min(sds):.2f} to {max(sds):.2f}, and " + words
        )
    return words


def _folder(network, corruption, seed) -> str:
    return f"{network}-{corruption}-s{seed}"


def readme(study: Path) -> str:
    rows = read_budget(study / "budget.csv")
    runs = runs_of(rows)
    first = read_config(study / _folder(*runs[0]))
    s, b = stored_settings(first), first["budget"]
    seeds = sorted({seed for *_, seed in runs})
    keep = sorted({r["steps"] for r in rows})
    authors = authors_budget()
    names = ", ".join(f"`{_folder(*r)}`" for r in runs)
    out = [
        "# MVTec AD bottle: the budget study",
        "",
        "<!-- Written by tools/budget_readme.py from the files in this folder: edit the tool, not this file. -->",
        "",
        f"Runs on the real MVTec AD `bottle` category with {decoder_words(s['decoder'])}, the authors' "
        f"{b['samples_per_epoch']:,}-sample epochs ({b['steps_per_epoch']} steps of {s['batch_size']}) and "
        f"{b['val_samples']} validation samples: "
        + ", ".join(dict.fromkeys(_label(n, c) for n, c, _ in runs))
        + f"; seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}. Each run kept its weights at fixed "
        f"optimiser steps (`stainlib train --keep-steps {' '.join(map(str, keep))}`), and each snapshot was scored "
        "by the residual and by the uncertainty of 30 MC-dropout passes (`stainlib evaluate --at-step`). "
        f"`budget.csv` has one row per (run, step, map), {len(rows)} rows. Each run folder ({names}) holds the run's "
        "`config.json`, `history.csv`, `SHA256SUMS` (it lists every snapshot's digest), `steps/metrics-NNNNNN.json` "
        "(the full evaluations: AUPRO, F1-max, per-defect AUROC, timings) and the figures of its largest step. The "
        "checkpoints are not committed (`*.pt`); the sums identify them. `reproduce.sh` is the command. Chapter 6 of "
        "the book draws the curve (`stainlib.learning_curve`), and the introduction and chapters 3, 5 and 6 check "
        "the claims of Tables I and II on the largest budget.",
        "",
        "## Provenance",
        "",
        "| | |",
        "| --- | --- |",
        f"| data | MVTec AD `bottle` (CC BY-NC-SA 4.0, MVTec Software GmbH), not in this repository: {b['n_train']} "
        "training images, the validation split drawn with the seed |",
        f"| images | {s['color']}, {s['image_size']} x {s['image_size']} |",
        "| corruption | "
        + " or ".join(dict.fromkeys(c for _, c, _ in runs))
        + " (drawn anew for every training image) |",
        f"| networks | AESc (skips from 8 to 128 px) and AE (no skips), 6 levels of stride-2 5x5 convolutions, "
        f"{decoder_words(s['decoder'])} |",
        f"| training | Adam lr {s['lr']:g}, batch {s['batch_size']}, ReduceLROnPlateau(0.5) on the validation PSNR; "
        f"{budget_text(b, s['batch_size'])} per run (the authors': {authors['steps']:,} steps, "
        f"{authors['images_seen']:,} images seen) |",
        f"| snapshots | the weights right after steps {', '.join(f'{k:,}' for k in keep)}: the current weights, not "
        "the best-validation ones |",
        "| evaluation | residual and uncertainty (30 MC-dropout passes) maps, image score = L2 norm of the map; image "
        "and pixel AUROC |",
        "| device | 2 CPU cores shared with other jobs, no GPU; one thread (`OMP_NUM_THREADS=1`) per training, one "
        "training at a time |",
        *(f"| code, seed {seed} | {CODE.get(seed, 'not recorded')} |" for seed in seeds),
        "",
        f"## The paper's numbers (bottle, {authors['steps']:,} steps, {authors['images_seen']:,} images)",
        "",
        *paper_table(runs),
        "",
        "## By training budget",
        "",
    ]
    for network, corruption, seed in runs:
        out += [f"### {_label(network, corruption)}, seed {seed}", "", *run_table(rows, network, corruption, seed), ""]
    noise = noise_words(study, rows)
    out += [
        f"{noise[0].upper()}{noise[1:]}, so differences of that size between "
        "neighbouring budgets are not findings. Chapter 6's table says from which budget each claim's winner leads "
        "beyond the spread at every larger budget.",
        "",
        "## Cost",
        "",
    ]
    for run in runs:
        epochs, seconds = training_seconds(study / _folder(*run))
        out.append(
            f"- `{_folder(*run)}`: {epochs} epochs in {seconds:,.0f} s of training wall time ({seconds / 60:.0f} min; "
            "`history.csv`)."
        )
    scored = [
        (name, m["seconds"])
        for run in runs
        for by_map in read_step_metrics(study / _folder(*run)).values()
        for name, m in by_map.items()
    ]
    out += [
        "",
        "The wall times include validation and checkpoints, on a machine shared with other jobs. Scoring one "
        "snapshot took "
        + " and ".join(
            f"{min(t for n, t in scored if n == m):,.0f} to {max(t for n, t in scored if n == m):,.0f} s for the {m}"
            for m in MAPS
            if any(n == m for n, _ in scored)
        )
        + ".",
        "",
        "## What is missing",
        "",
    ]
    top = max(keep)
    stain_seeds = sorted({seed for n, c, seed in runs if (n, c) == ("aesc", "stain")})
    complete = [
        seed
        for seed in stain_seeds
        if any(
            r["steps"] == top and (r["network"], r["corruption"], r["seed"]) == ("aesc", "stain", seed) for r in rows
        )
    ]
    if len(complete) < 3:
        out.append(
            f"- **Seeds.** AESc + stain has {len(complete)} seed{'s' if len(complete) != 1 else ''} scored at "
            f"{top:,} steps; the issue asks for three."
        )
    out.append(
        f"- The authors' budget ({authors['steps']:,} steps) is left to `tools/gpu_check.sh` on a GPU; no GPU has "
        "been lent so far."
    )
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", nargs="?", default=str(ROOT / "results" / "bottle" / "budget"))
    args = p.parse_args(argv)
    path = Path(args.study) / "README.md"
    path.write_text(readme(Path(args.study)))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
