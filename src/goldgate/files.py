"""Files goldgate writes for people and later steps: atomic writes, and versioned JSON read back
and checked in one place (run summaries, decisions, model cards)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError, OutputError

__all__ = ["check_output_dir", "read_versioned", "read_versioned_if_any", "write_atomic"]


def read_versioned(path: Path, *, schema: str, error: type[GoldgateError], missing: str,
                   key: str = "schema") -> dict[str, Any]:
    """The file's object if it parses and carries `schema` under `key`; else `error` with one line
    naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: not found ({missing})") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: unreadable ({exc}); {missing}") from None
    got = data.get(key) if isinstance(data, dict) else None
    if got != schema:
        raise error(f"{path}: {key} is {got!r}, expected {schema!r}")
    return data


def read_versioned_if_any(path: Path, *, schema: str, error: type[GoldgateError], missing: str,
                          key: str = "schema") -> dict[str, Any] | None:
    """`read_versioned`, or None when the file does not exist yet."""
    if not path.exists():
        return None
    return read_versioned(path, schema=schema, error=error, missing=missing, key=key)


def check_output_dir(path: Path, *, create: bool = True) -> Path:
    """Make sure `path` is (or can become) a folder, before any work whose results go there."""
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"{path}: cannot write there: {blocker} is a file, not a folder")
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the folder: {exc.strerror}") from None
    return path


def write_atomic(path: Path, text: str | Iterable[str]) -> None:
    """Write via a temp file + fsync + rename, so a crash or outage never leaves half a file."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: cannot write the file: it is a folder")
    check_output_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines([text] if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
