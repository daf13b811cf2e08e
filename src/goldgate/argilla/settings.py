"""`[tool.goldgate.argilla]`: which server, workspace and dataset a golden set syncs with, and how
human answers are aggregated."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from goldgate.errors import ConfigError, GoldgateError

if TYPE_CHECKING:

    from goldgate.config import Config

__all__ = ["ArgillaSettings", "ArgillaSyncError", "Rule", "Target", "resolve_target", "sdk"]

Rule = Literal["majority", "unanimous"]


class ArgillaSyncError(GoldgateError):
    """Argilla is unreachable, refused us, or holds a dataset that does not match the golden."""


class ArgillaSettings(BaseModel):
    """`[tool.goldgate.argilla]`: where Argilla is and how answers combine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None  # "local" or absent → the stack from `goldgate argilla up`
    api_key_env: str = "ARGILLA_API_KEY"
    workspace: str = "argilla"
    state_dir: str = ".goldgate/argilla"
    rule: Rule = "majority"
    min_submitted: int = Field(default=1, ge=1)
    # Batches of 500 records in flight at once: Argilla spends ~10 ms of Python per record, so a push
    # goes only as fast as the server processes it is spread over.
    push_concurrency: int = Field(default=4, ge=1, le=16)

    @classmethod
    def from_config(cls, cfg: Config | None) -> ArgillaSettings:
        try:
            return cls.model_validate(cfg.argilla if cfg else {})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{cfg.pyproject if cfg else 'pyproject.toml'}: [tool.goldgate.argilla] "
                              f"{key}: {err['msg']}") from None

    def state_path(self, cfg: Config | None) -> Path:
        return cfg.path(self.state_dir) if cfg else Path(self.state_dir).resolve()


@dataclass(frozen=True)
class Target:
    url: str
    api_key: str = field(repr=False)
    key_source: str  # where the key came from, for error messages (never the key itself)
    workspace: str


def resolve_target(settings: ArgillaSettings, cfg: Config | None, state_dir: Path | None = None) -> Target:
    """The Argilla to talk to: the configured URL + key from the environment, or the local stack."""
    from goldgate.argilla.stack import ArgillaStack, StackSettings

    if settings.url and settings.url != "local":
        key = os.environ.get(settings.api_key_env)
        if not key:
            raise ArgillaSyncError(f"environment variable {settings.api_key_env} (the Argilla API key for "
                                   f"{settings.url}) is not set")
        return Target(settings.url.rstrip("/"), key, f"${settings.api_key_env}", settings.workspace)
    stack = ArgillaStack(StackSettings(state_dir=state_dir or settings.state_path(cfg)))
    status = stack.status()
    if not status.running or not status.url:
        raise ArgillaSyncError("no Argilla to talk to: start the local one with `goldgate argilla up`, or set "
                               "[tool.goldgate.argilla] url and api_key_env")
    return Target(status.url, stack.credentials().api_key, str(stack.credentials_file), settings.workspace)


# -- schema ---------------------------------------------------------------------------------------


def sdk() -> Any:
    """The argilla SDK, imported on first use, with its own tqdm bars and chatter silenced."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # read by tqdm at import; its bars would garble ours
    import argilla

    logging.getLogger("argilla.sdk").setLevel(logging.ERROR)
    return argilla
