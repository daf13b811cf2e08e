"""How the simulator answers: `[tool.goldgate.sim]` and `goldgate sim serve` flags validate into
`SimSettings`, unknown keys rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from goldgate.errors import ConfigError

__all__ = ["SimSettings"]

_Rate = Annotated[float, Field(ge=0, le=1)]


class SimSettings(BaseModel):
    """How the simulator answers; `[tool.goldgate.sim]` validates into this, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    seed: int = 0
    keys: list[Path] = Field(default_factory=list)
    label_field: str | None = None
    api_key: SecretStr | None = None
    accuracy: _Rate = 0.85
    model_accuracy: dict[str, _Rate] = Field(default_factory=dict)
    format_noise: _Rate = 0.03
    latency_ms: float = Field(default=0, ge=0)
    jitter_ms: float = Field(default=0, ge=0)
    rate_429: _Rate = 0
    rate_500: _Rate = 0
    rate_hang: _Rate = 0
    hang_s: float = Field(default=600, ge=0)
    retry_after_s: float = Field(default=1, ge=0)
    max_inflight: int = Field(default=0, ge=0)
    judge_agreement: _Rate = 0.95
    judge_model_agreement: dict[str, _Rate] = Field(default_factory=dict)
    judge_leniency: _Rate = 0.7
    judge_garbage_rate: _Rate = 0
    batch_delay_s: float = Field(default=0, ge=0)  # how long a batch "runs" before it completes
    batch_fail_rate: _Rate = 0  # requests of a batch that fail (to its error file)

    @field_validator("keys")
    @classmethod
    def _keys_exist(cls, v: list[Path]) -> list[Path]:
        for i, path in enumerate(v):
            if not path.is_file():
                raise ValueError(f"key file #{i + 1} does not exist: {path}")
        return v

    @model_validator(mode="after")
    def _fault_rates_fit(self) -> SimSettings:
        if self.rate_429 + self.rate_500 + self.rate_hang > 1:
            raise ValueError("rate_429 + rate_500 + rate_hang must be at most 1")
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _one_line(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> SimSettings:
        # ConfigError is not a ValueError, so pydantic lets it through to the CLI as one line.
        try:
            return handler(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(["sim", *(str(p) for p in err["loc"])])
            got = err.get("input")
            secret = "api_key" in err["loc"]
            shown = f" (got {got!r})" if isinstance(got, (int, float)) and not secret else ""
            msg = err["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{where}: {msg}{shown}") from None
