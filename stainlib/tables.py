"""The paper's Tables I-III from a folder of runs, with the paper's number beside ours (book chapters 6 and 7).

:func:`make_table` collects ``<results>/<category>/<run>/metrics.json`` into the paper's layout, adds the texture,
object and overall means, and records where the numbers come from (data, image size, colour, epochs, optimiser steps
and images seen, device, git commit).  The paper's numbers (:func:`stainlib.paper.paper_numbers`) are keyed by
dataset and category: a synthetic ``wood`` is not compared with MVTec AD's ``wood``.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from .data import MVTEC_OBJECTS, MVTEC_TEXTURES
from .describe import budget_text, decoder_words
from .paper import GRIDS, NETWORKS, TABLE_COLUMNS, paper_numbers
from .runs import read_config, read_metrics
from .spec import run_name, stored_settings
from .synthetic import SYNTHETIC_OBJECTS, SYNTHETIC_TEXTURES, is_synthetic_category

__all__ = ["ablation_table", "folder_comparison", "make_table", "seed_table"]


def _git(folder: Path, *args) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=folder, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _commit_words(results: Path, runs: list[Path]) -> str:
    """Which code the runs of a table come from, as far as git can tell: the last commit that wrote their results,
    when they are committed unchanged, else the checkout's commit, said to be only that (runs do not record the code
    they were trained with).  The last commit, not the first: a run retrained in the same folder is a new run."""
    head = _git(results, "rev-parse", "--short", "HEAD")
    if head is None:
        return "commit unknown (not a git checkout)"
    paths = [str(r.resolve() / "metrics.json") for r in runs]
    last = _git(results, "log", "-1", "--format=%h", "--", *paths) if paths else None
    changed = _git(results, "status", "--porcelain", "--", *paths) if paths else None
    if last and changed == "":
        return f"runs committed at {last}"
    return f"runs not committed; library checked out at {head} when the table was drawn"


_METRIC_WORDS = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC"}


def _budget_text(config: dict) -> str:
    """A run's budget as every page phrases it (:func:`stainlib.describe.budget_text`), with its validation samples;
    ``"–"`` where the run's ``config.json`` stores none."""
    b = config.get("budget")
    if not b:
        return "–"
    return f"{budget_text(b, config['train']['batch_size'])}, {b['val_samples']} validation samples"


