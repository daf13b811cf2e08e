"""Model slots and candidates behind one interface: `predict(inputs) -> Prediction`.

A slot is what the app uses in production; its `use` line names a candidate (a prompted LLM or a
trained student). `load_model("router")` returns the current candidate, so merging a swap PR that
edits `use` changes production without a code change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from goldgate.calls import CallRequest, CallResult
from goldgate.config import CandidateConfig, Config, SlotConfig, expand_env, load_config
from goldgate.errors import ConfigError
from goldgate.prompt import PromptTemplate, load_prompt

__all__ = ["LLMModel", "Model", "Prediction", "load_model", "model_for_candidate", "parse_label"]


@dataclass
class Prediction:
    """A model's answer for one input, with what it cost. `error` set means no usable answer."""

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


class LLMModel:
    """A prompted LLM: template + litellm model string + params, answers parsed to the slot's task."""

    def __init__(self, name: str, cand: CandidateConfig, slot: SlotConfig, labels: list[str] | None, config: Config):
        if not cand.prompt:
            raise ConfigError(f"[tool.goldgate.candidates.{name}] prompt: required for type 'llm'")
        self.name = name
        self.cand = cand
        self.slot = slot
        self.labels = labels
        self.config = config
        self.template: PromptTemplate = load_prompt(config.path(cand.prompt))
        if slot.task == "label" and not labels:
            raise ConfigError(f"candidate '{name}': a label task needs `labels` on its slot")
        self._api_base = expand_env(cand.api_base) if cand.api_base else None

    def fingerprint(self) -> dict[str, Any]:
        return {
            "candidate": self.name,
            "type": "llm",
            "model": self.cand.model,
            "params": dict(self.cand.params),
            "prompt": str(self.cand.prompt),
            "prompt_sha256": self.template.sha256,
        }

    def check_inputs(self, fields: set[str]) -> None:
        self.template.check(fields | {"labels"})

    def request(self, inputs: dict[str, Any], repeat: int = 0) -> CallRequest:
        values = dict(inputs)
        if self.labels is not None:
            values.setdefault("labels", self.labels)
        return CallRequest(
            model=self.cand.model or "",
            messages=self.template.render(values, self.config.root),
            params=dict(self.cand.params),
            repeat=repeat,
            kind="app",
            api_base=self._api_base,
            api_key_env=self.cand.api_key_env,
            input_cost_per_token=self.cand.input_cost_per_token,
            output_cost_per_token=self.cand.output_cost_per_token,
        )

    def parse(self, res: CallResult) -> Prediction:
        pred = Prediction(
            text=res.content,
            model=res.model or (self.cand.model or ""),
            candidate=self.name,
            cost_usd=res.cost_usd,
            latency_s=res.latency_s,
            prompt_tokens=res.prompt_tokens,
            completion_tokens=res.completion_tokens,
            cached=res.cached,
            error=res.error,
        )
        if pred.ok and self.slot.task == "label":
            assert self.labels is not None
            pred.label = parse_label(res.content, self.labels)
            if pred.label is None:
                pred.error = f"unparseable output (not one of the {len(self.labels)} labels): {res.content[:80]!r}"
        return pred

    def predict_many(self, batch: Sequence[dict[str, Any]]) -> list[Prediction]:
        from goldgate.runner import run_calls

        reqs = [self.request(x) for x in batch]
        results, _ = run_calls(reqs, runner_settings(self.config, progress=len(reqs) > 50))
        return [self.parse(results[r.key]) for r in reqs]

    def predict(self, inputs: dict[str, Any]) -> Prediction:
        return self.predict_many([inputs])[0]


def runner_settings(config: Config, *, progress: bool = True, label: str = "model calls", processes: int = 0,
                    share: int = 1) -> Any:
    """Runner settings from the project config; `share` > 1 splits the concurrency between processes."""
    from goldgate.runner import RunnerSettings

    return RunnerSettings(
        processes=processes or config.call_processes,
        cache_path=config.path(config.cache),
        concurrency=max(1, config.concurrency // share),
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        progress=progress,
        label=label,
    )


def model_for_candidate(config: Config, slot_name: str, candidate: str | None = None) -> Model:
    """The named candidate of a slot (its `use` candidate by default)."""
    slot = config.slot(slot_name)
    name = candidate or slot.use
    cand = config.candidate(name)
    labels = config.labels_for(slot_name)
    if cand.type == "llm":
        return LLMModel(name, cand, slot, labels, config)
    from goldgate.students import load_student

    return load_student(name, cand, slot, labels, config)


def load_model(slot: str, *, project: str | Path | None = None) -> Model:
    """What app code calls: the slot's current candidate, ready to `predict`."""
    config = load_config(Path(project) if project else None)
    return model_for_candidate(config, slot)
