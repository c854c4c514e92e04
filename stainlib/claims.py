"""Claims as code: the sentence a reader sees about a result is chosen by a condition measured on the page (all
chapters; chapter 8, "Beyond the paper", states the rule).

A :class:`Claim` compares two numbers: ``ours`` (the side the claim says wins) against ``other``.  It **holds** when
the difference is larger than the noise, **fails** when it is smaller than minus the noise, and is **within the
noise** in between, whichever its sign.  :func:`run_claims` compares the mean over seeds of each side; the noise is
the larger seed spread (standard deviation over seeds) of the two sides where one has several seeds, else the
standard error of the difference of two AUROCs on this many test images (Hanley and McNeil's formula, the two errors
added in quadrature): a single run cannot tell a smaller difference from chance.

:func:`claim_markdown` writes the sentence; where the claim does not hold on the page's own runs it puts the real
MVTec AD evidence (:func:`bottle_claims`, from the committed ``results/bottle``) beside it.  :func:`paper_claims`
checks the same claims on the paper's own numbers, :func:`comparison_markdown` lays verdicts side by side and
:func:`summary_markdown` counts them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from .data import MVTEC_OBJECTS, MVTEC_TEXTURES, MVTecAD
from .paper import (
    AGAINST_THE_PAPER,
    NETWORKS,
    RUN_LABELS,
    SHORT,
    SIDES,
    STATEMENTS,
    TABLE_3_CORRUPTIONS,
    paper_numbers,
    run_label,
)
from .runs import read_config, read_metrics
from .spec import stored_settings
from .synthetic import is_synthetic_category
from .train import budget

__all__ = [
    "TABLE_1_2_CLAIMS",
    "TABLE_3_CLAIMS",
    "Claim",
    "auroc_se",
    "bottle_claims",
    "budget_text",
    "check",
    "claim_markdown",
    "comparison_markdown",
    "EvidenceRow",
    "PAPER_PROVENANCE",
    "evidence_box",
    "evidence_rows",
    "show_evidence",
    "committed_aurocs",
    "measured",
    "paper_claims",
    "run_claims",
    "run_where",
    "show",
    "summary_markdown",
]


def auroc_se(auroc: float, n_good: int, n_defective: int) -> float:
    """Standard error of an AUROC measured on ``n_good`` and ``n_defective`` images (Hanley and McNeil, 1982)."""
    if n_good < 1 or n_defective < 1:
        raise ValueError(f"an AUROC needs good and defective images, got {n_good} and {n_defective}")
    a = min(max(float(auroc), 1e-6), 1 - 1e-6)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_defective - 1) * (q1 - a * a) + (n_good - 1) * (q2 - a * a)) / (n_good * n_defective)
    return math.sqrt(max(var, 0.0))


@dataclass(frozen=True)
class Claim:
    """One comparison: ``ours`` should beat ``other`` by more than ``noise``."""

    statement: str
    ours: float
    other: float
    noise: float
    noise_kind: str

    @property
    def difference(self) -> float:
        return self.ours - self.other

    @property
    def verdict(self) -> str:
        """``"holds"`` (beyond the noise), ``"fails"`` (the other way, beyond the noise) or ``"within the noise"``.

        Symmetric: a difference the noise can explain is "within the noise" whichever its sign, so one pair of
        numbers never gives "not shown" one way and "does not hold" the other.  With no noise (0), the sign decides.
        """
        if self.difference > self.noise:
            return "holds"
        if self.difference < -self.noise or (self.noise == 0 and self.difference <= 0):
            return "fails"
        return "within the noise"

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"


def check(statement: str, ours: float, other: float, noise: float = 0.0, noise_kind: str = "") -> Claim:
    """The :class:`Claim` that ``ours`` beats ``other`` beyond ``noise``."""
    for name, value in (("ours", ours), ("other", other), ("noise", noise)):
        if value is None or not math.isfinite(float(value)):
            raise ValueError(f"claim {statement!r}: {name} must be a finite number, got {value!r}")
    if noise < 0:
        raise ValueError(f"claim {statement!r}: noise must be >= 0, got {noise}")
    return Claim(statement, float(ours), float(other), float(noise), noise_kind)


def single_run_noise(a: float, b: float, n_good: int, n_defective: int) -> tuple[float, str]:
    """The noise of a single-seed comparison of AUROCs ``a`` and ``b`` on the same test images, and its name."""
    se = math.hypot(auroc_se(a, n_good, n_defective), auroc_se(b, n_good, n_defective))
    return se, f"one standard error for {n_good} good and {n_defective} defective test images (one seed)"


def measured(key: str, ours: float, other: float, gt_label) -> Claim:
    """Claim ``key`` (see :data:`STATEMENTS`) on the page's own single-seed run, scored on ``gt_label``'s images."""
    n_def = int((gt_label == 1).sum())
    noise, kind = single_run_noise(ours, other, len(gt_label) - n_def, n_def)
    if "pixel" in STATEMENTS[key]:  # pixels of one image are not independent: the image counts set the scale
        kind += "; the image-level formula, a rough scale for a pixel AUROC"
    return check(STATEMENTS[key], ours, other, noise, kind)


def show(claim: Claim, where: str, evidence: dict | None = None, key: str | None = None) -> None:
    """Display the sentence of ``claim`` in the notebook, with the bottle evidence ``evidence["claims"][key]``."""
    from IPython.display import Markdown, display  # IPython: in a notebook only, not a dependency of stainlib

    ev = (evidence or {}).get("claims", {}).get(key) if evidence else None
    display(Markdown(claim_markdown(claim, where, ev, (evidence or {}).get("where", ""))))


_VERDICT_WORDS = {
    "holds": "holds",
    "within the noise": "is not shown: the difference is within the noise",
    "fails": "does not hold",
}


def _noise(claim: Claim) -> str:
    """The noise in words: its value and kind, or that there is no estimate (never "noise 0.000")."""
    if claim.noise == 0:
        return f"no noise estimate: {claim.noise_kind}" if claim.noise_kind else "no noise estimate"
    return f"noise {claim.noise:.3f}: {claim.noise_kind}"


def claim_markdown(claim: Claim, where: str, evidence: Claim | None = None, evidence_where: str = "") -> str:
    """The sentence about ``claim`` on ``where`` (Markdown), with ``evidence`` beside it when the claim does not hold.

    Every number is taken from the claims, none is typed by hand.
    """
    text = (
        f"**{claim.statement}** On {where}, this claim **{_VERDICT_WORDS[claim.verdict]}**: "
        f"{claim.ours:.3f} against {claim.other:.3f}, a difference of {claim.difference:+.3f}"
        f" ({_noise(claim)})."
    )
    if evidence is not None and not claim.holds:
        text += (
            f" On real data ({evidence_where}) it **{_VERDICT_WORDS[evidence.verdict]}**: "
            f"{evidence.ours:.3f} against {evidence.other:.3f}, a difference of {evidence.difference:+.3f}"
            f" ({_noise(evidence)})."
        )
    return text


_COUNT_WORDS = {
    "holds": ("holds", "hold"),
    "within the noise": ("is not shown", "are not shown"),
    "fails": ("does not hold", "do not hold"),
}


def summary_markdown(claims: dict, where: str, evidence: bool = False) -> str:
    """A plain count of the verdicts of ``claims`` (``{key: Claim}``) on ``where``, each group's claims listed.

    Written from the verdicts alone, so that a page never sums up its claims more kindly than its sentences do.
    ``evidence``: the sentences above it show the real MVTec AD result beside each claim that does not hold.
    """
    if not claims:
        return f"No claim could be checked on {where}."
    counts, lines = [], []
    for verdict, (one, many) in _COUNT_WORDS.items():
        names = [c.statement for c in claims.values() if c.verdict == verdict]
        if names:
            counts.append(f"{len(names)} {one if len(names) == 1 else many}")
            lines += [f"- {one}: *{n}*" for n in names]
    text = f"Of the {len(claims)} claims checked on {where}, " + ", ".join(counts) + ".\n\n" + "\n".join(lines)
    if evidence and any(not c.holds for c in claims.values()):
        text += (
            "\n\nFor each claim that does not hold here or is not shown, its sentence above gives the real MVTec AD "
            "result."
        )
    return text


def budget_text(budget: dict, batch_size: int) -> str:
    """A training budget in the units that compare across datasets: epochs, optimiser steps and images seen.

    ``budget`` is :func:`stainlib.train.budget`'s dict, or the one a run records in its ``config.json``: the one
    phrasing of a budget on every page and table.
    """
    b = budget
    per, n = b["samples_per_epoch"], b["n_train"]
    epoch = f"{per:,} images" if per == n else f"{per:,} images drawn from {n:,} training images"
    return (
        f"{b['epochs']} epoch{'s' if b['epochs'] != 1 else ''} of {epoch} in batches of {batch_size}: "
        f"{b['steps']:,} step{'s' if b['steps'] != 1 else ''}, {b['images_seen']:,} images seen"
    )


def bottle_claims(results) -> dict | None:
    """The paper's claims checked on the committed MVTec AD bottle runs in ``results`` (None where there are none).

    Returns ``{"where": str, "claims": {name: Claim}}``, as :func:`run_claims` does for ``results/bottle``.
    """
    folder = Path(results) / "bottle"
    if not (folder / "aesc-stain-s0" / "metrics.json").exists():
        return None
    return run_claims(folder)


def run_claims(folder, n_train: int | None = None) -> dict:
    """The paper's claims checked on the runs of one category, ``folder/<run>-s<seed>/metrics.json``.

    Returns ``{"where": str, "claims": {name: Claim}}``: each claim that the runs present allow.  Each side of a
    comparison is the mean over the seeds of its run (``stainlib sweep --grid claims --seeds 0 1 2`` trains them).
    With two seeds or more on a side, a claim's noise is the larger standard deviation over seeds of the two sides;
    with one seed on both, the standard error of the difference (:func:`single_run_noise`).  Table III's comparison
    and the combined map's use seed 0, the only seed those grids train.
    """
    folder = Path(folder)
    runs = [r for r in folder.iterdir() if r.is_dir()] if folder.is_dir() else []
    metrics = {r.name: read_metrics_or_empty(r) for r in runs}  # each metrics.json read once

    def value(run, method, key):
        return metrics.get(run, {}).get(method, {}).get(key)

    def seeds(run, method, key):
        vals = [value(f"{run}-s{s}", method, key) for s in range(10)]
        return [v for v in vals if v is not None]

    first = metrics.get("aesc-stain-s0", {}).get("residual", {})
    n_good, n_def = first.get("n_good", 0), first.get("n_defective", 0)

    def claim(key, a, b, compared=None):
        """``a``, ``b``: (run, method, metric), compared as means over seeds; or, to compare seed 0 alone, ``a`` is
        (value, (run, method, metric)), the run whose seeds give the noise, and ``b`` a value."""
        if a is None or b is None:
            return None
        one_seed = not isinstance(a[0], str)  # a seed-0 value, with the run whose seeds give the noise
        if one_seed:
            if a[0] is None or b is None:
                return None
            va, vb, spread = [a[0]], [b], [(seeds(*a[1]), a[1])]
        else:
            va, vb = seeds(*a), seeds(*b)
            if not va or not vb:
                return None
            spread = [(va, a), (vb, b)]
        mean_a, mean_b = statistics.mean(va), statistics.mean(vb)
        spread = [(v, what) for v, what in spread if len(v) > 1]
        if not spread:
            return check(STATEMENTS[key], mean_a, mean_b, *single_run_noise(mean_a, mean_b, n_good, n_def))
        vals, (run, method, metric) = max(spread, key=lambda item: statistics.stdev(item[0]))
        sd, n = statistics.stdev(vals), len(vals)
        of = f"{run_label(run)}'s {method} {metric.replace('_auroc', ' AUROC')}"
        if compared is not None:  # the one-seed comparison (the combined map) always says what it compares
            pass
        elif len(va) == len(vb):
            compared = f"means over {len(va)} seeds of each"
        else:

            def part(vals, run):
                return (
                    f"the mean of {len(vals)} seeds of {run_label(run)}"
                    if len(vals) > 1
                    else f"seed 0 of {run_label(run)}"
                )

            compared = f"{part(va, a[0])} against {part(vb, b[0])}"
        return check(
            STATEMENTS[key], mean_a, mean_b, sd, f"the standard deviation over {n} seeds of {of}; compared: {compared}"
        )

    res_i = ("residual", "image_auroc")
    stain = "aesc-stain"

    def side(network, corruption, method, level):
        return (f"{network}-{corruption}", method, f"{level}_auroc")

    claims = {key: claim(key, side(*a), side(*b)) for key, (a, b) in SIDES.items()}
    table3 = {c: seeds(f"aesc-{c}", *res_i) for c in TABLE_3_CORRUPTIONS}
    if all(table3.values()):  # against every other corruption, or not at all
        # Each corruption by the mean of the seeds it has: a Stain seed is never picked against the others' means.
        for key, (a, b) in _table_3_sides({c: statistics.mean(v) for c, v in table3.items()}).items():
            claims[key] = claim(key, side("aesc", a, "residual", "image"), side("aesc", b, "residual", "image"))
    comb = value("aesc-stain-s0", "combined", "image_auroc")
    claims["combined_wins_image"] = claim(
        "combined_wins_image",
        (comb, (stain, *res_i)),
        value("aesc-stain-s0", *res_i),
        compared="both from seed 0 of AESc + stain, the only seed scored with this map",
    )
    claims = {k: v for k, v in claims.items() if v is not None}
    where = folder.name
    if (folder / "aesc-stain-s0" / "config.json").exists():
        counts = {r: len(seeds(r, *res_i)) for r in RUN_LABELS}
        by_count: dict[int, list[str]] = {}
        for r, n in counts.items():
            if n > 1:
                by_count.setdefault(n, []).append(RUN_LABELS[r])
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


PAPER_ROUNDING = 0.01 + 1e-9
"""The noise of a difference of two of the paper's numbers: each is printed to two decimals (rounding: +-0.005), so
a difference of 0.01 shows nothing (the 1e-9 keeps 0.98 - 0.99 from falling just beyond it in floating point)."""


def paper_claims(category: str) -> dict:
    """The claims of :data:`STATEMENTS` on the paper's own numbers for the MVTec AD ``category`` (Tables I-III), or
    on their mean over the 15 categories (``category="mean"``, rounded to two decimals as the rows are).

    Returns ``{key: Claim}`` for every claim the paper's tables allow (none for a category they do not list).  The
    noise is :data:`PAPER_ROUNDING`: the paper prints two decimals, so a tie, or a difference of 0.01, shows nothing.
    """
    t1, t2, t3 = (paper_numbers(t) for t in ("I", "II", "III"))

    def get(table, method, network, corruption):
        if category != "mean":
            return table.get(("mvtec_ad", category, method, network, corruption))
        values = [table.get(("mvtec_ad", c, method, network, corruption)) for c in MVTEC_TEXTURES + MVTEC_OBJECTS]
        return None if None in values else round(statistics.mean(values), 2)  # printed to two decimals, as the rows

    def number(network, corruption, method, level):
        table = t1 if level == "image" else t2  # Table I: image AUROC, Table II: pixel AUROC
        return get(table, method, NETWORKS[network], corruption)

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


def comparison_markdown(columns: dict) -> str:
    """A table of the claims that every one of ``columns`` (``{name: {key: Claim}}``) checks: verdicts and numbers."""

    def cell(c):
        return f"{_VERDICT_WORDS[c.verdict].split(':')[0]} ({c.ours:.2f} vs {c.other:.2f})"

    keys = [k for k in STATEMENTS if all(k in claims for claims in columns.values())]
    rows = ["| claim | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    rows += [f"| {SHORT[k]} | " + " | ".join(cell(c[k]) for c in columns.values()) + " |" for k in keys]
    return "\n".join(rows)


def device_words(device: str) -> str:
    """``"the CPU"`` or ``"a GPU (cuda:0)"``: a device as a sentence names it."""
    return "the CPU" if str(device).startswith("cpu") else f"a GPU ({device})"


def run_where(run, n_train: int | None = None, per_run: bool = False) -> str:
    """What a committed or trained run is, in words, from its own files: data, size, budget, device (and seed).

    ``per_run`` describes the budget shared by the runs of a folder (no seed); otherwise the run's seed is named.
    """
    run = Path(run)
    config = read_config(run)
    s = stored_settings(config)
    b = config.get("budget")  # recorded by the trainer
    if b is None or n_train is not None:  # a run made before budgets were recorded, or a count given: compute it
        if n_train is None:
            n_train = len(MVTecAD(s["data_root"], s["category"], "train", size=s["image_size"]))
        b = budget(n_train, 0, s["epochs"], s["batch_size"], s.get("samples_per_epoch"))
    device = read_metrics_or_empty(run).get("residual", {}).get("device")
    kind = "synthetic" if is_synthetic_category(s["category"]) else "MVTec AD"
    return (
        f"{kind} `{s['category']}`, {s['image_size']} px {s['color']}, "
        f"{budget_text(b, s['batch_size'])}"
        + (" per run" if per_run else f", seed {s['seed']}")
        + (f", `{s['decoder']}` decoder" if s.get("decoder", "paper") != "paper" else ", the paper's decoder")
        + (f", trained on {device_words(device)}" if device else "")
    )


def read_metrics_or_empty(run: Path) -> dict:
    return read_metrics(run) if (run / "metrics.json").exists() else {}


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


# --- The evidence box: one per chapter ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceRow:
    """One row of a chapter's evidence box: a claim, checked on the paper's numbers, on the committed real MVTec AD
    bottle runs and on the page's own run (each a :class:`Claim`, or None where that source does not check it)."""

    label: str
    paper: Claim | None = None
    bottle: Claim | None = None
    live: Claim | None = None
    own: bool = False  # the book's own claim, not the paper's
    against: bool = False  # the claim runs against the paper's text (paper.AGAINST_THE_PAPER)


