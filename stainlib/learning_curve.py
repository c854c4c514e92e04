"""Learning curves: a run's AUROC against its training budget, and the budget from which each claim holds (chapter 6,
Tables I and II).

A budget study keeps a run's weights at fixed optimiser steps (``stainlib train --keep-steps``), scores every
snapshot (``stainlib evaluate --at-step``) and gathers the scores in one CSV (``tools/budget_table.py``), one row per
(run, step, map).  :func:`read_budget` reads that file, :func:`curve_figure` draws AUROC against images seen on a log
scale beside the paper's numbers and the authors' budget, and :func:`claim_onsets` finds, for each claim of Tables I
and II, the smallest budget from which the claim holds at every larger budget studied.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .claims import Claim, check, comparison_spread
from .collect import bottle_claims, committed_aurocs
from .describe import decoder_words, run_where
from .paper import NETWORKS, SHORT, SIDES, STATEMENTS, paper_numbers, run_label
from .runs import read_config, read_step_metrics
from .spec import paper_budget, stored_settings

__all__ = [
    "COLUMNS",
    "authors_budget",
    "bottle_aurocs",
    "bottle_evidence",
    "budget_claims",
    "claim_onsets",
    "claims_at",
    "curve_figure",
    "onset_markdown",
    "read_budget",
    "seed_means_words",
]

COLUMNS = ["network", "corruption", "seed", "steps", "images_seen", "map", "image_auroc", "pixel_auroc", "decoder"]
"""The columns of a budget study's CSV, in order."""

_LEVELS = ("image", "pixel")
_TABLE = {"image": "I", "pixel": "II"}
_STYLE = {  # the runs the claims of Tables I and II compare: a colour and a marker each (dashed: the paper's)
    ("aesc", "stain", "residual"): ("C0", "o"),
    ("aesc", "stain", "uncertainty"): ("C1", "s"),
    ("aesc", "none", "residual"): ("C2", "^"),
    ("ae", "none", "residual"): ("C3", "D"),
}


def read_budget(path) -> list[dict]:
    """The rows of a budget study's CSV, typed: ``steps``, ``images_seen`` and ``seed`` as int, AUROCs as float.

    Args:
        path: a CSV with the header :data:`COLUMNS` (extra columns are kept as text).
    Returns:
        One dict per (run, step, map), in the file's order.
    Raises:
        ValueError: a column is missing, or a number does not parse, naming the line.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path.name}: not a budget study's CSV, missing the columns {', '.join(missing)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                for key in ("seed", "steps", "images_seen"):
                    row[key] = int(row[key])
                for key in ("image_auroc", "pixel_auroc"):
                    row[key] = float(row[key])
            except ValueError as err:
                raise ValueError(f"{path.name}, line {line}: {err}") from None
            rows.append(row)
    return rows


def authors_budget() -> dict:
    """The authors' training budget (``spec.BUDGETS["paper"]``) in steps of the default batch and images seen."""
    b = paper_budget()
    return {"steps": b["steps"], "images_seen": b["images_seen"]}


def _curves(rows, seed: int = 0) -> dict:
    """``{(network, corruption, map): [(images_seen, image_auroc, pixel_auroc), ...]}`` for one seed, by budget."""
    out: dict = {}
    for r in rows:
        if r["seed"] == seed:
            out.setdefault((r["network"], r["corruption"], r["map"]), []).append(
                (r["images_seen"], r["image_auroc"], r["pixel_auroc"])
            )
    return {k: sorted(v) for k, v in out.items()}


