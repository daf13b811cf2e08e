"""A prompted LLM candidate: template + litellm model string + params, answers parsed to the slot's task."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from goldgate.calls.base import CallRequest, CallResult
from goldgate.calls.prompt import PromptTemplate, load_prompt
from goldgate.config import CandidateConfig, Config, SlotConfig, expand_env
from goldgate.errors import ConfigError
from goldgate.models.base import Prediction, parse_label

__all__ = ["LLMModel", "label_schema", "runner_settings"]


def label_schema(labels: Sequence[str]) -> dict[str, Any]:
    """An OpenAI-style JSON response_format whose schema admits exactly one of `labels`; the
    `schema` key is what llama.cpp's server compiles into a grammar."""
    return {"type": "json_object", "schema": {"type": "object", "properties": {"label": {"enum": list(labels)}},
                                              "required": ["label"]}}


def _json_label(content: str) -> str:
    try:
        value = json.loads(content)
    except ValueError:
        return content
    return str(value.get("label", content)) if isinstance(value, dict) else content


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
        params = dict(self.cand.params)
        if self.cand.constrain_labels and self.labels is not None:
            params["response_format"] = label_schema(self.labels)
        return CallRequest(
            model=self.cand.model or "",
            messages=self.template.render(values, self.config.root),
            params=params,
            repeat=repeat,
            kind="app",
            api_base=self._api_base,
            api_key_env=self.cand.api_key_env,
            # priced per request: no token price to look up (a local model is in no price map)
            input_cost_per_token=0.0 if self.cand.usd_per_request is not None else self.cand.input_cost_per_token,
            output_cost_per_token=0.0 if self.cand.usd_per_request is not None else self.cand.output_cost_per_token,
            owner=f"[tool.goldgate.candidates.{self.name}]",
            max_in_flight=self.cand.concurrency,
        )

    def parse(self, res: CallResult) -> Prediction:
        pred = Prediction(
            text=res.content,
            model=res.model or (self.cand.model or ""),
            candidate=self.name,
            cost_usd=res.cost_usd if self.cand.usd_per_request is None else self.cand.usd_per_request,
            latency_s=res.latency_s,
            prompt_tokens=res.prompt_tokens,
            completion_tokens=res.completion_tokens,
            cached=res.cached,
            error=res.error,
            error_kind="transport" if res.error is not None else None,
        )
        if pred.ok and self.slot.task == "label":
            assert self.labels is not None
            pred.label = parse_label(_json_label(res.content) if self.cand.constrain_labels else res.content,
                                     self.labels)
            if pred.label is None:
                pred.error = f"unparseable output (not one of the {len(self.labels)} labels): {res.content[:80]!r}"
                pred.error_kind = "output"
        return pred

    def predict_many(self, batch: Sequence[dict[str, Any]]) -> list[Prediction]:
        from goldgate.calls.runner import run_calls

        reqs = [self.request(x) for x in batch]
        results, _ = run_calls(reqs, runner_settings(self.config, progress=len(reqs) > 50))
        return [self.parse(results[r.key]) for r in reqs]

    def predict(self, inputs: dict[str, Any]) -> Prediction:
        return self.predict_many([inputs])[0]

    def predict_batch_api(self, batch: Sequence[dict[str, Any]], *, progress: bool = True,
                          stats: dict[str, Any] | None = None) -> list[Prediction]:
        """`predict_many` through the provider's batch API: half the price, hours not seconds.
        A killed command resumes its batches when run again; `stats` receives what happened."""
        from dataclasses import asdict

        from goldgate.calls.batch_api import BatchSettings, batch_pricing, run_batch

        reqs = [self.request(x) for x in batch]
        if not reqs:
            return []
        cache = self.config.path(self.config.cache)
        settings = BatchSettings(
            cache_path=cache, state_dir=cache.parent / "batches", progress=progress,
            pricing=batch_pricing(reqs[0], (self.cand.batch_input_cost_per_token, self.cand.batch_output_cost_per_token)),
            poll_s=self.config.distill.batch_poll_s or 30.0,
        )
        results, run = run_batch(reqs, settings)
        if stats is not None:
            stats.update(asdict(run))
        return [self.parse(results[r.key]) for r in reqs]


def runner_settings(config: Config, *, progress: bool = True, label: str = "model calls", processes: int = 0,
                    share: int = 1) -> Any:
    """Runner settings from the project config; `share` > 1 splits the concurrency between processes."""
    from goldgate.calls.batch import RunnerSettings

    return RunnerSettings(
        processes=processes or config.call_processes,
        cache_path=config.path(config.cache),
        concurrency=max(1, config.concurrency // share),
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        progress=progress,
        label=label,
    )
