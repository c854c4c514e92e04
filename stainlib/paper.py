"""The paper's experiment, defined once: its grids of runs, its tables' columns, its networks' names, its claims and
its published numbers (book chapters 6, 7 and 8).

* the grids: :data:`TABLE_1_2_GRID` (AE and AESc, each trained with none and with stain, each scored by the residual
  and the uncertainty), :data:`TABLE_3_CORRUPTIONS` (AESc trained with each corruption, in the paper's column order,
  scored by the residual) and :data:`CLAIMS_GRID` (the three runs that the claims of Tables I-II compare, to be
  trained with several seeds), each by name in :data:`GRIDS`, which :func:`stainlib.sweep.sweep` runs;
* the tables: :data:`TABLE_COLUMNS`, which :func:`stainlib.tables.make_table` lays out, with the networks' display
  names :data:`NETWORKS`;
* the claims: the two sides of each claim of Tables I-II (:data:`SIDES`), the claims in words (:data:`STATEMENTS`,
  :data:`SHORT`) and the runs they compare (:data:`RUN_LABELS`), which :mod:`stainlib.collect` checks;
* the paper's numbers: :func:`paper_numbers` reads ``stainlib/paper_tables.csv`` (the paper's per-category AUROCs,
  transcribed from its Tables I-III), package data that an installed ``stainlib`` carries with it.
"""

from __future__ import annotations

import csv
from importlib.resources import files

__all__ = [
    "CLAIMS_GRID",
    "GRIDS",
    "NETWORKS",
    "RUN_LABELS",
    "SHORT",
    "SIDES",
    "STATEMENTS",
    "TABLE_1_2_GRID",
    "TABLE_3_CORRUPTIONS",
    "TABLE_COLUMNS",
    "paper_numbers",
    "run_label",
]

NETWORKS = {"ae": "AE", "aesc": "AESc"}
"""Each network (a key of :data:`stainlib.models.MODELS`) by the name the paper and the tables give it."""

TABLE_1_2_GRID = [(m, c, ("residual", "uncertainty")) for m in ("ae", "aesc") for c in ("none", "stain")]
TABLE_3_CORRUPTIONS = (
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
"""The corruptions of Table III, in the paper's column order."""
CLAIMS_GRID = [
    ("aesc", "none", ("residual",)),
    ("aesc", "stain", ("residual", "uncertainty")),
    ("ae", "none", ("residual",)),
]
"""The runs that the claims of Tables I-II compare (:func:`stainlib.collect.run_claims`): a seed study of them is
``stainlib sweep --grid claims --seeds 0 1 2``."""
GRIDS = {
    "claims": CLAIMS_GRID,
    "table1": TABLE_1_2_GRID,
    "table2": TABLE_1_2_GRID,
    "table3": [("aesc", c, ("residual",)) for c in TABLE_3_CORRUPTIONS],
}
"""Each grid: (model, corruption, evaluation methods) per run, for every category and seed."""

# Columns of Tables I and II (as the paper orders them): method, network, training corruption.
_COLUMNS_1_2 = [(meth, NETWORKS[m], c) for meth in ("uncertainty", "residual") for m, c, _ in TABLE_1_2_GRID]
TABLE_COLUMNS = {
    "I": ("image_auroc", _COLUMNS_1_2),
    "II": ("pixel_auroc", _COLUMNS_1_2),
    "III": ("image_auroc", [("residual", NETWORKS["aesc"], c) for c in TABLE_3_CORRUPTIONS]),
}
"""Each table: its metric and its columns (method, network, training corruption)."""


def run_label(run: str) -> str:
    """``"aesc-gaussian-0.1"`` as the tables name it: ``"AESc + gaussian-0.1"``."""
    model, corruption = run.split("-", 1)
    return f"{NETWORKS[model]} + {corruption}"


RUN_LABELS = {run: run_label(run) for run in ("aesc-stain", "aesc-none", "ae-none")}
"""The runs that the claims of Tables I-II compare, by folder prefix, as the tables name them."""


SIDES = {
    "stain_beats_none_image": (("aesc", "stain", "residual", "image"), ("aesc", "none", "residual", "image")),
    "stain_beats_none_pixel": (("aesc", "stain", "residual", "pixel"), ("aesc", "none", "residual", "pixel")),
    "stain_beats_ae_image": (("aesc", "stain", "residual", "image"), ("ae", "none", "residual", "image")),
    "residual_wins_image": (("aesc", "stain", "residual", "image"), ("aesc", "stain", "uncertainty", "image")),
    "uncertainty_wins_pixel": (("aesc", "stain", "uncertainty", "pixel"), ("aesc", "stain", "residual", "pixel")),
}
"""The two sides of each claim of Tables I-II: (network, corruption, map, level), the winner first.  Our runs
(:func:`stainlib.collect.run_claims`) and the paper's numbers (:func:`stainlib.collect.paper_claims`) are read through
the same definitions."""


STATEMENTS = {
    "stain_beats_none_image": "AESc + Stain detects defective images better than AESc without corruption.",
    "stain_beats_none_pixel": "AESc + Stain locates defects better than AESc without corruption (pixel AUROC).",
    "stain_beats_ae_image": "AESc + Stain detects defective images better than AE without corruption (Table I).",
    "residual_wins_image": "The residual is the better image-level detector (AESc + Stain, image AUROC).",
    "uncertainty_wins_pixel": "The uncertainty is the better pixel-level detector (AESc + Stain, pixel AUROC).",
    "stain_best": (
        "The Stain is the best corruption of Table III (AESc, residual, image AUROC, against the best other one)."
    ),
    "gaussian_beats_none": (
        "Gaussian noise, at its best level, beats no corruption (AESc, residual, image AUROC). The paper's text "
        "reports almost no difference over the dataset."
    ),
    "stain_beats_gaussian": (
        "The Stain beats Gaussian noise at its best level (AESc, residual, image AUROC), as the paper finds for the "
        "shape-based corruptions."
    ),
    "combined_wins_image": "The combined map beats the residual at the image level (AESc + Stain).",
}
"""The claims the chapters check, in words: the paper's three and the combined map's."""

SHORT = {
    "stain_beats_none_image": "AESc + Stain > AESc + none, image",
    "stain_beats_none_pixel": "AESc + Stain > AESc + none, pixel",
    "stain_beats_ae_image": "AESc + Stain > AE + none, image",
    "residual_wins_image": "residual > uncertainty, image",
    "uncertainty_wins_pixel": "uncertainty > residual, pixel",
    "stain_best": "Stain > best other corruption",
    "gaussian_beats_none": "best Gaussian > none (the paper's text: almost no difference)",
    "stain_beats_gaussian": "Stain > best Gaussian",
    "combined_wins_image": "combined > residual, image",
}
"""Each claim of :data:`STATEMENTS` in a few words, for tables."""

AGAINST_THE_PAPER = frozenset({"gaussian_beats_none"})
"""Claims of :data:`STATEMENTS` that run against the paper's text: where one holds, the data contradict the paper."""


def paper_numbers(table: str) -> dict:
    """The paper's AUROCs of Table ``table`` (``"I"``, ``"II"`` or ``"III"``), from the package's
    ``paper_tables.csv``: ``{(dataset, category, method, network, corruption): auroc}``.

    Keyed by dataset *and* category, so that a synthetic ``wood`` is never compared with MVTec AD's ``wood``.
    """
    out = {}
    text = files(__package__).joinpath("paper_tables.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines()):
        if row["table"] == table:
            key = (row["dataset"], row["category"], row["method"], row["network"], row["corruption"])
            out[key] = float(row["auroc"])
    return out