def evidence_rows(keys, paper=None, bottle=None, live=None, own=()) -> list[EvidenceRow]:
    """The rows of :data:`STATEMENTS`' ``keys`` (in that order), each side looked up in its ``{key: Claim}`` dict;
    a key that no side checks is left out.  ``own``: the keys that are the book's claims, not the paper's."""
    rows = []
    for key in keys:
        sides = [(d or {}).get(key) for d in (paper, bottle, live)]
        if any(c is not None for c in sides):
            rows.append(EvidenceRow(SHORT.get(key, key), *sides, own=key in own, against=key in AGAINST_THE_PAPER))
    return rows


_CELL_WORDS = {"holds": "holds", "within the noise": "within the noise", "fails": "fails"}


def _cell(claim: Claim | None, notes: list, digits: int = 3) -> str:
    """A claim in a table cell: both numbers, the difference against its noise, the verdict; the noise's kind becomes
    a numbered note (``notes``, shared by the box, so that each kind is written once)."""
    if claim is None:
        return "—"
    kind = claim.noise_kind or "no noise estimate"
    if kind not in notes:
        notes.append(kind)
    noise = f"noise {claim.noise:.{digits}f}" if claim.noise else "no noise estimate"
    return (
        f"{claim.ours:.{digits}f} vs {claim.other:.{digits}f} ({claim.difference:+.{digits}f}; {noise} "
        f"[{notes.index(kind) + 1}]): **{_CELL_WORDS[claim.verdict]}**"
    )


