"""`[tool.goldgate.judges.<name>]` as a typed, validated table: model, rubric, calibration set,
record and the calibration gate's floors. Any mistake is one line naming the key."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from goldgate.calls.base import SECRET_PARAM_KEYS
from goldgate.config import Config
from goldgate.errors import ConfigError

__all__ = ["CalibrationFields", "Floors", "JudgeConfig", "judge_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Floors(_Strict):
    """The calibration gate's thresholds (defaults from docs/judges.md and the statistics brief)."""

    min_kappa: float = Field(default=0.70, ge=-1, le=1)
    min_kappa_lower: float = Field(default=0.60, ge=-1, le=1)
    min_fail_recall: float = Field(default=0.80, ge=0, le=1)
    min_n: int = Field(default=100, ge=1)
    min_minority: int = Field(default=30, ge=0)
    max_kappa_drop: float = Field(default=0.05, ge=0, le=2)
    fail_on_insufficient: bool = True


class CalibrationFields(_Strict):
    """Which keys of a calibration record's `inputs` hold the judged input, output and reference."""

    input: str = "input"
    output: str = "output"
    reference: str | None = None


class JudgeConfig(_Strict):
    """`[tool.goldgate.judges.<name>]`: the model and rubric, and where its human verdicts live."""

    model: str
    rubric: str
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0})
    api_base: str | None = None
    api_key_env: str | None = None
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    max_attempts: int = Field(default=3, ge=1, le=10)
    calibration: str | None = None
    calibration_split: str | None = "calibration"
    fields: CalibrationFields = Field(default_factory=CalibrationFields)
    record: str | None = None
    floors: Floors = Field(default_factory=Floors)
    description: str | None = None

    @field_validator("params")
    @classmethod
    def _no_secrets_or_format(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key.lower() in SECRET_PARAM_KEYS:
                raise ValueError(f"'{key}' must not be written in config; use api_key_env")
            if key == "response_format":
                raise ValueError("'response_format' is set by goldgate (structured verdicts)")
        return v


def judge_config(config: Config, name: str) -> JudgeConfig:
    """Validate one judge's table; any mistake is one line naming the key."""
    table = config.judges.get(name)
    if table is None:
        known = ", ".join(sorted(config.judges)) or "none"
        raise ConfigError(
            f"{config.pyproject}: no judge '{name}' in [tool.goldgate.judges] (known: {known})"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{config.pyproject}: [tool.goldgate.judges.{name}] must be a table")
    try:
        return JudgeConfig.model_validate(table)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"{config.pyproject}: [tool.goldgate.judges.{name}] {key}: {msg}"
        ) from None
