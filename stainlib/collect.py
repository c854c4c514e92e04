"""The paper's claims, checked on a folder of runs, on one page's run and on the paper's own numbers (book chapters
6, 7 and 8; chapter 8, "Beyond the paper", states the rule).

* :func:`run_claims` reads the runs of one category (``<folder>/<run>-s<seed>/metrics.json``) into per-seed values
  and checks each claim of :data:`stainlib.paper.STATEMENTS` that they allow: each side is the mean over the seeds of
  its run, and the spread is the standard error of the difference of two AUROCs on this many test images
  (:func:`stainlib.claims.single_run_spread`), or the larger standard deviation over seeds of the two sides where
  that is larger (:func:`stainlib.claims.comparison_spread`);
* :func:`bottle_claims` does so for the committed MVTec AD bottle runs, :func:`committed_aurocs` gives their AUROCs;
* :func:`measured` checks a claim on a page's own single-seed run;
* :func:`paper_claims` checks the same claims on the paper's printed numbers.

Each returns :class:`~stainlib.claims.Claim` objects; :mod:`stainlib.evidence` lays them out for a page.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .claims import Claim, check, comparison_spread
from .data import MVTEC_OBJECTS, MVTEC_TEXTURES
from .describe import run_where
from .paper import NETWORKS, RUN_LABELS, SIDES, STATEMENTS, TABLE_3_CORRUPTIONS, paper_numbers, run_label
from .runs import read_metrics

__all__ = [
    "PAPER_ROUNDING",
    "TABLE_1_2_CLAIMS",
    "TABLE_3_CLAIMS",
    "bottle_claims",
    "committed_aurocs",
    "measured",
    "paper_claims",
    "run_claims",
]

TABLE_1_2_CLAIMS = (
    "stain_beats_none_image",
    "stain_beats_none_pixel",
    "stain_beats_ae_image",
    "residual_wins_image",
    "uncertainty_wins_pixel",
)
"""The claims the paper draws from its Tables I and II."""
TABLE_3_CLAIMS = ("stain_best", "gaussian_beats_none", "stain_beats_gaussian")
"""The claims about Table III (the paper's findings on the corruptions)."""

PAPER_ROUNDING = 0.01 + 1e-9
"""The spread of a difference of two of the paper's numbers: each is printed to two decimals (rounding: +-0.005), so
a difference of 0.01 shows nothing (the 1e-9 keeps 0.98 - 0.99 from falling just beyond it in floating point)."""

_SEEDS = range(10)
"""The seeds a run folder is searched for (``<run>-s0`` to ``<run>-s9``)."""


def measured(key: str, ours: float, other: float, gt_label) -> Claim:
    """Claim ``key`` (see :data:`stainlib.paper.STATEMENTS`) on the page's own single-seed run, scored on
    ``gt_label``'s images (1: defective)."""
    n_def = int((gt_label == 1).sum())
    pixel = "pixel" in STATEMENTS[key]  # pixels of one image are not independent: the image counts set the scale
    return check(
        STATEMENTS[key], ours, other, *comparison_spread(ours, other, len(gt_label) - n_def, n_def, pixel=pixel)
    )


def bottle_claims(results) -> dict | None:
    """The paper's claims checked on the committed MVTec AD bottle runs in ``results`` (None where there are none).

    Returns ``{"where": str, "claims": {name: Claim}}``, as :func:`run_claims` does for ``results/bottle``.
    """
    folder = Path(results) / "bottle"
    if not (folder / "aesc-stain-s0" / "metrics.json").exists():
        return None
    return run_claims(folder)


class _SeedValues:
    """The metrics of the runs of one folder, read once: ``values(side)`` gives a side's value on each seed present,
    a side being ``(run, map, metric)``, e.g. ``("aesc-stain", "residual", "image_auroc")``."""

    def __init__(self, folder: Path):
        runs = [r for r in folder.iterdir() if r.is_dir()] if folder.is_dir() else []
        self.metrics = {r.name: read_metrics(r) for r in runs}
        first = self.metrics.get("aesc-stain-s0", {}).get("residual", {})
        self.n_good, self.n_defective = first.get("n_good", 0), first.get("n_defective", 0)

    def value(self, run_folder: str, map_name: str, metric: str):
        return self.metrics.get(run_folder, {}).get(map_name, {}).get(metric)

    def values(self, side: tuple) -> list[float]:
        run, map_name, metric = side
        found = [self.value(f"{run}-s{s}", map_name, metric) for s in _SEEDS]
        return [v for v in found if v is not None]

    def claim(self, key: str, ours: float, other: float, spread_from: list, compared: str) -> Claim:
        """Claim ``key`` on ``ours`` against ``other``.  Its spread is the standard error of their difference, or the
        largest standard deviation over seeds of ``spread_from`` (``[(values, side)]``) where that is larger
        (:func:`stainlib.claims.comparison_spread`); ``compared`` says which values were compared."""
        names = [
            f"{run_label(run)}'s {map_name} {metric.replace('_auroc', ' AUROC')}"
            for _, (run, map_name, metric) in spread_from
        ]
        values, pixel = [v for v, _ in spread_from], "pixel" in STATEMENTS[key]
        spread = comparison_spread(ours, other, self.n_good, self.n_defective, values, names, pixel, compared)
        return check(STATEMENTS[key], ours, other, *spread)

    def mean_claim(self, key: str, a: tuple, b: tuple) -> Claim | None:
        """Claim ``key`` on the mean over seeds of side ``a`` against that of side ``b`` (None where one has none)."""
        va, vb = self.values(a), self.values(b)
        if not va or not vb:
            return None
        if len(va) == len(vb):
            compared = f"means over {len(va)} seeds of each"
        else:
            compared = f"{_seeds_words(va, a[0])} against {_seeds_words(vb, b[0])}"
        return self.claim(key, statistics.mean(va), statistics.mean(vb), [(va, a), (vb, b)], compared)


def _seeds_words(values: list, run: str) -> str:
    return f"the mean of {len(values)} seeds of {run_label(run)}" if len(values) > 1 else f"seed 0 of {run_label(run)}"


def _side(network: str, corruption: str, map_name: str, level: str) -> tuple:
    return f"{network}-{corruption}", map_name, f"{level}_auroc"


def run_claims(folder, n_train: int | None = None) -> dict:
    """The paper's claims checked on the runs of one category, ``folder/<run>-s<seed>/metrics.json``.

    Args:
        folder: the category's folder of runs (``stainlib sweep --grid claims --seeds 0 1 2`` trains them).
        n_train: the number of training images, to phrase the budget for that count (:func:`run_where`).

    Returns:
        ``{"where": str, "claims": {name: Claim}}``: each claim that the runs present allow.  Each side of a
        comparison is the mean over the seeds of its run.  A claim's spread is the standard error of the difference
        of two AUROCs on these test images, or, with two seeds or more on a side, the larger standard deviation over
        seeds of the two sides where that is larger.  Table III's comparison and the combined map's use seed 0, the
        only seed those grids train.
    """
    folder = Path(folder)
    seeds = _SeedValues(folder)
    claims = {key: seeds.mean_claim(key, _side(*a), _side(*b)) for key, (a, b) in SIDES.items()}
    table3 = {c: seeds.values(_side("aesc", c, "residual", "image")) for c in TABLE_3_CORRUPTIONS}
    if all(table3.values()):  # against every other corruption, or not at all
        # Each corruption by the mean of the seeds it has: a Stain seed is never picked against the others' means.
        for key, (a, b) in _table_3_sides({c: statistics.mean(v) for c, v in table3.items()}).items():
            claims[key] = seeds.mean_claim(
                key, _side("aesc", a, "residual", "image"), _side("aesc", b, "residual", "image")
            )
    stain = _side("aesc", "stain", "residual", "image")
    combined = seeds.value("aesc-stain-s0", "combined", "image_auroc")
    residual = seeds.value("aesc-stain-s0", "residual", "image_auroc")
    if combined is not None and residual is not None:
        compared = "both from seed 0 of AESc + stain, the only seed scored with this map"
        claims["combined_wins_image"] = seeds.claim(
            "combined_wins_image", combined, residual, [(seeds.values(stain), stain)], compared
        )
    claims = {k: v for k, v in claims.items() if v is not None}
    where = folder.name
    if (folder / "aesc-stain-s0" / "config.json").exists():
        by_count: dict[int, list[str]] = {}
        for run, label in RUN_LABELS.items():
            n = len(seeds.values((run, "residual", "image_auroc")))
            if n > 1:
                by_count.setdefault(n, []).append(label)
        several = [
            f"{n} seeds of " + (names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}")
            for n, names in sorted(by_count.items(), reverse=True)
        ]
        where = run_where(folder / "aesc-stain-s0", n_train, per_run=True) + (
            f", {', '.join(several)}, one seed of the other runs" if several else ", one seed"
        )
    return {"where": where, "claims": claims}


def _table_3_sides(score: dict) -> dict:
    """The corruptions each Table III claim compares, from one score per corruption (``{corruption: AUROC}``)."""
    best_other = max((c for c in TABLE_3_CORRUPTIONS if c != "stain"), key=lambda c: score[c])
    best_gauss = max((c for c in TABLE_3_CORRUPTIONS if c.startswith("gaussian")), key=lambda c: score[c])
    return {
        "stain_best": ("stain", best_other),
        "gaussian_beats_none": (best_gauss, "none"),
        "stain_beats_gaussian": ("stain", best_gauss),
    }


def paper_claims(category: str) -> dict:
    """The claims of :data:`stainlib.paper.STATEMENTS` on the paper's own numbers (Tables I-III).

    Args:
        category: an MVTec AD category, or ``"mean"`` for the mean over the 15 categories (rounded to two decimals,
            as the rows are).

    Returns:
        ``{key: Claim}`` for every claim the paper's tables allow (none for a category they do not list).  The spread
        is :data:`PAPER_ROUNDING`: the paper prints two decimals, so a tie, or a difference of 0.01, shows nothing.
    """
    t1, t2, t3 = (paper_numbers(t) for t in ("I", "II", "III"))

    def get(table, map_name, network, corruption):
        if category != "mean":
            return table.get(("mvtec_ad", category, map_name, network, corruption))
        values = [table.get(("mvtec_ad", c, map_name, network, corruption)) for c in MVTEC_TEXTURES + MVTEC_OBJECTS]
        return None if None in values else round(statistics.mean(values), 2)  # printed to two decimals, as the rows

    def number(network, corruption, map_name, level):
        table = t1 if level == "image" else t2  # Table I: image AUROC, Table II: pixel AUROC
        return get(table, map_name, NETWORKS[network], corruption)

    kind = "the paper's numbers are printed to two decimals"
    pairs = {key: (number(*a), number(*b)) for key, (a, b) in SIDES.items()}
    table3 = {c: get(t3, "residual", NETWORKS["aesc"], c) for c in TABLE_3_CORRUPTIONS}
    if all(v is not None for v in table3.values()):
        pairs.update({key: (table3[a], table3[b]) for key, (a, b) in _table_3_sides(table3).items()})
    return {
        k: check(STATEMENTS[k], a, b, PAPER_ROUNDING, kind)
        for k, (a, b) in pairs.items()
        if a is not None and b is not None
    }


def committed_aurocs(folder, runs, map_name: str = "residual", seed: int = 0) -> dict:
    """``{run: (image AUROC, pixel AUROC)}`` of seed ``seed`` of each committed run in ``folder`` (a run without its
    ``metrics.json`` is left out): the real numbers a page sets beside its own run's.

    Example: ``committed_aurocs("results/bottle", ["aesc-stain"], "uncertainty")`` is
    ``{"aesc-stain": (image AUROC, pixel AUROC)}`` of ``results/bottle/aesc-stain-s0``'s uncertainty map.
    """
    out = {}
    for run in runs:
        m = read_metrics(Path(folder) / f"{run}-s{seed}").get(map_name)
        if m:
            out[run] = (m["image_auroc"], m["pixel_auroc"])
    return out
