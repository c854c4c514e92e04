"""Write ``results/bottle/README.md`` from the committed bottle runs: every number and verdict in it is computed here,
from the runs' own files, so the README cannot disagree with them.

    python tools/bottle_readme.py [RESULTS]          # RESULTS defaults to results/

It reads ``RESULTS/bottle/<run>/`` (the grid ``reproduce.sh`` trains: Tables I-III and the seed study),
``RESULTS/bottle/legacy-decoder/`` (the same grid trained first with the ``legacy`` decoder, kept for the decoder
comparison), ``RESULTS/bottle/budget/budget.csv`` (the budget study) and ``RESULTS/bottle/predict/predict.json``.
The claims are :func:`stainlib.collect.run_claims`'s, the paper's numbers :func:`stainlib.paper.paper_numbers`'.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stainlib.collect import run_claims  # noqa: E402
from stainlib.describe import budget_text, device_words  # noqa: E402
from stainlib.learning_curve import read_budget  # noqa: E402
from stainlib.paper import NETWORKS, TABLE_1_2_GRID, TABLE_3_CORRUPTIONS, paper_numbers, run_label  # noqa: E402
from stainlib.runs import read_config, read_metrics  # noqa: E402
from stainlib.spec import defaults, paper_budget, stored_settings  # noqa: E402
from stainlib.tables import folder_comparison, seed_table  # noqa: E402

MAPS = ("residual", "uncertainty")
DECODER_WORDS = {"paper": "the paper's reading", "legacy": "stainlib's first reading, one convolution more"}


def _paper(table: str, map_name: str, network: str, corruption: str):
    return paper_numbers(table).get(("mvtec_ad", "bottle", map_name, NETWORKS[network], corruption))


def _cell(ours, paper) -> str:
    return f"{ours:.3f} ({paper:.2f})" if paper is not None else f"{ours:.3f}"


def provenance(folder: Path) -> list[str]:
    """The grid's settings beside the paper's, read from ``aesc-stain-s0``'s config and metrics."""
    config = read_config(folder / "aesc-stain-s0")
    s, b = stored_settings(config), config["budget"]
    m = read_metrics(folder / "aesc-stain-s0")
    authors, batch = paper_budget(), defaults()["batch_size"]
    ratio = authors["steps"] / b["steps"]
    runs = sorted(p.name for p in folder.iterdir() if (p / "metrics.json").exists())
    return [
        "| | the paper | here |",
        "| --- | --- | --- |",
        f"| images | grayscale, 256 x 256 | {s['color']}, {s['image_size']} x {s['image_size']} (Lanczos) |",
        f"| decoder | as the text describes it | `{s['decoder']}` ({DECODER_WORDS[s['decoder']]}) |",
        f"| budget | the authors' code: {budget_text(authors, batch)} | **{budget_text(b, s['batch_size'])}: "
        f"{ratio:.0f} times fewer steps** |",
        f"| optimiser | not stated in the text | Adam, lr {s['lr']:g}, batch {s['batch_size']}, ReduceLROnPlateau(0.5) "
        "on the validation PSNR, best epoch kept |",
        f"| device | GPU | {device_words(m['residual']['device'])}, no GPU |",
        f"| MC-dropout passes | 30 | {m['uncertainty']['n_samples']} |",
        f"| runs | | {len(runs)}: {', '.join(f'`{r}`' for r in runs)} |",
    ]


def tables_1_2(folder: Path) -> list[str]:
    """Our bottle row of Tables I and II (seed 0) beside the paper's."""
    runs = [(m, c) for m, c, _ in TABLE_1_2_GRID]
    lines = ["| | " + " | ".join(run_label(f"{m}-{c}") for m, c in runs) + " |", "| --- |" + " --- |" * len(runs)]
    for level, table in (("image", "I"), ("pixel", "II")):
        for map_name in MAPS:
            cells = []
            for m, c in runs:
                ours = read_metrics(folder / f"{m}-{c}-s0")[map_name][f"{level}_auroc"]
                cells.append(_cell(ours, _paper(table, map_name, m, c)))
            lines.append(f"| {level}, {map_name} | " + " | ".join(cells) + " |")
    return lines


def table_3(folder: Path) -> list[str]:
    """Our bottle row of Table III (AESc, residual, image AUROC, seed 0) beside the paper's."""
    cells = [
        _cell(read_metrics(folder / f"aesc-{c}-s0")["residual"]["image_auroc"], _paper("III", "residual", "aesc", c))
        for c in TABLE_3_CORRUPTIONS
    ]
    return ["| " + " | ".join(TABLE_3_CORRUPTIONS) + " |", "|" + " --- |" * len(cells), "| " + " | ".join(cells) + " |"]