def _steps_words(prov: dict) -> str:
    """``", 220 steps, the `legacy` decoder"``: the budget and decoder a page's table title names, where the runs
    share them."""
    one_budget = len(prov["steps"]) == 1 and len(prov["budget"]) == 1
    words = f", {prov['steps'][0]} steps" if one_budget else ""
    if len(prov["decoder"]) == 1:
        words += f", {decoder_words(prov['decoder'][0])}"
    return words


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def make_table(results, table: str = "I", seed: int = 0, color: str = "gray", write: bool = True) -> dict:
    """Collect ``results/<category>/<run>/metrics.json`` into the paper's layout, with the paper's number beside ours.

    Returns ``{"rows": [...], "columns": [...], "provenance": {...}, "markdown": str}`` and, with ``write``, saves
    ``table_<table>.csv`` and ``table_<table>.md`` in ``results``.
    """
    if table not in TABLE_COLUMNS:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(TABLE_COLUMNS)}")
    results = Path(results)
    metric, columns = TABLE_COLUMNS[table]
    paper = paper_numbers(table)
    categories = sorted(p.name for p in results.iterdir() if p.is_dir() and any(p.glob("*/metrics.json")))
    provenance = {k: set() for k in ("data", "size", "epochs", "budget", "steps", "device", "color", "decoder")}
    rows, used = [], []
    for cat in categories:
        row, dataset = {"category": cat}, "mvtec_ad"
        for meth, net, cor in columns:
            run = results / cat / run_name(net.lower(), cor, seed, color)
            ours = read_metrics(run).get(meth)
            if ours is not None:
                _check_result(run, meth, ours, metric)
                used += [run] if run not in used else []
                config = read_config(run)
                s = stored_settings(config)
                dataset = (ours.get("data") or {}).get("dataset", dataset)
                provenance["data"].add("MVTec AD" if dataset == "mvtec_ad" else "synthetic")
                provenance["size"].add(s["image_size"])
                provenance["color"].add(s["color"])
                unfinished = ours.get("unfinished")
                budget = config.get("budget")
                if unfinished:  # evaluated before its last epoch (--unfinished): what was trained
                    budget = ours.get("budget") or budget
                    provenance["epochs"].add(unfinished["epochs_trained"])
                    text = _budget_text({**config, "budget": budget})
                    done, planned = unfinished["epochs_trained"], unfinished["epochs_planned"]
                    provenance["budget"].add(f"{text} (unfinished: {done} of {planned} epochs)")
                else:
                    provenance["epochs"].add(s["epochs"])
                    provenance["budget"].add(_budget_text(config))
                if budget:
                    provenance["steps"].add(f"{budget['steps']:,}")
                provenance["device"].add(ours["device"])
                provenance["decoder"].add(s.get("decoder", "paper"))
            row[f"{meth}/{net}/{cor}"] = None if ours is None else ours[metric]
        for meth, net, cor in columns:
            row[f"{meth}/{net}/{cor} (paper)"] = paper.get((dataset, cat, meth, net, cor))
        rows.append(row)
    keys = [f"{m}/{n}/{c}{suffix}" for m, n, c in columns for suffix in ("", " (paper)")]
    groups = {"mean textures": MVTEC_TEXTURES + SYNTHETIC_TEXTURES, "mean objects": MVTEC_OBJECTS + SYNTHETIC_OBJECTS}
    for label, members in groups.items():
        sub = [r for r in rows if r["category"] in members]
        if sub:
            rows.append({"category": label, **{k: _mean([r[k] for r in sub]) for k in keys}})
    real = [r for r in rows if not r["category"].startswith("mean")]
    if real:
        rows.append({"category": "mean all", **{k: _mean([r[k] for r in real]) for k in keys}})
    prov = {k: sorted(map(str, v)) for k, v in provenance.items()}
    prov["seed"] = str(seed)
    prov["commit"] = _commit_words(results, used)
    prov["metric"] = metric
    md = _markdown(table, rows, columns, prov)
    page = _markdown(table, rows, columns, prov, data=_data_words(categories))
    if write and rows:
        _write_csv(results / f"table_{table}.csv", rows, keys)
        (results / f"table_{table}.md").write_text(md)
    return {"rows": rows, "columns": columns, "provenance": prov, "markdown": md, "page_markdown": page}


def _data_words(categories: list) -> str:
    """The categories of a table as a page's header names them: ``synthetic `synth_cap```, ``MVTec AD `bottle```."""
    return ", ".join(f"{'synthetic' if is_synthetic_category(c) else 'MVTec AD'} `{c}`" for c in categories) or "–"


def _check_result(run: Path, method: str, result: dict, metric: str) -> None:
    """Refuse a ``metrics.json`` entry without the numbers a table shows, naming the file and the key."""
    for key in (metric, "device"):
        value = result.get(key)
        if value is None or (key == metric and not isinstance(value, (int, float))):
            raise ValueError(
                f"{run / 'metrics.json'}: the {method!r} result has no {key!r} (got {value!r}); evaluate the run "
                f"again (stainlib evaluate {run} --map {method})"
            )


def _write_csv(path: Path, rows: list[dict], keys: list[str]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["category", *keys])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else (round(v, 4) if isinstance(v, float) else v)) for k, v in r.items()})


