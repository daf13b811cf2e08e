"""Student candidates (`type = "sklearn"`, `"encoder"` or `"peft"`) behind the same `predict` interface as LLMs.

The artifact's `card.json` says which backend to load; `cost_usd` on each prediction is the
all-in per-request cost from `[tool.goldgate.cost]` (0 when unset), and `latency_s` is measured:
each request is charged the wall time of the micro-batch it was served in.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from goldgate.config import CandidateConfig, Config, SlotConfig
from goldgate.errors import ConfigError
from goldgate.models.base import Model, Prediction, parse_label

__all__ = ["Student", "load_student"]

_TYPE_KINDS = {"sklearn": ("sklearn",), "encoder": ("encoder",), "peft": ("lora-encoder", "peft-causal-lm")}


class Backend(Protocol):
    batch_size: int

    def predict_texts(self, texts: list[str]) -> list[tuple[str, float | None]]: ...


class Student:
    """A trained student serving one slot."""

    def __init__(self, name: str, artifact: Path, card: dict[str, Any], backend: Backend, slot: SlotConfig,
                 labels: list[str] | None, cost_per_request: float):
        self.name = name
        self.artifact = artifact
        self.card = card
        self.backend = backend
        self.slot = slot
        self.labels = labels
        self.cost_per_request = cost_per_request
        self.input_field: str = card.get("input_field", "text")

    def fingerprint(self) -> dict[str, Any]:
        card_sha = hashlib.sha256(json.dumps(self.card, sort_keys=True).encode()).hexdigest()
        return {
            "candidate": self.name,
            "type": self.card["kind"],
            "artifact": str(self.artifact),
            "base_model": self.card.get("base_model"),
            "training_sha256": self.card.get("data", {}).get("training_sha256"),
            "card_sha256": card_sha,
        }

    def _prediction(self, out: str, conf: float | None, latency_s: float) -> Prediction:
        pred = Prediction(text=out, model=self.card["kind"], candidate=self.name, cost_usd=self.cost_per_request,
                          latency_s=latency_s, confidence=conf)
        if self.slot.task == "label":
            pred.label = out if self.labels is None or out in self.labels else parse_label(out, self.labels)
            if pred.label is None:
                pred.error = f"unparseable output (not one of the {len(self.labels or [])} labels): {out[:80]!r}"
                pred.error_kind = "output"
        return pred

    def predict_many(self, batch: Sequence[dict[str, Any]]) -> list[Prediction]:
        preds: list[Prediction] = []
        size = max(1, self.backend.batch_size)
        for i in range(0, len(batch), size):
            chunk = batch[i : i + size]
            texts = []
            for inputs in chunk:
                text = inputs.get(self.input_field)
                if not isinstance(text, str):
                    raise ConfigError(f"student '{self.name}' reads inputs.{self.input_field}, which is missing")
                texts.append(text)
            t0 = time.perf_counter()
            outs = self.backend.predict_texts(texts)
            wall = time.perf_counter() - t0
            preds.extend(self._prediction(out, conf, wall) for out, conf in outs)
        return preds

    def predict(self, inputs: dict[str, Any]) -> Prediction:
        return self.predict_many([inputs])[0]


def load_backend(artifact: Path, card: dict[str, Any]) -> Backend:
    kind = card["kind"]
    if kind == "sklearn":
        from goldgate.models.sklearn import SklearnBackend

        return SklearnBackend(artifact)
    if kind in ("encoder", "lora-encoder"):
        from goldgate.models.encoder import EncoderBackend

        return EncoderBackend(artifact, card)
    from goldgate.models.lora import LoraCausalBackend

    return LoraCausalBackend(artifact, card)


def request_cost(config: Config, card: dict[str, Any]) -> float:
    """All-in $/request under the project's cost assumptions; 0 when none are configured."""
    from goldgate.models.cost import cost_settings, student_cost_from_card

    settings = cost_settings(config)
    if settings is None:
        return 0.0
    return student_cost_from_card(settings, card).per_request


def load_student(name: str, cand: CandidateConfig, slot: SlotConfig, labels: list[str] | None,
                 config: Config) -> Model:
    """The student artifact named by `[tool.goldgate.candidates.<name>] artifact`."""
    from goldgate.models.card import read_card

    assert cand.artifact is not None
    artifact = config.path(cand.artifact)
    card = read_card(artifact)
    if card["kind"] not in _TYPE_KINDS[cand.type]:
        raise ConfigError(f"[tool.goldgate.candidates.{name}] type = '{cand.type}' but {artifact}/card.json "
                          f"says kind '{card['kind']}'")
    return Student(name, artifact, card, load_backend(artifact, card), slot, labels, request_cost(config, card))
