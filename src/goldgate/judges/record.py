"""The calibration record kept in git next to the evals: where it lives and how it is read.

Both the judge (is my fingerprint calibrated?) and the calibration gate read it, so it sits below both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goldgate.config import Config
from goldgate.errors import GoldgateError
from goldgate.files import read_versioned_if_any
from goldgate.judges.config import JudgeConfig, judge_config

__all__ = ["SCHEMA", "CalibrationError", "read_record", "record_path"]

SCHEMA = "goldgate.judge-calibration/v1"


class CalibrationError(GoldgateError):
    """A calibration set or record is missing, malformed, or does not fit the judge."""


def record_path(config: Config, name: str, cfg: JudgeConfig | None = None) -> Path:
    """Where the judge's record lives (default `<evals>/judges/<name>.calibration.json`)."""
    cfg = cfg or judge_config(config, name)
    return config.path(cfg.record or f"{config.evals}/judges/{name}.calibration.json")


def read_record(path: Path) -> dict[str, Any] | None:
    """The stored record, or None when there is none yet."""
    return read_versioned_if_any(path, schema=SCHEMA, error=CalibrationError,
                                 missing="recalibrate with `goldgate judge calibrate` to write a new one")