def _markdown(table, rows, columns, prov, data: str | None = None) -> str:
    """One row per category and trained model, one column per map (ours, then the paper's): it fits a page.

    With ``data`` (the categories in words), the page's version: its title names the dataset and the seed, and the
    provenance paragraph (budget, device, commit) is left to the chapter's evidence box.
    """

    def cell(v):
        return "–" if v is None else f"{v:.2f}"

    methods = list(dict.fromkeys(m for m, _, _ in columns))
    models = list(dict.fromkeys((n, c) for _, n, c in columns))
    head = "| category | model | " + " | ".join(f"{m} | paper" for m in methods) + " |"
    title = (
        f"Table {table}: {_METRIC_WORDS.get(prov['metric'], prov['metric'])}"
        + (f" on {data}, seed {prov['seed']} of each run{_steps_words(prov)}" if data else "")
        + ", ours beside the paper's (– where the paper has no such number)."
    )
    lines = [
        f"**{title}**" if data else title,
        "",
        head,
        "|" + "---|" * (2 + 2 * len(methods)),
    ]
    if sum(not r["category"].startswith("mean") for r in rows) == 1:  # the means of one category repeat it
        rows = [r for r in rows if not r["category"].startswith("mean")]
    for r in rows:
        for n, c in models:
            cells = []
            for m in methods:
                key = f"{m}/{n}/{c}"
                cells += [cell(r.get(key)), cell(r.get(f"{key} (paper)"))] if (m, n, c) in columns else ["–", "–"]
            lines.append(f"| {r['category']} | {n} + {c} | " + " | ".join(cells) + " |")
    if data:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Provenance: data {', '.join(prov['data']) or '–'}; image size {', '.join(prov['size']) or '–'} px "
        f"({', '.join(prov['color']) or '–'}); "
        f"budget {'; '.join(prov['budget']) or '–'}; "
        f"decoder {', '.join(prov['decoder']) or '–'}; device {', '.join(prov['device']) or '–'}; "
        f"seed {prov['seed']} (one run per cell); {prov['commit']}.",
    ]
    return "\n".join(lines) + "\n"


def seed_table(folder, grid: str = "claims") -> dict:
    """Per-seed AUROCs of one category's runs of ``grid`` in ``folder`` (``<run>-s<seed>``), with mean and spread.

    Returns ``{"rows": [...], "seeds": [...], "markdown": str}``; a row per run and map scored, its image and pixel
    AUROC for each seed found, their mean and standard deviation (blank with one seed).
    """
    import statistics

    folder = Path(folder)
    rows, all_seeds = [], set()
    for m, c, methods in GRIDS[grid]:
        for method in methods:
            values = {}
            for run in sorted(folder.glob(f"{m}-{c}-s*")):
                seed = run.name.rsplit("-s", 1)[1]
                found = read_metrics(run) if seed.isdigit() and (run / "metrics.json").exists() else {}
                if method in found:
                    values[int(seed)] = found[method]
            if values:
                all_seeds |= set(values)
                rows.append({"network": NETWORKS[m], "corruption": c, "method": method, "values": values})
    seeds = sorted(all_seeds)
    head = "| run | map | level | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd |"
    lines = [head, "|" + "---|" * (len(seeds) + 5)]
    for r in rows:
        for level in ("image", "pixel"):
            vals = [r["values"][s][f"{level}_auroc"] if s in r["values"] else None for s in seeds]
            got = [v for v in vals if v is not None]
            sd = f"{statistics.stdev(got):.3f}" if len(got) > 1 else ""
            cells = " | ".join("" if v is None else f"{v:.3f}" for v in vals)
            run = f"{r['network']} + {r['corruption']}"
            lines.append(f"| {run} | {r['method']} | {level} | {cells} | {statistics.mean(got):.3f} | {sd} |")
    return {"rows": rows, "seeds": seeds, "markdown": "\n".join(lines)}


