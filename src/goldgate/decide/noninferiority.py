"""Check (b) of the swap rule: is the student shown non-inferior to the LLM on the same cases?

The interval is Tango's score interval for a difference of paired proportions (Tango 1998, Stat Med
17:891): it inverts the score test that constrains the discordant-cell probabilities to the null,
so the interval and the test always agree and it stays honest with few discordant pairs (the Wald
interval does not). The score test is asymptotic and runs a hair liberal (exact size just above 5 %
at −δ with independent errors), so the observed difference gives up half a discordant pair
(`CONTINUITY`): the exact size is then ≤ 5 % everywhere bench/bench_decision_oc.py looks. Cases whose call failed in transport never reach a `Pair`: they say nothing
about either model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

__all__ = [
    "CONTINUITY",
    "METHOD",
    "Z_ONE_SIDED_95",
    "Pair",
    "counts",
    "noninferior",
    "noninferiority",
    "phi",
    "tango_lower_bound",
    "tango_z",
]

Z_ONE_SIDED_95 = 1.6448536269514722
CONTINUITY = 0.5
METHOD = "Tango score interval for paired proportions (one-sided 95%, continuity-corrected by ½ pair)"


@dataclass(frozen=True, slots=True)
class Pair:
    """One test case answered by both sides; an unusable answer (output error) counts as wrong."""

    case_id: str
    label: str
    llm_ok: bool
    student_ok: bool


def phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2))


def tango_z(b: int, c: int, n: int, d: float, correction: float = 0.0) -> float:
    """Score statistic for H0: p10 − p01 = d, where b = #(student right, LLM wrong), c = the reverse;
    `correction` pairs are taken off b − c (towards the null of a one-sided "greater" test)."""
    if n == 0:
        return 0.0
    theta = (b - c - correction) / n
    # Restricted MLE of p01 under the null: root of 2n x² + B x + C = 0 (Tango 1998, eq. 3).
    big_b = -(b + c) + d * (2 * n - b + c)
    big_c = -c * d * (1 - d)
    x = (-big_b + math.sqrt(max(0.0, big_b * big_b - 8 * n * big_c))) / (4 * n)
    var = (2 * x + d - d * d) / n
    if var <= 0:
        return 0.0 if math.isclose(theta, d, abs_tol=1e-12) else math.copysign(math.inf, theta - d)
    return (theta - d) / math.sqrt(var)


def tango_lower_bound(b: int, c: int, n: int, z: float = Z_ONE_SIDED_95, correction: float = CONTINUITY) -> float:
    """The smallest d not rejected by the one-sided score test at level z (bisection; Z falls as d rises)."""
    if n == 0:
        return -1.0
    lo, hi = -1.0 + 1e-12, max(-1.0 + 1e-12, (b - c - correction) / n)
    if tango_z(b, c, n, lo, correction) <= z:
        return -1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if tango_z(b, c, n, mid, correction) > z:
            lo = mid
        else:
            hi = mid
    return lo


def noninferior(b: int, c: int, n: int, delta: float, z: float = Z_ONE_SIDED_95,
                correction: float = CONTINUITY) -> bool:
    """The verdict of (b) from the discordant counts alone: the score test rejects "worse by δ or more".
    Equivalent to `tango_lower_bound(b, c, n) > −δ` (the bound inverts this test) without the bisection,
    so the exact operating characteristic can evaluate it for every possible outcome."""
    return n > 0 and tango_z(b, c, n, -delta, correction) > z


def counts(pairs: Sequence[Pair]) -> tuple[int, int, int]:
    """(n, b, c): pairs, student-only right, LLM-only right."""
    b = sum(p.student_ok and not p.llm_ok for p in pairs)
    c = sum(p.llm_ok and not p.student_ok for p in pairs)
    return len(pairs), b, c


def noninferiority(pairs: Sequence[Pair], delta: float, alpha: float) -> dict[str, Any]:
    """Check (b) at one-sided level alpha (what the decision log of the test split allows)."""
    n, b, c = counts(pairs)
    acc_llm = sum(p.llm_ok for p in pairs) / n if n else 0.0
    acc_student = sum(p.student_ok for p in pairs) / n if n else 0.0
    z = NormalDist().inv_cdf(1 - alpha)
    lower = tango_lower_bound(b, c, n, z)
    return {
        "n": n,
        "student_better": b,
        "llm_better": c,
        "accuracy_llm": acc_llm,
        "accuracy_student": acc_student,
        "difference": acc_student - acc_llm,
        "lower_95": tango_lower_bound(b, c, n),
        "lower_bound": lower,
        "alpha": alpha,
        "delta": delta,
        "p_value": 1 - phi(tango_z(b, c, n, -delta, CONTINUITY)),
        "method": METHOD,
        "non_inferior": noninferior(b, c, n, delta, z),
        "beats": lower > 0,
    }
