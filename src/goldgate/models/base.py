"""What every model answers with, and the interface every candidate (LLM or student) serves.

The lowest piece of `models/`: students and the LLM wrapper both build on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["ErrorKind", "Model", "Prediction", "parse_label"]

# "transport": the call never produced an answer (timeout, 5xx, 429 or connection error after the
# retries), so the case says nothing about the model; "output": the model answered, unusably (off-label,
# unparseable), which is a real mistake.
ErrorKind = Literal["transport", "output"]


@dataclass
class Prediction:
    """A model's answer for one input, with what it cost. `error` set means no usable answer, and
    `error_kind` says whether the call failed or the answer did."""

    text: str
    label: str | None = None
    model: str = ""
    candidate: str = ""
    cost_usd: float = 0.0
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None
    error_kind: ErrorKind | None = None
    confidence: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Model(Protocol):
    name: str

    def predict(self, inputs: dict[str, Any]) -> Prediction: ...

    def predict_many(self, batch: Sequence[dict[str, Any]]) -> list[Prediction]: ...

    def fingerprint(self) -> dict[str, Any]: ...


def _norm(s: str) -> str:
    return re.sub(r"[\s\-]+", "_", s.strip().strip("`'\".,:;!*").strip().lower())


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """Map free model text onto the label set: exact, then normalised, then a single label named in it."""
    t = text.strip()
    if t in labels:
        return t
    by_norm = {_norm(lab): lab for lab in labels}
    n = _norm(t)
    if n in by_norm:
        return by_norm[n]
    if ":" in t:
        tail = _norm(t.rsplit(":", 1)[1])
        if tail in by_norm:
            return by_norm[tail]
    words = _norm(t)
    found = {lab for key, lab in by_norm.items() if re.search(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])", words)}
    if len(found) > 1:
        # Prefer the longest when one label contains another (card_payment vs card_payment_fee).
        longest = max(found, key=len)
        if all(_norm(other) in _norm(longest) for other in found):
            return longest
        return None
    return found.pop() if found else None
