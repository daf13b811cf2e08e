"""Where a goldgate project is: the nearest pyproject.toml with a `[tool.goldgate]` table.

Separate from `config` (pydantic, ~0.1 s to import) so the pytest plugin can ask at start-up,
before it decides whether to start the call pool, for next to nothing.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from goldgate.errors import ConfigError

__all__ = ["find_pyproject", "read_toml"]

_AT = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; a syntax error is one `file:line:column: reason` line."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        m = _AT.match(str(exc))
        where = f"{path}:{m.group(2)}:{m.group(3)}" if m else str(path)
        raise ConfigError(f"{where}: invalid TOML: {m.group(1) if m else exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.goldgate]` table. One that
    mentions goldgate but does not parse is reported (file:line:column), not skipped."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / "pyproject.toml"
        if candidate.is_file():
            try:
                data = read_toml(candidate)
            except ConfigError:
                if b"goldgate" in candidate.read_bytes():
                    raise
                continue
            if "goldgate" in data.get("tool", {}):
                return candidate
    return None
