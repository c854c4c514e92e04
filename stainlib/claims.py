"""A claim and its verdict: one number against another, beyond their spread (book chapter 8, "Beyond the paper",
states the rule; chapter 3 measures the spread of an AUROC).

A :class:`Claim` compares two numbers: ``ours`` (the side the claim says wins) against ``other``.  It **holds** when
the difference is larger than the spread, **fails** when it is smaller than minus the spread, and is **within the
spread** in between, whichever its sign.  The spread of a single-seed comparison of two AUROCs is the standard error
of their difference on that many test images (Hanley and McNeil's formula, the two errors added in quadrature,
:func:`single_run_spread`): a single run cannot tell a smaller difference from chance.  Where the sides were measured
with several seeds, the spread is the larger of their seed standard deviation and that standard error
(:func:`comparison_spread`): seeds that happen to agree do not make the test set larger.

Pure statistics: nothing here reads a file.  :mod:`stainlib.collect` checks the paper's claims on runs and on the
paper's numbers; :mod:`stainlib.evidence` lays the verdicts out for a page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Claim", "auroc_se", "check", "comparison_spread", "seed_spread", "single_run_spread"]


def auroc_se(auroc: float, n_good: int, n_defective: int) -> float:
    """Standard error of an AUROC measured on ``n_good`` and ``n_defective`` images (Hanley and McNeil, 1982).

    Example: ``auroc_se(0.9, 20, 63)`` is about 0.033, so two such AUROCs 0.05 apart are within one standard error
    of their difference (``math.hypot`` of the two).
    """
    if n_good < 1 or n_defective < 1:
        raise ValueError(f"an AUROC needs good and defective images, got {n_good} and {n_defective}")
    a = min(max(float(auroc), 1e-6), 1 - 1e-6)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_defective - 1) * (q1 - a * a) + (n_good - 1) * (q2 - a * a)) / (n_good * n_defective)
    return math.sqrt(max(var, 0.0))


@dataclass(frozen=True)
class Claim:
    """One comparison: ``ours`` should beat ``other`` by more than ``spread``, a statistical error named by
    ``spread_kind`` (a seed spread, a standard error, the paper's rounding)."""

    statement: str
    ours: float
    other: float
    spread: float
    spread_kind: str

    @property
    def difference(self) -> float:
        """``ours - other``: positive when the claimed side wins."""
        return self.ours - self.other

    @property
    def verdict(self) -> str:
        """``"holds"`` (beyond the spread), ``"fails"`` (the other way, beyond the spread) or ``"within the spread"``.

        Symmetric: a difference the spread can explain is "within the spread" whichever its sign, so one pair of
        numbers never gives "not shown" one way and "does not hold" the other.  With no spread (0), the sign decides.
        """
        if self.difference > self.spread:
            return "holds"
        if self.difference < -self.spread or (self.spread == 0 and self.difference <= 0):
            return "fails"
        return "within the spread"

    @property
    def holds(self) -> bool:
        """Whether :attr:`verdict` is ``"holds"``."""
        return self.verdict == "holds"


def check(statement: str, ours: float, other: float, spread: float = 0.0, spread_kind: str = "") -> Claim:
    """The :class:`Claim` that ``ours`` beats ``other`` beyond ``spread``.

    Args:
        statement: the claim in words.
        ours, other: the side the claim says wins, and the other side (finite numbers).
        spread: the statistical error of the difference (>= 0; 0: the sign decides).
        spread_kind: what the spread is, in words.

    Returns:
        The :class:`Claim`; ``check("s", 0.9, 0.8, 0.05).verdict == "holds"``.

    Raises:
        ValueError: a side or the spread is not a finite number, or the spread is negative.
    """
    for name, value in (("ours", ours), ("other", other), ("spread", spread)):
        if value is None or not math.isfinite(float(value)):
            raise ValueError(f"claim {statement!r}: {name} must be a finite number, got {value!r}")
    if spread < 0:
        raise ValueError(f"claim {statement!r}: spread must be >= 0, got {spread}")
    return Claim(statement, float(ours), float(other), float(spread), spread_kind)


def seed_spread(sides: list) -> tuple[float, int] | None:
    """The spread of a comparison whose sides were measured with several seeds: the larger standard deviation over
    seeds of the sides that have more than one, and which side it is.

    Args:
        sides: each side's values, one per seed (e.g. ``[[0.8, 0.9, 1.0], [0.6]]``).

    Returns:
        ``(standard deviation, index of its side)``, e.g. ``(0.1, 0)`` for the example; ``None`` where every side has
        one value (then :func:`single_run_spread` is the spread).
    """
    import statistics

    several = [(statistics.stdev(v), i) for i, v in enumerate(sides) if len(v) > 1]
    return max(several, key=lambda found: found[0]) if several else None  # the first side of a tie


def single_run_spread(a: float, b: float, n_good: int, n_defective: int) -> tuple[float, str]:
    """The spread of a single-seed comparison of AUROCs ``a`` and ``b`` on the same test images, and its name.

    Args:
        a, b: the two AUROCs.
        n_good, n_defective: the test images they were measured on.

    Returns:
        ``(standard error of a - b, its kind in words)``, ready for :func:`check`'s last two arguments.
    """
    se = math.hypot(auroc_se(a, n_good, n_defective), auroc_se(b, n_good, n_defective))
    kind = f"the two AUROCs' standard errors in quadrature, for {n_good} good and {n_defective} defective test images"
    return se, kind + " (one seed)"


def comparison_spread(
    a: float,
    b: float,
    n_good: int,
    n_defective: int,
    seed_sides: list = (),
    names: list = (),
    pixel: bool = False,
    compared: str = "",
) -> tuple[float, str]:
    """The spread of a comparison of AUROCs ``a`` and ``b``, each one seed's value or a mean over seeds.

    It is :func:`single_run_spread` of ``a`` and ``b``, unless a side in ``seed_sides`` has several seeds and their
    standard deviation (:func:`seed_spread`) is larger.  The standard error is a floor: two or three seeds that happen
    to agree (a seed sd of 0.001) would otherwise call a difference of 0.002 real, though each AUROC is measured on
    only ``n_good + n_defective`` test images.

    Args:
        a, b: the two AUROCs compared.
        n_good, n_defective: the test images they were measured on.
        seed_sides: the values, one per seed, of the sides whose seed spread counts (e.g. ``[[0.95, 0.95], [0.9]]``).
        names: those sides in words, for the spread's kind (default ``"side 1"``, ``"side 2"``, ...).
        pixel: the AUROCs are pixel AUROCs.  The pixels of one image are not independent, so the image counts set
            the standard error's scale (the image-level formula, a rough scale); the kind says so where it is used.
        compared: which values were compared (e.g. ``"means over 3 seeds of each"``), added to the kind where a side
            has several seeds.

    Returns:
        ``(spread, its kind in words)``, ready for :func:`check`'s last two arguments.  The kind says which of the
        two was larger; it holds ``"(one seed)"`` where no side has several seeds.
    """
    se, se_kind = single_run_spread(a, b, n_good, n_defective)
    rough = "; the image-level formula, a rough scale for a pixel AUROC" if pixel else ""
    found = seed_spread(list(seed_sides))
    if found is None:
        return se, se_kind + rough
    sd, i = found
    side = names[i] if i < len(names) else f"side {i + 1}"
    seeds = f"the standard deviation over {len(seed_sides[i])} seeds of {side}"
    error = (
        f"the standard error of the difference (the two AUROCs' standard errors in quadrature, for {n_good} good and "
        f"{n_defective} defective test images)"
    )
    tail = f"; compared: {compared}" if compared else ""
    if sd >= se:
        return sd, f"{seeds}, larger than {error}{tail}"
    return se, f"{error}, larger than {seeds}{rough}{tail}"
