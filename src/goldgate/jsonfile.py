"""Versioned JSON files (run summaries, decisions, model cards): read and check in one place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError

__all__ = ["read_versioned"]


def read_versioned(path: Path, *, schema: str, error: type[GoldgateError], missing: str) -> dict[str, Any]:
    """The file's object if it parses and carries `schema`; else `error` with one line naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: not found ({missing})") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: unreadable: {exc}") from None
    got = data.get("schema") if isinstance(data, dict) else None
    if got != schema:
        raise error(f"{path}: schema is {got!r}, expected {schema!r}")
    return data
