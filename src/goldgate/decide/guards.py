"""Check (d) of the swap rule, the per-class recall guard, and Holm's step-down procedure.

The guard flags a class whose recall loss is both significant and large: the one-sided score test
of "this class loses no recall" rejects after Holm over the classes tested (family-wise α = 0.10),
and the observed loss exceeds δ. Testing "loses more than δ" instead (the first design) left the
guard nearly blind: at 100 cases a class had to lose ~15 points to be caught after Holm. Exact
rates at 10 classes of 100 cases are in tests/test_decision.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from goldgate.decide.noninferiority import Pair, counts, phi, tango_z

__all__ = ["CLASS_ALPHA", "class_loss_p", "class_recall_guard", "holm"]

CLASS_ALPHA = 0.10


def class_loss_p(b: int, c: int, n: int) -> float:
    """One-sided p-value of "the student loses no recall on this class" (b, c as in `tango_z`)."""
    return phi(tango_z(b, c, n, 0.0))


def holm(pvalues: dict[str, float], alpha: float) -> set[str]:
    """Keys whose null is rejected by Holm's step-down procedure at family-wise level alpha."""
    rejected: set[str] = set()
    ordered = sorted(pvalues.items(), key=lambda kv: kv[1])
    for i, (key, p) in enumerate(ordered):
        if p > alpha / (len(ordered) - i):
            break
        rejected.add(key)
    return rejected


def class_recall_guard(pairs: Sequence[Pair], delta: float, *, min_cases: int = 30,
                       alpha: float = CLASS_ALPHA) -> dict[str, Any]:
    """Per class with ≥ min_cases: is its recall loss significant (Holm over the classes tested, at
    family-wise `alpha`) and larger than δ? The guard fails when any class is both."""
    by_class: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_class[p.label].append(p)
    rows, pvals = [], {}
    for label, group in sorted(by_class.items()):
        n, b, c = counts(group)
        if n < min_cases:
            continue
        pvals[label] = class_loss_p(b, c, n)
        rows.append({"label": label, "n": n, "recall_llm": sum(p.llm_ok for p in group) / n,
                     "recall_student": sum(p.student_ok for p in group) / n, "difference": (b - c) / n,
                     "p_value": pvals[label]})
    significant = holm(pvals, alpha)
    for r in rows:
        r["loses_more_than_delta"] = r["label"] in significant and r["difference"] < -delta
    failing = sorted(r["label"] for r in rows if r["loses_more_than_delta"])
    return {
        "pass": not failing,
        "tested_classes": len(rows),
        "skipped_classes": len(by_class) - len(rows),
        "min_cases": min_cases,
        "alpha": alpha,
        "method": "one-sided score test of no recall loss per class, Holm; flagged when also losing more than δ",
        "failing": failing,
        "classes": rows,
    }
