"""`[tool.goldgate]` in pyproject.toml, parsed into typed settings; every mistake is one line naming the key."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from goldgate.errors import ConfigError
from goldgate.project import find_pyproject, read_toml

__all__ = [
    "CandidateConfig",
    "Config",
    "DistillConfig",
    "GateConfig",
    "SlotConfig",
    "TrainSettings",
    "check_distill",
    "expand_env",
    "find_pyproject",
    "load_config",
]

DEFAULT_SPLITS = ("train", "validation", "dev", "test", "pool", "calibration")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str) -> str:
    """Expand `${VAR}` and `${VAR:-default}` so endpoints can follow the environment."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        got = os.environ.get(name)
        if got:
            return got
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (referenced as ${{{name}}})")

    return _ENV_REF.sub(sub, value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class GateConfig(_Strict):
    """Suite gates; a suite's decorator arguments override these project defaults."""

    min_pass_rate: float | None = Field(default=None, ge=0, le=1)
    max_error_rate: float | None = Field(default=0.05, ge=0, le=1)
    max_cost_per_case: float | None = Field(default=None, ge=0)


class TrainSettings(_Strict):
    """How `goldgate distill` trains one student; unset keys fall back to `[tool.goldgate.distill]`."""

    goldens: str | None = None
    kind: Literal["sklearn", "encoder", "lora", "causal-lora"] | None = None
    base: str | None = None
    input_field: str | None = None
    train_splits: list[str] | None = None
    test_split: str | None = None
    human_size: int | None = Field(default=None, ge=1)
    pool_split: str | None = None
    pool_size: int | None = Field(default=None, ge=1)
    teacher: str | None = None
    llm_weight: float | None = Field(default=None, ge=0)
    strict_leakage: bool | None = None
    seed: int | None = None
    hyper: dict[str, Any] = Field(default_factory=dict)


class DistillConfig(TrainSettings):
    """Project-wide distillation defaults, plus the swap rule's settings for `goldgate decide`."""

    push_to_hub: str | None = None
    delta: float | None = Field(default=None, ge=0, lt=1)
    max_cost_ratio: float | None = Field(default=None, gt=0)
    min_class_cases: int | None = Field(default=None, ge=1)
    alpha: float | None = Field(default=None, gt=0, lt=1)
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    batch_poll_s: float | None = Field(default=None, gt=0)  # how often `--batch` polls the provider


class CandidateConfig(_Strict):
    """One way to serve a slot: a prompted LLM through litellm, or a trained student artifact."""

    type: Literal["llm", "sklearn", "encoder", "peft"] = "llm"
    model: str | None = None
    prompt: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    # A self-hosted LLM is paid in machine time, not tokens: the $ one call costs (e.g. $/hour ÷
    # 3600 ÷ measured requests/s) replaces the token price in every cost number.
    usd_per_request: float | None = Field(default=None, ge=0)
    # At most this many calls in flight to this candidate (per process), below [tool.goldgate]
    # concurrency: a llama.cpp server answers one at a time, and 32 queued calls would time out.
    concurrency: int | None = Field(default=None, ge=1)
    artifact: str | None = None
    description: str | None = None
    train: TrainSettings | None = None
    # Label slots: ask the server for JSON `{"label": <one of the labels>}` via a JSON-schema
    # response_format (llama.cpp turns it into a grammar, so every answer is a valid label).
    constrain_labels: bool = False
    batch: bool | None = None  # true: label pools through the provider's batch API (`goldgate distill --batch`)
    batch_input_cost_per_token: float | None = Field(default=None, ge=0)  # else litellm's batch price
    batch_output_cost_per_token: float | None = Field(default=None, ge=0)

    @field_validator("params")
    @classmethod
    def _no_secrets_in_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key.lower() in {"api_key", "api_token", "token", "authorization"}:
                raise ValueError(f"'{key}' must not be written in config; use api_key_env")
        return v


class SlotConfig(_Strict):
    """What the app calls in production (`use`), and what kind of answer it returns."""

    use: str
    task: Literal["label", "text"] = "label"
    labels: list[str] | str | None = None
    output_field: str = "label"
    students: list[str] = Field(default_factory=list)  # what `goldgate distill` / `decide` train and judge
    suite: str | None = None  # the suite `goldgate decide` judges by, when several use the slot


def check_distill(values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` if they fit `DistillConfig`; else ConfigError naming `where` and the key."""
    try:
        DistillConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{where.format(key=key, flag=key.replace('_', '-'))}: {err['msg']} (got {err.get('input')!r})") from None
    return values


class Config(_Strict):
    root: Path
    pyproject: Path
    evals: str = "evals"
    goldens: str = "evals/goldens"
    runs: str = ".goldgate/runs"
    cache: str = ".goldgate/cache.sqlite"
    concurrency: int = Field(default=32, ge=1, le=4096)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    call_processes: int = Field(default=0, ge=0, le=64)  # 0 = auto: spread big batches over the cores
    splits: list[str] = Field(default_factory=lambda: list(DEFAULT_SPLITS))
    gates: GateConfig = Field(default_factory=GateConfig)
    slots: dict[str, SlotConfig] = Field(default_factory=dict)
    candidates: dict[str, CandidateConfig] = Field(default_factory=dict)
    sim: dict[str, Any] = Field(default_factory=dict)
    judges: dict[str, Any] = Field(default_factory=dict)
    cost: dict[str, Any] = Field(default_factory=dict)
    argilla: dict[str, Any] = Field(default_factory=dict)
    distill: DistillConfig = Field(default_factory=DistillConfig)

    def path(self, rel: str | os.PathLike[str]) -> Path:
        """Resolve a config-relative path against the project root."""
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def slot(self, name: str) -> SlotConfig:
        try:
            return self.slots[name]
        except KeyError:
            known = ", ".join(sorted(self.slots)) or "none"
            raise ConfigError(
                f"{self.pyproject}: no model slot '{name}' in [tool.goldgate.slots] (known: {known})"
            ) from None

    def candidate(self, name: str) -> CandidateConfig:
        try:
            return self.candidates[name]
        except KeyError:
            known = ", ".join(sorted(self.candidates)) or "none"
            raise ConfigError(
                f"{self.pyproject}: no candidate '{name}' in [tool.goldgate.candidates] "
                f"(known: {known})"
            ) from None

    def labels_for(self, slot_name: str) -> list[str] | None:
        """The slot's label set: inline, or a JSON list in a file."""
        import json

        labels = self.slot(slot_name).labels
        if labels is None:
            return None
        if isinstance(labels, list):
            if not labels:
                raise ConfigError(f"{self.pyproject}: [tool.goldgate.slots.{slot_name}] labels: the list is empty")
            return labels
        path = self.path(labels)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"[tool.goldgate.slots.{slot_name}] labels: cannot read {path}: {exc}"
            ) from None
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise ConfigError(f"[tool.goldgate.slots.{slot_name}] labels: {path} is not a JSON list of strings")
        if not data:
            raise ConfigError(f"[tool.goldgate.slots.{slot_name}] labels: {path} holds an empty list")
        return data


def _loc(err: dict[str, Any]) -> str:
    parts = [str(p) for p in err["loc"]]
    key = ".".join(parts)
    return f"[tool.goldgate] {key}" if key else "[tool.goldgate]"


def load_config(start: Path | None = None, pyproject: Path | None = None) -> Config:
    """Load the project config; raise ConfigError naming the file and key on any problem."""
    path = pyproject or find_pyproject(start)
    if path is None:
        raise ConfigError(
            f"no pyproject.toml with a [tool.goldgate] table at or above {(start or Path.cwd())}"
        )
    data = read_toml(path)
    table = data.get("tool", {}).get("goldgate")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: no [tool.goldgate] table")
    try:
        cfg = Config.model_validate({**table, "root": path.parent.resolve(), "pyproject": path})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{path}: {_loc(first)}: {first['msg']}") from None
    for name, slot in cfg.slots.items():
        if slot.use not in cfg.candidates:
            raise ConfigError(
                f"{path}: [tool.goldgate.slots.{name}] use = '{slot.use}' names no candidate "
                f"in [tool.goldgate.candidates]"
            )
        for student in slot.students:
            cand = cfg.candidates.get(student)
            if cand is None or cand.type == "llm":
                raise ConfigError(
                    f"{path}: [tool.goldgate.slots.{name}] students: '{student}' names no student candidate "
                    f"(type sklearn or peft) in [tool.goldgate.candidates]"
                )
    for name, cand in cfg.candidates.items():
        if cand.type == "llm" and not cand.model:
            raise ConfigError(f"{path}: [tool.goldgate.candidates.{name}] model: required for type 'llm'")
        if cand.type != "llm" and not cand.artifact:
            raise ConfigError(
                f"{path}: [tool.goldgate.candidates.{name}] artifact: required for type '{cand.type}'"
            )
    return cfg