def claims(folder: Path) -> list[str]:
    """Each claim the runs allow, with its two sides, spread and verdict."""
    lines = [
        "| claim | ours | other side | difference | spread | verdict |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    notes = []
    for c in run_claims(folder)["claims"].values():
        lines.append(
            f"| {c.statement} | {c.ours:.3f} | {c.other:.3f} | {c.difference:+.3f} | {c.spread:.3f} | **{c.verdict}** |"
        )
        notes.append(f"- *{c.statement}* Spread: {c.spread_kind}.")
    return lines + ["", "How each spread was computed:", ""] + notes


def combined(folder: Path) -> list[str]:
    """The combined map of AESc + stain seed 0 against the two maps it combines."""
    m = read_metrics(folder / "aesc-stain-s0")
    if "combined" not in m:
        return []
    keys = (
        ("image AUROC", "image_auroc"),
        ("pixel AUROC", "pixel_auroc"),
        ("AUPRO", "pixel_aupro"),
        ("image F1-max", "image_f1_max"),
    )
    lines = ["| AESc + stain, seed 0 | " + " | ".join(k for k, _ in keys) + " |", "| --- |" + " ---: |" * len(keys)]
    for name in ("combined", *MAPS):
        lines.append(f"| {name} | " + " | ".join(f"{m[name][k]:.3f}" for _, k in keys) + " |")
    return lines


def decoder(folder: Path, legacy: Path) -> list[str]:
    """The grid against its first training with the legacy decoder, run by run."""
    if not legacy.is_dir():
        return []
    comparison = folder_comparison(folder, legacy)
    differ = ", ".join(f"{k} (`{a}` here, `{b}` there)" for k, (a, b) in comparison["differ"].items())
    rows = comparison["rows"]
    up = {k: sum(r["difference"][k] > 0 for r in rows) for k in ("image_auroc", "pixel_auroc")}
    lines = [
        f"`legacy-decoder/` holds the same grid trained first, with stainlib's first decoder. The pairs differ only in "
        f"{differ or 'nothing their configs record'}, all else equal (data, budget, seeds). "
        f"Over its {len(rows)} (run, map) pairs, the paper's decoder changed the image AUROC by "
        f"{comparison['mean']['image_auroc']:+.3f} on average (higher in {up['image_auroc']} of {len(rows)}) and the "
        f"pixel AUROC by {comparison['mean']['pixel_auroc']:+.3f} (higher in {up['pixel_auroc']} of {len(rows)}).",
        "",
        "| run | map | image AUROC: paper's decoder | legacy | difference | pixel AUROC: paper's decoder | legacy | "
        "difference |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        o, t, d = r["ours"], r["other"], r["difference"]
        lines.append(
            f"| {r['run']} | {r['map']} | {o['image_auroc']:.3f} | {t['image_auroc']:.3f} | {d['image_auroc']:+.3f} | "
            f"{o['pixel_auroc']:.3f} | {t['pixel_auroc']:.3f} | {d['pixel_auroc']:+.3f} |"
        )
    return lines


def budget_study(folder: Path) -> list[str]:
    """One line on the budget study, from its CSV: AESc + stain's residual image AUROC at its largest step."""
    path = folder / "budget" / "budget.csv"
    if not path.exists():
        return []
    rows = read_budget(path)
    top = max(r["steps"] for r in rows)
    at = {(r["network"], r["corruption"], r["map"]): r for r in rows if r["steps"] == top and int(r["seed"]) == 0}
    stain = at.get(("aesc", "stain", "residual"))
    seen = stain["images_seen"] if stain else None
    line = (
        f"`budget/` trains the runs the claims of Tables I and II compare for up to {top:,} steps ({seen:,} images "
        "seen) with the paper's decoder and the authors' 2,000-sample epochs, and scores them at five budgets on the "
        "way; its README has the curves' numbers."
    )
    if stain:
        line += (
            f" There, AESc + stain's residual image AUROC reaches {stain['image_auroc']:.3f} at {top:,} steps "
            f"(paper: {_paper('I', 'residual', 'aesc', 'stain'):.2f})."
        )
    return [line]


def predict_section(folder: Path) -> list[str]:
    import json

    path = folder / "predict" / "predict.json"
    if not path.exists():
        return []
    p = json.loads(path.read_text())
    c = p["counts"]
    return [
        f'`predict/` is the run of the book\'s section "Your own images" (chapter 8): {p["run_words"]}. Its image '
        f"threshold was {p['how']}. On the {p['n_images']} test images read as new files: precision "
        f"{p['precision']:.3f}, recall {p['recall']:.3f}, F1 {p['f1']:.3f} (F1-max {p['f1_max']:.3f}); "
        f"{c['fp']} of the {c['fp'] + c['tn']} good images flagged. `tools/bottle_predict.py` made it; the "
        "checkpoints stay git-ignored, `predict.json` holds the numbers and their provenance.",
    ]


def readme(results: Path) -> str:
    folder = results / "bottle"
    first = read_metrics(folder / "aesc-stain-s0")["residual"]
    config = read_config(folder / "aesc-stain-s0")
    b = config["budget"]
    seeds = seed_table(folder, "claims")
    stain = next(r for r in seeds["rows"] if r["corruption"] == "stain" and r["method"] == "residual")
    values = [v["image_auroc"] for _, v in sorted(stain["values"].items())]
    out = [
        "# MVTec AD bottle: our reproduction of Tables I-III",
        "",
        "<!-- Written by tools/bottle_readme.py from the runs in this folder: edit the tool, not this file. -->",
        "",
        f"Computed from the real MVTec AD `bottle` category (CC BY-NC-SA 4.0, MVTec Software GmbH; {b['n_train']} "
        f"training, {b['val_samples']} validation, {first['n_images']} test images: {first['n_good']} good and "
        f"{first['n_defective']} defective, with masks), which is not part of this repository. `reproduce.sh` made "
        "every run here; the tables are `../table_I.md`, `../table_II.md` and `../table_III.md` (CSV beside them). "
        "Each run folder holds `config.json`, `history.csv`, `metrics.json` (image and pixel AUROC, AUPRO, F1-max, "
        "per-defect AUROC, timings), figures of its best- and worst-detected images, and `SHA256SUMS` of its "
        "checkpoints, which are too large to commit; the sums identify them.",
        "",
        "## Provenance: this is not the paper's setting",
        "",
        *provenance(folder),
        "",
        "**A number here must never be read as the paper's setting**: every run is under-trained. `budget/` shows "
        "how the numbers grow with training.",
        "",
        "## Our bottle row beside the paper's",
        "",
        "Image AUROC (Table I) and pixel AUROC (Table II), seed 0, ours (paper):",
        "",
        *tables_1_2(folder),
        "",
        "Table III, AESc scored by the residual, image AUROC, seed 0, ours (paper):",
        "",
        *table_3(folder),
        "",
        "## Seed study",
        "",
        f"AESc + stain was trained with {len(values)} seeds (the seed also draws the validation split); its residual "
        f"image AUROC has mean {statistics.mean(values):.3f} and standard deviation "
        f"{statistics.stdev(values) if len(values) > 1 else float('nan'):.3f}. The other runs have one seed.",
        "",
        seeds["markdown"],
        "",
        "## Which claims hold on bottle",
        "",
        "A claim holds when the side it says wins leads by more than the spread, fails when it trails by more, and "
        "is within the spread otherwise (`stainlib.claims`; the book's chapter 8 states the rule). Each side is the "
        "mean over the seeds its run has. The spread is the standard error of the difference of two AUROCs on these "
        "test images, or the larger seed standard deviation of the two sides where that is larger.",
        "",
        *claims(folder),
        "",
    ]
    combined_lines, decoder_lines = combined(folder), decoder(folder, folder / "legacy-decoder")
    if combined_lines:
        out += [
            "**Beyond the paper, the combined map** (residual and uncertainty standardised by their clean-validation "
            "statistics, then averaged; `stainlib evaluate --map combined`):",
            "",
            *combined_lines,
            "",
        ]
    if decoder_lines:
        out += ["## The decoder: this grid against its first training", "", *decoder_lines, ""]
    out += ["## The other folders", ""]
    for section in (budget_study(folder), predict_section(folder)):
        out += [*section, ""] if section else []
    authors = paper_budget()
    out += [
        "## What we did not do",
        "",
        f"Train at the authors' budget ({budget_text(authors, defaults()['batch_size'])}), which a GPU makes "
        "minutes: `bash "
        "results/bottle/reproduce.sh DATA_ROOT paper` writes those runs in the same layout, and `tools/gpu_check.sh` "
        "trains the three runs the claims compare into `results/gpu/`.",
        "",
    ]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="?", default=str(ROOT / "results"))
    args = p.parse_args(argv)
    path = Path(args.results) / "bottle" / "README.md"
    path.write_text(readme(Path(args.results)))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
