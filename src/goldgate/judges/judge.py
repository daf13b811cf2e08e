"""LLM-as-a-judge: a rubric, a model and params that turn (input, output, reference) into a verdict.

Judges are declared in `[tool.goldgate.judges.<name>]`. A verdict is `pass`, `fail` or `error`:
answers that do not parse are retried with a nudge and then become an error, never a pass. Judge
calls go through the same runner and cache as app calls but under `kind="judge"`, so re-judging
saved outputs never repeats an app call. Whether a judge can be trusted is `calibration`'s job;
this module only reports whether its current fingerprint has a calibration record.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from goldgate.calls.base import OUTPUT_SLOT, CallRequest, CallResult, FollowUp
from goldgate.config import Config, expand_env, load_config
from goldgate.errors import ConfigError, ModelCallError
from goldgate.judges.annotations import case_annotations
from goldgate.judges.config import judge_config
from goldgate.judges.record import read_record, record_path

__all__ = ["Judge", "JudgeError", "JudgeItem", "Verdict", "judge", "judge_for"]

# Bump when the wrapper around the rubric (instructions, sections, schema) changes: it changes
# what the judge answers, so old calibration records must stop matching.
PROTOCOL = 1
VERDICT_SCHEMA: dict[str, Any] = {
    "name": "goldgate_verdict",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["pass", "fail"]},
            "rationale": {"type": "string"},
        },
        "required": ["verdict", "rationale"],
        "additionalProperties": False,
    },
}
_INSTRUCTIONS = (
    "You are an evaluation judge. Apply the criteria above to the <output> given for the <input>"
    " (and the <reference>, when one is given). Reply with one JSON object only: "
    '{"verdict": "pass" or "fail", "rationale": "<one or two sentences saying why>"}.'
)
_NUDGE = (
    "Your previous answer was not a JSON object with the keys verdict (pass or fail) and "
    "rationale. Answer again with that JSON object only."
)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_RATIONALE_MAX = 500

VerdictLabel = Literal["pass", "fail", "error"]


class JudgeError(ModelCallError):
    """A judge gave no usable verdict after its retries; the case that needed it is an error."""


@dataclass(frozen=True)
class JudgeItem:
    """What one verdict is about: the input the app saw, its output, and an optional reference."""

    input: str
    output: str
    reference: str | None = None


@dataclass(frozen=True)
class Verdict:
    """A judge's answer. `verdict` is `error` when no parseable answer came back (never a pass)."""

    judge: str
    verdict: VerdictLabel
    rationale: str
    fingerprint: str
    calibrated: bool
    cost_usd: float = 0.0
    cached: bool = False

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def annotation(self, item: JudgeItem) -> dict[str, Any]:
        """The plain dict recorded on a case; it carries the judged texts so `judge rerun` can
        re-judge them without the eval body."""
        return {
            "judge": self.judge,
            "verdict": self.verdict,
            "rationale": self.rationale,
            "fingerprint": self.fingerprint,
            "calibrated": self.calibrated,
            "cost_usd": self.cost_usd,
            **{k: v for k, v in asdict(item).items() if v is not None},
        }


