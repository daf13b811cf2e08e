"""What every model answers with, and the interface every candidate (LLM or student) serves.

The lowest piece of `models/`: students and the LLM wrapper both build on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from goldgate.calls.labels import parse_label

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