def curve_figure(
    rows, category: str = "bottle", dataset: str = "mvtec_ad", seed: int = 0, runs=None, scale=2.8, other_seeds=True
):
    """AUROC against images seen (log scale), one panel per level, one line per (network, corruption, map).

    Args:
        rows: :func:`read_budget`'s rows.
        category, dataset: where the paper's numbers are looked up (dashed lines in the run's colour).
        seed: the seed whose runs are drawn.
        runs: the ``(network, corruption, map)`` lines to draw, by default those the claims of Tables I and II
            compare (AESc + stain by both maps, AESc + none and AE + none by the residual) that the rows hold.
        other_seeds: also draw the run's other seeds, where the rows hold them, as thin lines of its colour: the
            scatter between them is the scale below which a gap between two runs is not a finding.
    Returns:
        The matplotlib figure; a dotted vertical line marks the authors' budget.
    """
    import matplotlib.pyplot as plt

    curves = _curves(rows, seed)
    runs = [r for r in (runs or _STYLE) if r in curves]
    others = sorted({r["seed"] for r in rows} - {seed}) if other_seeds else []
    extra = {s: _curves(rows, s) for s in others}
    drawn_others = False
    authors = authors_budget()["images_seen"]
    fig, axes = plt.subplots(1, 2, figsize=(2.6 * scale, 1.3 * scale), sharey=True, layout="constrained")
    for ax, level in zip(axes, _LEVELS):
        paper = paper_numbers(_TABLE[level])
        for k, run in enumerate(runs):
            network, corruption, name = run
            color, marker = _STYLE.get(run, (f"C{4 + k}", "v"))
            points = curves[run]
            x = [p[0] for p in points]
            y = [p[1 if level == "image" else 2] for p in points]
            label = f"{NETWORKS[network]} + {corruption}, {name}"
            ax.plot(x, y, "-", marker=marker, markersize=5, color=color, label=label)
            for other in others:
                if run in extra[other]:
                    pts = extra[other][run]
                    ys = [p[1 if level == "image" else 2] for p in pts]
                    ax.plot([p[0] for p in pts], ys, "-", color=color, linewidth=0.9, alpha=0.5, label="_other_seed")
                    drawn_others = True
            theirs = paper.get((dataset, category, name, NETWORKS[network], corruption))
            if theirs is not None:
                ax.hlines(theirs, x[0], authors, colors=color, linestyles=(0, (4, 3)), linewidth=1, alpha=0.7)
        ax.axvline(authors, color="0.4", linestyle=":", linewidth=1.2)
        ax.text(authors, 0.02, "authors'\nbudget ", ha="right", va="bottom", fontsize=9, color="0.3")
        ax.axhline(0.5, color="0.7", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel("training images seen (log scale)", fontsize=10)
        ax.set_title(f"{level} AUROC (dashed: the paper's)", fontsize=11)
        ax.tick_params(labelsize=9)
    axes[0].set_ylabel("AUROC (0.5: chance)", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    if drawn_others:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="0.3", linewidth=0.9, alpha=0.5))
        labels.append(f"thin: seed{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} of the same run")
    fig.legend(handles, labels, fontsize=9, loc="outside lower center", ncol=2)
    return fig


def _sides(rows, seeds=None) -> dict:
    """``{(network, corruption, map, level, images_seen): ([auroc per seed], steps)}`` of the seeds in ``seeds``
    (``None``: every seed the rows hold), each list in the order of the seeds."""
    out: dict = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        if seeds is None or r["seed"] in seeds:
            for level in _LEVELS:
                key = (r["network"], r["corruption"], r["map"], level, r["images_seen"])
                values = out.get(key, ([], None))[0] + [r[f"{level}_auroc"]]
                out[key] = (values, r["steps"])
    return out


def claims_at(rows, images: int, n_good: int, n_defective: int, seeds=None) -> dict[str, Claim]:
    """The claims of Tables I and II (``paper.SIDES``) checked at the budget of ``images`` images seen.

    Each side is the mean over the seeds it was scored with.  A claim's spread is the standard error of the
    difference of two single-run AUROCs on the same ``n_good`` good and ``n_defective`` defective test images (Hanley
    and McNeil, the two errors in quadrature; the image-level formula, a rough scale for pixel AUROCs, whose pixels
    are not independent), or, where a side has several seeds, the larger standard deviation over seeds of its two
    sides where that is larger, as :func:`stainlib.collect.run_claims` reads a seed study
    (:func:`stainlib.claims.comparison_spread`).

    Args:
        rows: :func:`read_budget`'s rows.
        images: the budget, in training images seen.
        n_good, n_defective: the test images the AUROCs were measured on.
        seeds: the seeds used (``None``: all the rows hold).
    Returns:
        ``{claim key: Claim}`` for the claims whose two sides were both scored at that budget.
    """
    return _claims_at(_sides(rows, seeds), images, n_good, n_defective)


def _side_words(side: tuple) -> str:
    """A side of :data:`stainlib.paper.SIDES` in words: ``("aesc", "stain", "residual", "image")`` is
    "AESc + Stain's residual image AUROC", as :func:`stainlib.collect.run_claims` names it."""
    network, corruption, map_name, level = side
    return f"{run_label(f'{network}-{corruption}')}'s {map_name} {level} AUROC"


def _claims_at(sides: dict, images: int, n_good: int, n_defective: int) -> dict[str, Claim]:
    """:func:`claims_at` on :func:`_sides`' table, which :func:`claim_onsets` builds once for every budget."""
    import statistics

    out = {}
    for key, (win, lose) in SIDES.items():
        if (*win, images) in sides and (*lose, images) in sides:
            va, vb = sides[(*win, images)][0], sides[(*lose, images)][0]
            a, b = statistics.mean(va), statistics.mean(vb)
            names = [_side_words(win), _side_words(lose)]
            each = f"means over {len(va)} seeds of each" if len(va) == len(vb) else f"{len(va)} and {len(vb)} seeds"
            spread = comparison_spread(a, b, n_good, n_defective, [va, vb], names, win[-1] == "pixel", each)
            out[key] = check(STATEMENTS[key], a, b, *spread)
    return out


