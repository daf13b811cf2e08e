"""The eval engine: suites over golden cases, outputs fetched ahead of the test bodies, results
aggregated into a run summary. It knows nothing of pytest; `plugin.py` translates pytest events
into calls on it, and the CLI can drive it directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldgate.config import Config, GateConfig
from goldgate.engine.results import build_summary
from goldgate.engine.shards import Shard
from goldgate.engine.spec import EvalSpec
from goldgate.errors import ConfigError, ModelCallError
from goldgate.goldens.records import Case, GoldenSet, load_goldens, resolve_golden_path
from goldgate.judges.judge import Judge, JudgeItem, Verdict, judge_for
from goldgate.models.base import Model, Prediction
from goldgate.models.llm import LLMModel, runner_settings
from goldgate.models.load import model_for_candidate

if TYPE_CHECKING:
    from goldgate.calls.base import FollowUp
    from goldgate.calls.batch import RunStats
    from goldgate.calls.runner import Answers

__all__ = ["CaseKey", "EvalEngine", "ResultCollector", "Suite"]

CaseKey = tuple[str, str, int]  # (suite, case id, repeat)

@dataclass
class Suite:
    name: str
    spec: EvalSpec
    golden: GoldenSet
    cases: list[Case]
    model: Model | None
    gates: GateConfig
    source: str = ""
    judges: list[Judge] = field(default_factory=list)
    nodeid: str = ""  # the test function's pytest node id: what a reader greps for and can rerun

    def meta(self) -> dict[str, Any]:
        """What the controller needs to summarise this suite (plain data: crosses processes)."""
        fp: dict[str, Any] = {
            "dataset": self.golden.name,
            "dataset_sha256": self.golden.sha256,
        }
        if self.model is not None:
            fp.update(self.model.fingerprint())
        return {
            "name": self.name,
            "dataset": self.golden.name,
            "dataset_path": str(self.golden.path),
            "split": list(self.spec.split),
            "slot": self.spec.model,
            "candidate": fp.get("candidate"),
            "fingerprints": fp,
            "gates": self.gates.model_dump(),
            "repeats": self.spec.repeats,
            "source": self.source,
            **({"judges": [j.name for j in self.judges]} if self.judges else {}),
            "nodeid": self.nodeid,
        }


@dataclass
class EvalEngine:
    """Per-process state: loaded goldens and models, and the predictions fetched so far."""

    config: Config
    candidate_overrides: dict[str, str] = field(default_factory=dict)
    progress: bool = True
    call_processes: int = 0  # 0 = auto; xdist workers use 1 (the workers already spread the load)
    concurrency_share: int = 1  # xdist workers split the project's concurrency between them
    shard: Shard | None = None  # run only this slice of every suite (`--goldgate-shard i/n`)
    _goldens: dict[Path, GoldenSet] = field(default_factory=dict)
    _suites: dict[str, Suite] = field(default_factory=dict)
    _outputs: dict[CaseKey, Prediction] = field(default_factory=dict)
    _pending: dict[CaseKey, tuple[Answers, str, Suite]] = field(default_factory=dict)  # streaming in
    _streams: list[Answers] = field(default_factory=list)
    _judged_by: dict[CaseKey, Answers] = field(default_factory=dict)  # where judge answers come in
    stats: dict[str, float] = field(default_factory=lambda: {"llm_calls": 0, "cache_hits": 0, "throttled": 0})

    def __post_init__(self) -> None:
        from goldgate.judges.config import judge_config

        for name in self.config.judges:
            judge_config(self.config, name)  # a typo in any judge table stops the run before a call

    def golden(self, dataset: str) -> GoldenSet:
        path = resolve_golden_path(dataset, goldens_dir=self.config.path(self.config.goldens), root=self.config.root)
        if path not in self._goldens:
            self._goldens[path] = load_goldens(path, splits=self.config.splits, name=path.stem)
        return self._goldens[path]

    def suite(self, spec: EvalSpec, default_name: str, source: str = "", nodeid: str = "") -> Suite:
        """Resolve a declaration into cases and a model; every config or data problem raises here,
        at collection, before any model call."""
        name = spec.name or default_name
        if spec.problem:
            raise ConfigError(f"{source or name}: @goldgate.eval on {default_name}: {spec.problem}")
        if name in self._suites:
            existing = self._suites[name]
            if existing.spec is not spec:
                raise ConfigError(f"two eval suites are named '{name}' ({existing.source} and {source}); pass name=")
            return existing
        golden = self.golden(spec.dataset)
        unknown = [s for s in spec.split if s not in self.config.splits]
        if unknown:
            raise ConfigError(f"suite '{name}': unknown split {unknown[0]!r} (allowed: {', '.join(self.config.splits)})")
        cases = golden.split(*spec.split)
        if not cases:
            raise ConfigError(f"suite '{name}': {golden.path} has no cases in split {', '.join(spec.split) or '(any)'}")
        model: Model | None = None
        if spec.model:
            cand = spec.candidate or self.candidate_overrides.get(spec.model)
            model = model_for_candidate(self.config, spec.model, cand)
            if isinstance(model, LLMModel):
                _check_inputs(model, golden, cases)
            _check_labels(self.config, spec.model, golden, cases)
        if self.shard is not None:  # after the checks, so every shard reports the same config problems
            cases = self.shard.select(cases, [c.id for c in cases], name)
        judges = [judge_for(self.config, j) for j in spec.judges]
        gates = self.config.gates.model_copy(update=spec.gate_overrides)
        suite = Suite(name, spec, golden, cases, model, GateConfig.model_validate(gates.model_dump()), source,
                      judges, nodeid)
        self._suites[name] = suite
        return suite

    def prefetch(self, wanted: Iterable[tuple[Suite, Case, int]], *, stream: bool = False) -> None:
        """Compute every wanted output in one concurrent batch (cache first). With `stream`, a batch
        big enough for the call pool returns once calls are going out, and each output is taken as
        it lands (`output`), so test bodies run while the last calls are still out; `settle` then
        waits for the rest."""
        from goldgate.calls.runner import start_calls

        todo = [(s, c, r) for s, c, r in wanted
                if s.model is not None and (s.name, c.id, r) not in self._outputs
                and (s.name, c.id, r) not in self._pending]
        if not todo:
            return
        llm = [(s, c, r) for s, c, r in todo if isinstance(s.model, LLMModel)]
        local = [(s, c, r) for s, c, r in todo if not isinstance(s.model, LLMModel)]
        if llm:
            reqs = [s.model.request(c.inputs, r) for s, c, r in llm]  # type: ignore[union-attr]
            followups = _followups(llm, reqs)
            label = "model + judge calls" if followups else "model calls"
            answers = start_calls(reqs, runner_settings(self.config, progress=self.progress, label=label,
                                                        processes=self.call_processes,
                                                        share=self.concurrency_share), stream=stream,
                                  followups=followups)
            if followups:
                for s, c, r in llm:
                    self._judged_by[(s.name, c.id, r)] = answers
            if answers.streaming:
                self._streams.append(answers)
                for (s, c, r), req in zip(llm, reqs):
                    self._pending[(s.name, c.id, r)] = (answers, req.key, s)
            else:
                self._add_stats(answers.stats)
                for (s, c, r), req in zip(llm, reqs):
                    self._outputs[(s.name, c.id, r)] = s.model.parse(answers.results[req.key])  # type: ignore[union-attr]
        by_suite: dict[str, list[tuple[Suite, Case, int]]] = {}
        for item in local:
            by_suite.setdefault(item[0].name, []).append(item)
        for group in by_suite.values():
            model = group[0][0].model
            assert model is not None
            preds = model.predict_many([c.inputs for _, c, _ in group])
            for (s, c, r), p in zip(group, preds):
                self._outputs[(s.name, c.id, r)] = p
            for j in group[0][0].judges:  # no pipeline to ride: one batch per judge
                j.check_many([j.item_for(c.inputs, _judged_text(p), c.expected)
                              for (_, c, _), p in zip(group, preds) if p.ok], progress=self.progress)

    def settle(self) -> None:
        """Wait for streamed answers still out and count their calls (before the run's summary)."""
        streams, self._streams = self._streams, []
        self._pending.clear()
        self._judged_by.clear()
        try:
            for answers in streams:
                answers.finish()
        finally:
            for answers in streams:
                answers.abort()  # only where finish() raised for an earlier batch
                self._add_stats(answers.stats)

    def abort(self) -> None:
        """The run stops early: end the calls still out (what landed stays cached and counted)."""
        streams, self._streams = self._streams, []
        self._pending.clear()
        self._judged_by.clear()
        for answers in streams:
            answers.abort()
            self._add_stats(answers.stats)

    def _add_stats(self, stats: RunStats) -> None:
        self.stats["llm_calls"] += stats.llm_calls
        self.stats["cache_hits"] += stats.cache_hits
        self.stats["throttled"] += stats.throttled
        if stats.min_concurrency:
            self.stats["min_concurrency"] = min(self.stats.get("min_concurrency") or 1e9, stats.min_concurrency)

    def output(self, suite: Suite, case: Case, repeat: int) -> Prediction:
        key = (suite.name, case.id, repeat)
        if key in self._pending:
            answers, req_key, _ = self._pending[key]
            self._outputs[key] = suite.model.parse(answers.get(req_key))  # type: ignore[union-attr]
            del self._pending[key]
        elif key not in self._outputs:
            self.prefetch([(suite, case, repeat)])
        return self._outputs[key]

    def verdicts(self, suite: Suite, case: Case, repeat: int) -> list[tuple[Verdict, JudgeItem]]:
        """The verdicts of the suite's judges on this case's output: from the pipeline that made
        them as the output landed, else from the judge (cache first)."""
        pred = self.require_output(suite, case, repeat)
        answers = self._judged_by.get((suite.name, case.id, repeat))
        out = []
        for j in suite.judges:
            item = j.item_for(case.inputs, _judged_text(pred), case.expected)
            verdict = j.known(item)
            if verdict is None and answers is not None:
                res = answers.wait(j.request(item).key)
                verdict = j.take(item, res) if res is not None else None
            if verdict is None:
                verdict = j.check_many([item], progress=False)[0]
            out.append((verdict, item))
        return out

    def require_output(self, suite: Suite, case: Case, repeat: int) -> Prediction:
        pred = self.output(suite, case, repeat)
        if not pred.ok:
            raise ModelCallError(f"case {case.id}: {pred.error}")
        return pred

    def record(self, suite: Suite, case: Case, repeat: int, status: str, message: str = "", nodeid: str = "",
               annotations: dict[str, Any] | None = None) -> dict[str, Any]:
        """One case's result as plain data (it travels from xdist workers to the controller)."""
        pred = self._outputs.get((suite.name, case.id, repeat))
        rec: dict[str, Any] = {
            "suite": suite.name,
            "case_id": case.id,
            "repeat": repeat,
            "status": status,
            "nodeid": nodeid,
            "expected": case.expected,
            "message": message[:500],
        }
        if annotations:
            rec.update(annotations)
        if pred is not None:
            rec.update(
                output={"label": pred.label, "text": pred.text[:2000]},
                candidate=pred.candidate,
                model=pred.model,
                cost_usd=pred.cost_usd,
                latency_s=pred.latency_s,
                prompt_tokens=pred.prompt_tokens,
                completion_tokens=pred.completion_tokens,
                cached=pred.cached,
                error=pred.error,
                error_kind=pred.error_kind,
                confidence=pred.confidence,
            )
        if status == "error" and not rec.get("error_kind"):
            rec["error_kind"] = "transport"  # no usable answer or verdict came back (e.g. a judge call failed)
        return rec


def _judged_text(pred: Prediction) -> str:
    """What a judge reads of a prediction: its label for a label task, else its text."""
    return pred.label if pred.label is not None else pred.text


def _followups(items: list[tuple[Suite, Case, int]], reqs: list[Any]) -> dict[str, list[FollowUp]]:
    """Each generation's judge calls, to be made as soon as it lands."""
    out: dict[str, list[FollowUp]] = {}
    for (s, c, _), req in zip(items, reqs):
        if s.judges:
            model = s.model
            assert isinstance(model, LLMModel)
            labels = model.labels if model.slot.task == "label" else None
            mine = out.setdefault(req.key, [])
            for j in s.judges:
                f = j.followup(c.inputs, c.expected, labels)
                if all(f.request.key != g.request.key for g in mine):
                    mine.append(f)
    return out


class ResultCollector:
    """Controller-side aggregation: case records in, run summary out."""

    def __init__(self) -> None:
        self.suites: dict[str, dict[str, Any]] = {}
        self.records: dict[CaseKey, dict[str, Any]] = {}
        self.call_stats: dict[str, float] = {"llm_calls": 0, "cache_hits": 0, "throttled": 0}

    def add_suite(self, meta: dict[str, Any]) -> None:
        self.suites.setdefault(meta["name"], meta)

    def add(self, rec: dict[str, Any]) -> None:
        # Keyed, so a report seen twice (e.g. a rerun plugin) is counted once.
        self.records[(rec["suite"], rec["case_id"], rec.get("repeat", 0))] = rec

    def add_stats(self, stats: dict[str, float]) -> None:
        for k, v in stats.items():
            if k == "min_concurrency":
                self.call_stats[k] = min(self.call_stats.get(k) or v, v)
            else:
                self.call_stats[k] = self.call_stats.get(k, 0) + v

    def summary(self, run_id: str, wall_s: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return build_summary(self.suites, self.records.values(), run_id=run_id, call_stats=self.call_stats,
                             wall_s=wall_s, extra=extra)


def _check_inputs(model: LLMModel, golden: GoldenSet, cases: list[Case]) -> None:
    """Every case has what the prompt needs; the first that does not is named with its line."""
    first: dict[frozenset[str], Case] = {}
    for c in cases:
        first.setdefault(frozenset(c.inputs), c)
    for fields, c in first.items():
        try:
            model.check_inputs(set(fields))
        except ConfigError as exc:
            raise ConfigError(f"{golden.path}:{c.line}: case {c.id!r}: {exc}") from None


def _check_labels(config: Config, slot_name: str, golden: GoldenSet, cases: list[Case]) -> None:
    """A label the goldens expect but the slot cannot answer would fail every such case quietly."""
    slot = config.slot(slot_name)
    labels = config.labels_for(slot_name) if slot.task == "label" else None
    if not labels:
        return
    allowed = set(labels)
    for c in cases:
        want = c.expected.get(slot.output_field)
        if isinstance(want, str) and want not in allowed:
            where = f"the labels file {slot.labels}" if isinstance(slot.labels, str) else "its labels"
            raise ConfigError(f"{golden.path}:{c.line}: case {c.id!r} expects {slot.output_field} {want!r}, "
                              f"which is not in {where} (slot '{slot_name}', {len(labels)} labels)")


def default_run_dir(config: Config, run_id: str) -> Path:
    return config.path(config.runs) / run_id
