"""Model slots and candidates behind one interface: `predict(inputs) -> Prediction`.

A slot is what the app uses in production; its `use` line names a candidate (a prompted LLM or a
trained student). `load_model("router")` returns the current candidate, so merging a swap PR that
edits `use` changes production without a code change.
"""

from __future__ import annotations

from pathlib import Path

from goldgate.config import Config, load_config
from goldgate.models.base import Model
from goldgate.models.llm import LLMModel

__all__ = ["load_model", "model_for_candidate"]


def model_for_candidate(config: Config, slot_name: str, candidate: str | None = None) -> Model:
    """The named candidate of a slot (its `use` candidate by default)."""
    slot = config.slot(slot_name)
    name = candidate or slot.use
    cand = config.candidate(name)
    labels = config.labels_for(slot_name)
    if cand.type == "llm":
        return LLMModel(name, cand, slot, labels, config)
    from goldgate.models.student import load_student

    return load_student(name, cand, slot, labels, config)


def load_model(slot: str, *, project: str | Path | None = None) -> Model:
    """What app code calls: the slot's current candidate, ready to `predict`."""
    config = load_config(Path(project) if project else None)
    return model_for_candidate(config, slot)