def claim_onsets(rows, n_good: int, n_defective: int, seeds=None) -> list[dict]:
    """For each claim of Tables I and II (``paper.SIDES``), where it holds along the budget study (the claims and
    their spread as :func:`claims_at` checks them at each budget).

    Args:
        rows: :func:`read_budget`'s rows.
        n_good, n_defective: the test images the AUROCs were measured on.
        seeds: the seeds used (``None``: all the rows hold).
    Returns:
        One dict per claim whose two sides were both studied: ``key``, ``short`` (the claim in a few words),
        ``points`` (``[(images_seen, steps, difference, spread, holds)]`` by budget), ``spread_kind`` (how the spread
        of the largest budget was computed) and ``from_images`` (the smallest budget from which it holds at every
        larger one studied, or ``None``).
    """
    sides = _sides(rows, seeds)
    steps = {k[-1]: v[1] for k, v in sides.items()}
    by_budget = {images: _claims_at(sides, images, n_good, n_defective) for images in sorted(steps)}
    out = []
    for key in SIDES:
        claims = [(i, c[key]) for i, c in by_budget.items() if key in c]
        if not claims:
            continue
        points = [(i, steps[i], c.difference, c.spread, c.holds) for i, c in claims]
        onset = None
        for images, *_, holds in reversed(points):
            if not holds:
                break
            onset = images
        out.append(
            {
                "key": key,
                "short": SHORT[key],
                "points": points,
                "spread_kind": claims[-1][1].spread_kind,
                "from_images": onset,
            }
        )
    return out


def budget_claims(study) -> dict | None:
    """The claims of Tables I and II on a committed budget study's largest budget (None where there is none).

    Args:
        study: a folder holding ``budget.csv`` and the run folders it was gathered from (``results/bottle/budget``).
    Returns:
        ``{"where": str, "claims": {key: Claim}, "steps": int, "images_seen": int}``, as
        :func:`stainlib.collect.bottle_claims` returns for the committed grid; the test-image counts come from the
        runs' own step metrics.
    """
    study = Path(study)
    if not (study / "budget.csv").exists():
        return None
    rows = read_budget(study / "budget.csv")
    images = max(r["images_seen"] for r in rows)
    steps = max(r["steps"] for r in rows if r["images_seen"] == images)
    first = next(r for r in rows if r["images_seen"] == images)
    run = study / f"{first['network']}-{first['corruption']}-s{first['seed']}"
    counts = next(iter(read_step_metrics(run)[steps].values()))
    seeds_of: dict[str, set] = {}
    for r in rows:
        if r["images_seen"] == images:
            seeds_of.setdefault(f"{NETWORKS[r['network']]} + {r['corruption']}", set()).add(r["seed"])
    runs = sorted(seeds_of)
    by_seeds: dict[tuple, list] = {}
    for name in runs:
        by_seeds.setdefault(tuple(sorted(seeds_of[name])), []).append(name)
    seed_words = ", ".join(
        (f"seed {found[0]}" if len(found) == 1 else f"seeds {', '.join(map(str, found))}")
        + ("" if len(by_seeds) == 1 else f" of {' and '.join(names)}")
        for found, names in sorted(by_seeds.items(), key=lambda item: -len(item[0]))
    )
    where = (
        f"the budget study's {' and '.join(runs)} at their largest budget ({run_where(run, per_run=True)}, "
        f"{seed_words})"
    )
    claims = claims_at(rows, images, counts["n_good"], counts["n_defective"])
    return {"where": where, "claims": claims, "steps": steps, "images_seen": images}


def onset_markdown(onsets, data_words: str) -> str:
    """A Markdown table of :func:`claim_onsets`: each claim, the budget from which it holds, and its margin and
    spread at the largest budget.  ``data_words`` names the data in the header (e.g. ``"real MVTec AD bottle, seed
    0"``).  Where a side had several seeds, the spread cell says which error it is (the standard error of the
    difference or the seed standard deviation, :func:`stainlib.claims.comparison_spread`)."""
    single = all("(one seed)" in o["spread_kind"] for o in onsets)
    spread = "spread (two standard errors in quadrature)" if single else "spread"
    lines = [
        f"| claim ({data_words}) | the winner leads beyond the spread from (training images seen) | largest budget: "
        "difference "
        f"| {spread} |",
        "|---|---|---|---|",
    ]
    for o in onsets:
        images, steps, diff, spread, _ = o["points"][-1]
        start = "none of the budgets studied" if o["from_images"] is None else f"{o['from_images']:,}"
        source = "" if single else f" ({_spread_source(o['spread_kind'])})"
        lines.append(f"| {o['short']} | {start} | {diff:+.3f} ({images:,} images) | {spread:.3f}{source} |")
    return "\n".join(lines)


