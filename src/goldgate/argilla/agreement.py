"""Turning several people's answers into one golden value (majority or unanimous, with a minimum
number of submitted responses), and Krippendorff's alpha for how far they agree."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from goldgate.argilla.lock import content_hash
from goldgate.argilla.schema import QuestionSpec, Schema
from goldgate.argilla.settings import Rule

__all__ = ["Decision", "decide", "decode_answer", "krippendorff_alpha"]

@dataclass(frozen=True)
class Decision:
    """What the submitted/discarded responses of one record say, after the agreement rule."""

    kind: Literal["none", "labelled", "discarded", "disagree"]
    expected: dict[str, Any] = field(default_factory=dict)
    annotators: tuple[str, ...] = ()
    votes: dict[str, list[Any]] = field(default_factory=dict)  # question key → each submitted value

    @property
    def hash(self) -> str:
        return "" if self.kind == "none" else content_hash([self.kind, self.expected, sorted(self.annotators)])


def decode_answer(q: QuestionSpec, value: Any) -> Any:
    if q.kind == "multi_label":
        return sorted(value or [])
    if q.kind == "rating":
        return int(value)
    return value


def decide(responses: list[tuple[str, str, str | None, Any]], schema: Schema, rule: Rule, min_submitted: int) -> Decision:
    """Combine `(user, status, question, value)` responses into one decision; drafts are ignored."""
    status: dict[str, str] = {}
    values: dict[str, dict[str, Any]] = {}
    for user, st, question, value in responses:
        if st == "draft":
            continue
        status[user] = st
        if st == "submitted" and question is not None:
            values.setdefault(user, {})[question] = value
    submitted = sorted(u for u, s in status.items() if s == "submitted")
    discarded = sorted(u for u, s in status.items() if s == "discarded")
    if not submitted and not discarded:
        return Decision("none")
    drop = len(discarded) == len(status) if rule == "unanimous" else len(discarded) > len(submitted)
    if drop and len(discarded) >= min_submitted:
        return Decision("discarded", annotators=tuple(discarded))
    if len(submitted) < min_submitted:
        return Decision("none")
    if rule == "unanimous" and discarded:
        return Decision("disagree", annotators=tuple(submitted))
    expected: dict[str, Any] = {}
    votes: dict[str, list[Any]] = {}
    for q in schema.questions:
        answers = [decode_answer(q, values[u][q.name]) for u in submitted if q.name in values[u]]
        if answers:
            votes[q.key] = answers
            top, n = Counter(json.dumps(a, sort_keys=True) for a in answers).most_common(1)[0]
            if n == len(answers) or (rule == "majority" and n * 2 > len(answers)):
                expected[q.key] = json.loads(top)
    if len(expected) < len(votes):
        return Decision("disagree", annotators=tuple(submitted), votes=votes)
    return Decision("labelled", expected, tuple(submitted), votes)


def krippendorff_alpha(units: Iterable[list[Any]]) -> float | None:
    """Nominal Krippendorff's α over units coded by two or more annotators (None when undefined)."""
    coincid: Counter[tuple[str, str]] = Counter()
    for unit in units:
        vals = [json.dumps(v, sort_keys=True) for v in unit]
        m = len(vals)
        if m < 2:
            continue
        for i, a in enumerate(vals):
            for j, b in enumerate(vals):
                if i != j:
                    coincid[(a, b)] += 1 / (m - 1)
    n_c: Counter[str] = Counter()
    for (a, _b), w in coincid.items():
        n_c[a] += w
    n = sum(n_c.values())
    if n <= 1:
        return None
    observed = sum(w for (a, b), w in coincid.items() if a != b)
    expected = (n * n - sum(v * v for v in n_c.values())) / (n - 1)
    if expected == 0:
        return 1.0 if observed == 0 else None
    return 1 - observed / expected


# -- results --------------------------------------------------------------------------------------