def ablation_table(path, n_good: int, n_defective: int) -> dict:
    """``results/fidelity/ablation.csv`` (``tools/fidelity_ablation.py``) as the book reads it (chapters 5 and 8).

    The seed spread is the standard deviation over the ``seed spread`` rows and seed 0 of the same model (the paper
    reading of the decoder row); each other reading is compared with its paper reading (the masks row re-scores the
    decoder row's model), by the book's rule for any difference (:func:`stainlib.claims.comparison_spread`): it is
    beyond its spread where it exceeds the standard error of the difference of the two AUROCs on ``n_good`` good and
    ``n_defective`` defective test images, or the seed spread where that is larger.

    Returns ``{"first", "n_seeds", "spread", "readings", "moved"}``: ``spread`` is the seed standard deviation per
    metric; ``readings`` holds, per row, the CSV row (``source``), ``paper`` and ``other`` AUROCs, their
    ``difference``, its ``in_sd`` (in seed standard deviations), its ``spread`` by the rule above and whether it is
    ``beyond`` it; ``moved`` names the rows with a difference beyond its spread at either level.
    """
    import statistics

    from .claims import comparison_spread

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = ("image_auroc", "pixel_auroc")
    seed_runs = [r for r in rows if r["row"] == "seed spread"]
    seed_runs += [r for r in rows if r["row"] == "decoder" and r["reading"] == "paper"]  # seed 0 of the same model
    spread = {k: statistics.stdev(float(r[k]) for r in seed_runs) for k in keys}
    paper_row = {r["row"]: r for r in rows if r["reading"] == "paper"}
    paper_row["masks"] = paper_row["decoder"]  # the masks row re-scores that model with the code's masks
    readings = []
    for r in rows:
        if r["row"] == "seed spread" or r["reading"] == "paper":
            continue
        p = paper_row[r["row"]]
        d = {k: float(r[k]) - float(p[k]) for k in keys}
        rule = {
            k: comparison_spread(float(r[k]), float(p[k]), n_good, n_defective, [[float(s[k]) for s in seed_runs]])[0]
            for k in keys
        }
        readings.append(
            {
                "source": r,
                "paper": {k: float(p[k]) for k in keys},
                "other": {k: float(r[k]) for k in keys},
                "difference": d,
                "in_sd": {k: abs(d[k]) / spread[k] for k in keys},
                "spread": rule,
                "beyond": {k: abs(d[k]) > rule[k] for k in keys},
            }
        )
    moved = [x["source"]["row"] for x in readings if any(x["beyond"].values())]
    return {"first": rows[0], "n_seeds": len(seed_runs), "spread": spread, "readings": readings, "moved": moved}


_NOT_SETTINGS = ("data_root",)
"""Settings two copies of a run may differ in without being different runs (where the data was read from)."""


def folder_comparison(folder, other) -> dict:
    """The runs of the same name in two folders side by side: what their settings differ in, and each map's AUROCs.

    Used for the committed bottle grid against its first training with the ``legacy`` decoder
    (``results/bottle`` and ``results/bottle/legacy-decoder``; chapter 8 and ``tools/bottle_readme.py``).

    Args:
        folder: the runs compared (``<run>/config.json`` and ``metrics.json``).
        other: the runs they are compared with, under the same names.

    Returns:
        ``{"rows": [...], "differ": {setting: (ours, other)}, "mean": {metric: mean difference}}``: a row per run
        and map scored in both (``run``, ``map``, ``ours``, ``other`` and ``difference``, each a dict of image and
        pixel AUROC), by run name then map; ``differ`` holds the settings that differ between the two folders (the
        same in every pair, else ``ValueError``); ``mean`` the mean difference over the rows.

    Raises:
        ValueError: the pairs differ in different settings, or no run is in both folders.
    """
    import statistics

    folder, other = Path(folder), Path(other)
    keys = ("image_auroc", "pixel_auroc")
    rows, differ = [], None
    for run in sorted(p for p in other.iterdir() if (p / "metrics.json").exists() and (folder / p.name).is_dir()):
        ours_run = folder / run.name
        a, b = stored_settings(read_config(ours_run)), stored_settings(read_config(run))
        found = {k: (a[k], b[k]) for k in a if a[k] != b[k] and k not in _NOT_SETTINGS}
        if differ is not None and found != differ:
            raise ValueError(
                f"{run.name}: differs from its copy in {sorted(found)}, the other runs in {sorted(differ)}"
            )
        differ = found
        mine, theirs = read_metrics(ours_run), read_metrics(run)
        for map_name in sorted(set(mine) & set(theirs)):
            o = {k: mine[map_name][k] for k in keys}
            t = {k: theirs[map_name][k] for k in keys}
            rows.append(
                {"run": run.name, "map": map_name, "ours": o, "other": t, "difference": {k: o[k] - t[k] for k in keys}}
            )
    if not rows:
        raise ValueError(f"no run scored in both {folder} and {other}")
    mean = {k: statistics.mean(r["difference"][k] for r in rows) for k in keys}
    return {"rows": rows, "differ": differ, "mean": mean}
