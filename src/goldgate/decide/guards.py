"""Check (d) of the swap rule, the per-class recall guard, and Holm's step-down procedure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from goldgate.decide.noninferiority import Pair, counts, phi, tango_z

__all__ = ["class_recall_guard", "holm"]


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
                       alpha: float = 0.05) -> dict[str, Any]:
    """Per class with ≥ min_cases: test H0 "recall loss ≤ δ" against "loses more than δ"; Holm over
    the classes tested. The guard fails when any class's excess loss is significant."""
    by_class: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_class[p.label].append(p)
    rows, pvals = [], {}
    for label, group in sorted(by_class.items()):
        n, b, c = counts(group)
        if n < min_cases:
            continue
        pvals[label] = phi(tango_z(b, c, n, -delta))
        rows.append({"label": label, "n": n, "recall_llm": sum(p.llm_ok for p in group) / n,
                     "recall_student": sum(p.student_ok for p in group) / n, "difference": (b - c) / n,
                     "p_value": pvals[label]})
    rejected = holm(pvals, alpha)
    for r in rows:
        r["loses_more_than_delta"] = r["label"] in rejected
    return {
        "pass": not rejected,
        "tested_classes": len(rows),
        "skipped_classes": len(by_class) - len(rows),
        "min_cases": min_cases,
        "alpha": alpha,
        "failing": sorted(rejected),
        "classes": rows,
    }