def _spread_source(kind: str) -> str:
    """Which error a :func:`stainlib.claims.comparison_spread` kind names, in two words."""
    return "seed sd" if kind.startswith("the standard deviation over") else "standard error"


def bottle_evidence(results) -> dict | None:
    """The real-bottle column of a chapter's evidence box: the budget study's largest budget where it is committed
    (``results/bottle/budget``), else the committed grid (``results/bottle``); None where neither is.

    Args:
        results: the results folder (``results/`` of the checkout).
    Returns:
        ``{"where": str, "claims": {key: Claim}, "decoders": set, "source": str, "steps": int}``: the provenance
        line, the claims, the decoders of the runs they were read from (``{"paper"}`` for the study), which source
        (``"budget study"`` or ``"grid"``) and the optimiser steps of its runs.
    """
    results = Path(results)
    study = budget_claims(results / "bottle" / "budget")
    if study:
        return {
            "where": f"{study['where']}, in `results/bottle/budget`",
            "claims": study["claims"],
            "decoders": {"paper"},
            "source": "budget study",
            "steps": study["steps"],
        }
    grid = bottle_claims(results)
    if grid is None:
        return None
    configs = [read_config(r) for r in (results / "bottle").glob("aesc-stain-s[0-9]")]
    return {
        "where": f"the committed runs in `results/bottle` ({grid['where']})",
        "claims": grid["claims"],
        "decoders": {stored_settings(c)["decoder"] for c in configs},
        "source": "grid",
        "steps": configs[0]["budget"]["steps"],
    }


def bottle_aurocs(results, runs, map_name: str = "residual") -> tuple[dict, str]:
    """The real bottle AUROCs a page sets beside its own run's: from the budget study's largest budget where the study
    holds every one of ``runs``, else seed 0 of the committed grid.

    Args:
        results: the results folder (``results/`` of the checkout).
        runs: run names such as ``"aesc-stain"`` (network-corruption).
        map_name: ``"residual"`` or ``"uncertainty"``.
    Returns:
        ``({run: (image AUROC, pixel AUROC)}, words)``, ``words`` naming the source for a table header, e.g.
        ``"2,000 steps, the paper's decoder"``; ``({}, "")`` where neither source has them.
    """
    results = Path(results)
    csv_path = results / "bottle" / "budget" / "budget.csv"
    if csv_path.exists():
        rows = read_budget(csv_path)
        top = max(r["steps"] for r in rows)
        found = {
            f"{r['network']}-{r['corruption']}": (r["image_auroc"], r["pixel_auroc"])
            for r in rows
            if r["steps"] == top and r["map"] == map_name and r["seed"] == 0
        }
        if all(run in found for run in runs):
            at_top = [r for r in rows if r["steps"] == top]
            seed = ", seed 0" if len({r["seed"] for r in at_top}) > 1 else ""
            decoders = " and ".join(sorted({decoder_words(r["decoder"]) for r in at_top}))
            return {run: found[run] for run in runs}, f"{top:,} steps{seed}, {decoders}"
    grid = committed_aurocs(results / "bottle", runs, map_name)
    if not grid:
        return {}, ""
    config = read_config(results / "bottle" / f"{next(iter(grid))}-s0")
    return grid, f"{config['budget']['steps']:,} steps, seed 0, {decoder_words(stored_settings(config)['decoder'])}"


def seed_means_words(results, runs, maps=("residual",)) -> str:
    """A sentence that reconciles :func:`bottle_aurocs`' seed 0 with the evidence boxes' seed means: for each of
    ``runs`` that the budget study trained with several seeds, its mean AUROCs over them at the largest budget, by
    each map of ``maps``.

    Example: "The evidence box compares means over seeds where a run has several: over its 3 seeds, AESc + stain's
    residual scores 0.956 (image AUROC) and 0.834 (pixel AUROC)."  Empty where no run has several seeds (or the
    study is not committed).
    """
    import statistics

    csv_path = Path(results) / "bottle" / "budget" / "budget.csv"
    if not csv_path.exists():
        return ""
    rows = read_budget(csv_path)
    top = max(r["steps"] for r in rows)
    parts = []
    for run in runs:
        for map_name in maps:
            found = [
                r
                for r in rows
                if r["steps"] == top and r["map"] == map_name and f"{r['network']}-{r['corruption']}" == run
            ]
            if len(found) > 1:
                image = statistics.mean(r["image_auroc"] for r in found)
                pixel = statistics.mean(r["pixel_auroc"] for r in found)
                parts.append(
                    f"over its {len(found)} seeds, {run_label(run)}'s {map_name} scores {image:.3f} (image AUROC) and "
                    f"{pixel:.3f} (pixel AUROC)"
                )
    if not parts:
        return ""
    return "The evidence box compares means over seeds where a run has several: " + "; ".join(parts) + "."
