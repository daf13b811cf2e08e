"""Where a goldgate project is: the nearest pyproject.toml with a `[tool.goldgate]` table.

Separate from `config` (pydantic, ~0.1 s to import) so the pytest plugin can ask at start-up,
before it decides whether to start the call pool, for next to nothing.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

__all__ = ["find_pyproject"]


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.goldgate]` table."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if "goldgate" in data.get("tool", {}):
                return candidate
    return None