def _row_verdict(row: EvidenceRow) -> str:
    """The verdict column: does the claim reproduce, on the real bottle runs where they check it, else on this run."""
    basis = [(name, c) for name, c in (("real bottle", row.bottle), ("this page's data", row.live)) if c is not None]
    if not basis:
        return "not checked"
    name, c = basis[0]
    if row.own:
        words = {"holds": "holds", "within the noise": "not shown (within the noise)", "fails": "does not hold"}
        text = f"the book's own claim: **{words[c.verdict]}** on {name}"
    elif row.against:
        words = {
            "holds": "the paper's text contradicted",
            "within the noise": "the paper's text agreed with (within the noise)",
            "fails": "the paper's text contradicted, the other way",
        }
        text = f"**{words[c.verdict]}** on {name}"
    else:
        words = {
            "holds": "reproduced",
            "within the noise": "not reproduced (within the noise)",
            "fails": "contradicted",
        }
        text = f"**{words[c.verdict]}** on {name}"
        if row.paper is not None and not row.paper.holds:
            text += "; the paper's own bottle numbers do not show it"
    if len(basis) > 1 and basis[1][1].verdict != c.verdict:
        text += f"; on this page's data: {_CELL_WORDS[basis[1][1].verdict]}"
    return text


def evidence_box(
    rows,
    provenance: dict,
    notes=(),
    live_name: str = "this page's run",
    title: str = "Does it reproduce?",
) -> str:
    """A chapter's one evidence box (MyST Markdown: a collapsed admonition): one table, claim | the paper | ours on
    real bottle | ours on ``live_name`` | verdict, then the noise of each comparison, the provenance of each source
    stated once (``provenance``: ``{source: words}``) and any ``notes`` (computed sentences).

    Every number comes from the :class:`Claim` objects of ``rows`` (:class:`EvidenceRow`); nothing is typed.
    """
    kinds: list = []
    lines = [
        f"| claim | the paper | ours on real bottle | ours on {live_name} | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        paper = _cell(r.paper, kinds, 2) if r.paper is not None else ("— (the book's own)" if r.own else "—")
        lines.append(f"| {r.label} | {paper} | {_cell(r.bottle, kinds)} | {_cell(r.live, kinds)} | {_row_verdict(r)} |")
    if not rows:
        lines = ["No claim could be checked here."]
    body = "\n".join(lines)
    body += (
        "\n\nEach cell: the side the claim says wins, against the other side, their difference and its noise; a claim "
        "**holds** only when the difference is larger than its noise, **fails** when it is smaller than minus the "
        "noise, and is **within the noise** in between."
    )
    if kinds:
        body += "\n\n**Noise.** " + " ".join(f"[{i}] {k}." for i, k in enumerate(kinds, 1))
    if provenance:
        body += "\n\n**Provenance.**\n\n" + "\n".join(f"- *{src}*: {words}" for src, words in provenance.items())
    for note in notes:
        if note:
            body += f"\n\n{note}"
    return f"````{{admonition}} {title}\n:class: dropdown tip\n\n{body}\n````"


PAPER_PROVENANCE = (
    "the paper's Tables I-III (Collin and De Vleeschouwer, 2020), MVTec AD `bottle` row, 256 px, its authors' "
    "budget, printed to two decimals: a difference of 0.01 or less shows nothing"
)
"""What the paper's column of an evidence box is, in words."""


def show_evidence(rows, provenance: dict, notes=(), live_name: str = "this page's run") -> None:
    """Display :func:`evidence_box` in the notebook (the cell that calls it is hidden on the page)."""
    from IPython.display import Markdown, display

    display(Markdown(evidence_box(rows, provenance, notes, live_name)))


def committed_aurocs(folder, runs, method: str = "residual", seed: int = 0) -> dict:
    """``{run: (image AUROC, pixel AUROC)}`` of seed ``seed`` of each committed run in ``folder`` (a run without its
    ``metrics.json`` is left out): the real numbers a page sets beside its own run's."""
    out = {}
    for run in runs:
        m = read_metrics_or_empty(Path(folder) / f"{run}-s{seed}").get(method)
        if m:
            out[run] = (m["image_auroc"], m["pixel_auroc"])
    return out
