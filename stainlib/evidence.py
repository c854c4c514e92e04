"""A chapter's one evidence box: each claim checked on the paper's numbers, on the committed real bottle runs and on
the page's own run, in one table with its verdict (all chapters; chapter 8, "Beyond the paper", states the rule).

:func:`evidence_rows` gathers the :class:`~stainlib.claims.Claim` objects of each source into rows
(:class:`EvidenceRow`), :func:`evidence_box` writes them as a collapsed MyST admonition, and :func:`show_evidence`
displays it in a notebook.  Every number comes from the claims; nothing is typed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .claims import Claim
from .paper import AGAINST_THE_PAPER, SHORT

__all__ = ["PAPER_PROVENANCE", "EvidenceRow", "evidence_box", "evidence_rows", "show_evidence"]

PAPER_PROVENANCE = (
    "the paper's Tables I-III (Collin and De Vleeschouwer, 2021), MVTec AD `bottle` row, 256 px, its authors' "
    "budget, printed to two decimals: a difference of 0.01 or less shows nothing"
)
"""What the paper's column of an evidence box is, in words."""


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
    """The rows of :data:`stainlib.paper.STATEMENTS`' ``keys`` (in that order), each side looked up in its
    ``{key: Claim}`` dict; a key that no side checks is left out.  ``own``: the keys that are the book's claims, not
    the paper's."""
    rows = []
    for key in keys:
        sides = [(d or {}).get(key) for d in (paper, bottle, live)]
        if any(c is not None for c in sides):
            rows.append(EvidenceRow(SHORT.get(key, key), *sides, own=key in own, against=key in AGAINST_THE_PAPER))
    return rows


def _cell(claim: Claim | None, kinds: list, digits: int = 3) -> str:
    """A claim in a table cell: both numbers, the difference against its spread, the verdict; the spread's kind
    becomes a numbered note (``kinds``, shared by the box, so that each kind is written once)."""
    if claim is None:
        return "—"
    kind = claim.spread_kind or "no spread estimate"
    if kind not in kinds:
        kinds.append(kind)
    spread = f"spread {claim.spread:.{digits}f}" if claim.spread else "no spread estimate"
    return (
        f"{claim.ours:.{digits}f} vs {claim.other:.{digits}f} ({claim.difference:+.{digits}f}; {spread} "
        f"[{kinds.index(kind) + 1}]): **{claim.verdict}**"
    )


_OWN_WORDS = {"holds": "holds", "within the spread": "not shown (within the spread)", "fails": "does not hold"}
_AGAINST_WORDS = {
    "holds": "the paper's text contradicted",
    "within the spread": "the paper's text agreed with (within the spread)",
    "fails": "the paper's text contradicted, the other way",
}
_PAPER_WORDS = {
    "holds": "reproduced",
    "within the spread": "not reproduced (within the spread)",
    "fails": "contradicted",
}


def _row_verdict(row: EvidenceRow) -> str:
    """The verdict column: does the claim reproduce, on the real bottle runs where they check it, else on this run."""
    basis = [(name, c) for name, c in (("real bottle", row.bottle), ("this page's data", row.live)) if c is not None]
    if not basis:
        return "not checked"
    name, c = basis[0]
    if row.own:
        text = f"the book's own claim: **{_OWN_WORDS[c.verdict]}** on {name}"
    elif row.against:
        text = f"**{_AGAINST_WORDS[c.verdict]}** on {name}"
    else:
        text = f"**{_PAPER_WORDS[c.verdict]}** on {name}"
        if row.paper is not None and not row.paper.holds:
            text += "; the paper's own bottle numbers do not show it"
    if len(basis) > 1 and basis[1][1].verdict != c.verdict:
        text += f"; on this page's data: {basis[1][1].verdict}"
    return text


def evidence_box(
    rows,
    provenance: dict,
    notes=(),
    live_name: str = "this page's run",
    title: str = "Does it reproduce?",
) -> str:
    """A chapter's one evidence box (MyST Markdown: a collapsed admonition): one table, claim | the paper | ours on
    real bottle | ours on ``live_name`` | verdict, then the spread of each comparison, the provenance of each source
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
        "\n\nEach cell: the side the claim says wins, against the other side, their difference and its spread; a claim "
        "**holds** only when the difference is larger than its spread, **fails** when it is smaller than minus the "
        "spread, and is **within the spread** in between."
    )
    if kinds:
        body += "\n\n**Spread.** " + " ".join(f"[{i}] {k}." for i, k in enumerate(kinds, 1))
    if provenance:
        body += "\n\n**Provenance.**\n\n" + "\n".join(f"- *{src}*: {words}" for src, words in provenance.items())
    for note in notes:
        if note:
            body += f"\n\n{note}"
    return f"````{{admonition}} {title}\n:class: dropdown tip\n\n{body}\n````"


def show_evidence(rows, provenance: dict, notes=(), live_name: str = "this page's run") -> None:
    """Display :func:`evidence_box` in the notebook (the cell that calls it is hidden on the page)."""
    from IPython.display import Markdown, display  # IPython: in a notebook only, not a dependency of stainlib

    display(Markdown(evidence_box(rows, provenance, notes, live_name)))
