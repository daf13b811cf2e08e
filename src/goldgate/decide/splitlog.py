"""The decision log of a test split: every swap decision made on it, kept in git next to the evals.

Re-deciding on the same test split (a weekly retrain, say) gives each new student another chance
at a false swap: k decisions at α each allow up to 1 − (1 − α)^k. So the k-th decision on a split
tests non-inferiority at α_k = α · 6 / (π² k²), which sums to α over any number of decisions: the
chance of any false swap on the split stays ≤ α. Power falls with k, and after `MAX_DECISIONS` the
rule refuses and asks for a fresh test split (a new split name, or a reviewed reset of the log).
Running the very same comparison again (same student, same paired outcomes: a re-run from the
cache) is the same test, not a new one: it keeps its number and spends nothing more.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from goldgate.files import write_atomic

__all__ = ["FIRST_ALPHA", "MAX_DECISIONS", "SPLIT_ALPHA", "SplitLog", "comparison_key", "spent_alpha"]

MAX_DECISIONS = 5
SPLIT_ALPHA = 0.05  # the chance of any false swap over all the decisions made on one test split


def spent_alpha(alpha: float, k: int) -> float:
    """The one-sided level of the k-th decision on a split (k ≥ 1); Σ over all k is α."""
    return alpha * 6 / (math.pi**2 * k * k)


FIRST_ALPHA = spent_alpha(SPLIT_ALPHA, 1)  # 0.0304: the level of (b) the first time a split is used


def comparison_key(slot: str, current: str, proposed: str, training_sha256: str | None,
                   outcomes: list[tuple[str, bool, bool]]) -> str:
    """What makes two decisions the same test: the slot, both candidates, the student's training data
    and every paired outcome (case id, LLM right, student right)."""
    ident = [slot, current, proposed, training_sha256, sorted(outcomes)]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


class SplitLog:
    """`<evals>/decisions/<dataset>.<split>.jsonl`: one line per decision on that test split."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_split(cls, log_dir: Path, dataset: str, split: str) -> SplitLog:
        return cls(log_dir / (re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{dataset}.{split}") + ".jsonl"))

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def prior(self, key: str) -> int:
        """Decisions before this one: its own position when the same comparison is logged already."""
        entries = self.entries()
        return next((i for i, e in enumerate(entries) if e.get("key") == key), len(entries))

    def append(self, entry: dict[str, Any]) -> None:
        lines = [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in [*self.entries(), entry]]
        write_atomic(self.path, "\n".join(lines) + "\n")

    def record(self, dec: dict[str, Any]) -> None:
        """Log a decision that was made (a refused one, or a repeat of a logged one, spends nothing)."""
        b = dec["checks"]["b_noninferiority"]
        if any(e.get("key") == b["comparison_key"] for e in self.entries()):
            return
        self.append({"key": b["comparison_key"], "created": dec["created"], "slot": dec["slot"], "current": dec["current"],
                     "proposed": dec["proposed"], "decision": dec["decision"], "n": b["n"], "alpha": b["alpha"],
                     "lower": round(b["lower_bound"], 6), "difference": round(b["difference"], 6)})