class Judge:
    """One configured judge. Verdicts are memoised per item, so `check_many` ahead of the test
    bodies makes each later `check` a lookup."""

    def __init__(self, name: str, config: Config):
        self.name = name
        self.config = config
        self.cfg = judge_config(config, name)
        path = config.path(self.cfg.rubric)
        try:
            self.rubric = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{config.pyproject}: [tool.goldgate.judges.{name}] rubric: cannot read {path}: "
                f"{exc.strerror}"
            ) from None
        if not self.rubric.strip():
            raise ConfigError(
                f"{config.pyproject}: [tool.goldgate.judges.{name}] rubric: {path} is empty"
            )
        self._api_base = expand_env(self.cfg.api_base) if self.cfg.api_base else None
        self._memo: dict[JudgeItem, Verdict] = {}
        self._calibrated: bool | None = None

    # --- identity -------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What the judge's answers depend on; a calibration record is valid for exactly this."""
        fp: dict[str, Any] = {
            "model": self.cfg.model,
            "rubric": self.cfg.rubric,
            "rubric_sha256": hashlib.sha256(self.rubric.encode("utf-8")).hexdigest(),
            "params": dict(sorted(self.cfg.params.items())),
            "protocol": PROTOCOL,
        }
        blob = json.dumps({k: v for k, v in fp.items() if k != "rubric"}, sort_keys=True)
        return {"id": "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest(), **fp}

    @functools.cached_property
    def fingerprint_id(self) -> str:
        return self.fingerprint()["id"]

    @property
    def calibrated(self) -> bool:
        """Whether the stored calibration record was made with this exact fingerprint."""
        if self._calibrated is None:
            record = read_record(record_path(self.config, self.name, self.cfg))
            self._calibrated = (
                record is not None and record["fingerprint"]["id"] == self.fingerprint_id
            )
        return self._calibrated

    # --- calls ----------------------------------------------------------------------------------
    def request(self, item: JudgeItem, attempt: int = 0) -> CallRequest:
        """The judge call for one item; a retry carries a nudge and its own repeat index."""
        sections = [f"<input>\n{item.input}\n</input>", f"<output>\n{item.output}\n</output>"]
        if item.reference is not None:
            sections.append(f"<reference>\n{item.reference}\n</reference>")
        user = "\n".join(sections) + (f"\n\n{_NUDGE}" if attempt else "")
        return CallRequest(
            model=self.cfg.model,
            messages=[
                {"role": "system", "content": f"{self.rubric.strip()}\n\n{_INSTRUCTIONS}"},
                {"role": "user", "content": user},
            ],
            params={
                **self.cfg.params,
                "response_format": {"type": "json_schema", "json_schema": VERDICT_SCHEMA},
            },
            repeat=attempt,
            kind="judge",
            api_base=self._api_base,
            api_key_env=self.cfg.api_key_env,
            input_cost_per_token=self.cfg.input_cost_per_token,
            output_cost_per_token=self.cfg.output_cost_per_token,
            owner=f"[tool.goldgate.judges.{self.name}]",
        )

    def item_for(self, inputs: dict[str, Any], output: str, expected: dict[str, Any]) -> JudgeItem:
        """What this judge sees of an eval case: the input named by `fields.input` (or the only
        input, or all of them as JSON), the output, and `fields.reference` from the case's
        expected values (or inputs) when the judge has one."""
        key = self.cfg.fields.input
        if key in inputs:
            judged_input = _text(inputs[key])
        elif len(inputs) == 1:
            judged_input = _text(next(iter(inputs.values())))
        else:
            judged_input = _text(inputs)
        ref_key = self.cfg.fields.reference
        reference = None
        if ref_key is not None:
            value = expected.get(ref_key, inputs.get(ref_key))
            reference = None if value is None else _text(value)
        return JudgeItem(judged_input, output, reference)

    def followup(self, inputs: dict[str, Any], expected: dict[str, Any],
                 labels: Sequence[str] | None = None) -> FollowUp:
        """This judge's call on a case, made by the runner as soon as the app's answer lands
        (parsed to `labels` first, for a label task)."""
        item = self.item_for(inputs, OUTPUT_SLOT, expected)
        return FollowUp(self.request(item), tuple(labels) if labels is not None else None)

    def known(self, item: JudgeItem) -> Verdict | None:
        return self._memo.get(item)

    def take(self, item: JudgeItem, res: CallResult) -> Verdict | None:
        """The verdict from a first-attempt answer the pipeline already has; None when it needs a
        retry (then `check_many` asks again, from the cache up)."""
        parsed = _parse(res)
        if parsed is None:
            return None
        self._memo[item] = Verdict(self.name, parsed[0], parsed[1], self.fingerprint_id,
                                   self.calibrated, res.cost_usd, res.cached)
        return self._memo[item]

    def check_many(
        self, items: Sequence[JudgeItem | dict[str, Any]], *, progress: bool = True, fresh: bool = False
    ) -> list[Verdict]:
        """Judge many items in one concurrent batch (cache first, unless `fresh`: then every item
        is asked again and the answers replace the cached ones); never raises for a bad answer."""
        from goldgate.calls.runner import run_calls
        from goldgate.models.llm import runner_settings

        wanted = [x if isinstance(x, JudgeItem) else JudgeItem(**x) for x in items]
        todo = list(dict.fromkeys(x for x in wanted if fresh or x not in self._memo))
        cost: dict[JudgeItem, float] = {x: 0.0 for x in todo}
        for attempt in range(self.cfg.max_attempts):
            if not todo:
                break
            reqs = [self.request(x, attempt) for x in todo]
            label = f"judge '{self.name}': {len(reqs)} calls" + (
                f" (retry {attempt})" if attempt else ""
            )
            settings = dataclasses.replace(
                runner_settings(self.config, progress=progress and len(reqs) > 20, label=label),
                fresh=fresh,
            )
            results, _ = run_calls(reqs, settings)
            retry = []
            for x, req in zip(todo, reqs):
                res = results[req.key]
                cost[x] += res.cost_usd
                parsed = _parse(res)
                if parsed is None and attempt + 1 < self.cfg.max_attempts and res.ok:
                    retry.append(x)
                    continue
                label_, why = parsed or ("error", _error_reason(res, self.cfg.max_attempts))
                self._memo[x] = Verdict(
                    self.name,
                    label_,
                    why,
                    self.fingerprint_id,
                    self.calibrated,
                    cost[x],
                    res.cached,
                )
            todo = retry
        return [self._memo[x] for x in wanted]

    def check(self, *, input: Any, output: Any, reference: Any = None) -> Verdict:
        """Judge one output; inside an eval the verdict is recorded on the running case. An error
        verdict raises JudgeError after it is recorded, so it can never be read as a pass."""
        item = JudgeItem(
            _text(input), _text(output), None if reference is None else _text(reference)
        )
        verdict = self.check_many([item], progress=False)[0]
        notes = case_annotations()
        if notes is not None:
            note = verdict.annotation(item)
            recorded = notes.setdefault("judges", [])
            if note not in recorded:  # e.g. already recorded for a judge declared on the eval
                recorded.append(note)
        if verdict.verdict == "error":
            raise JudgeError(f"judge '{self.name}': {verdict.rationale}")
        return verdict


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _parse(res: CallResult) -> tuple[VerdictLabel, str] | None:
    """(verdict, rationale) from a judge's content, or None when it is not the asked-for JSON."""
    if not res.ok:
        return None
    text = res.content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    verdict = str(data.get("verdict", "")).strip().lower()
    rationale = data.get("rationale")
    if verdict not in ("pass", "fail") or not isinstance(rationale, str):
        return None
    return verdict, " ".join(rationale.split())[:_RATIONALE_MAX]  # type: ignore[return-value]


def _error_reason(res: CallResult, attempts: int) -> str:
    if not res.ok:
        return f"judge call failed: {res.error}"
    return f"unparseable verdict after {attempts} attempt(s): {res.content.strip()[:120]!r}"


_judges: dict[tuple[str, Path], Judge] = {}


def judge_for(config: Config, name: str) -> Judge:
    """The project's one instance of judge `name`: the eval pipeline and `judge(name)` calls in
    test bodies share its verdict memo."""
    key = (name, config.pyproject.resolve())
    if key not in _judges:
        _judges[key] = Judge(name, config)
    return _judges[key]


def judge(name: str, *, project: str | Path | None = None) -> Judge:
    """The judge named in `[tool.goldgate.judges]` of the project at or above `project` (default:
    the working directory); one instance per project, so its verdict memo is shared."""
    from goldgate.config import find_pyproject

    start = Path(project) if project else Path.cwd()
    pyproject = find_pyproject(start)
    if pyproject is None:
        raise ConfigError(f"no pyproject.toml with a [tool.goldgate] table at or above {start}")
    key = (name, pyproject.resolve())
    if key not in _judges:
        _judges[key] = Judge(name, load_config(pyproject=pyproject))
    return _judges[key]
