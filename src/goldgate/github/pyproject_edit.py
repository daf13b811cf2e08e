"""The one-line config change a swap PR makes: `use = ...` in the slot's table (plus the new
candidate's table when it is missing), edited as text so comments and layout survive, then parsed
back to prove nothing else changed."""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from goldgate.errors import GoldgateError

__all__ = ["SwapError", "edit_pyproject"]

class SwapError(GoldgateError):
    """A decision JSON is invalid, or the config change it asks for cannot be made safely."""


_HEADER = re.compile(r"^\s*\[(?P<name>[^\[\]]+)\]\s*(#.*)?$")


def _table_name(line: str) -> str | None:
    """The normalised name of a `[table]` header line (quotes and spaces around dots removed)."""
    m = _HEADER.match(line)
    if not m:
        return None
    return ".".join(part.strip().strip('"').strip("'") for part in m.group("name").split("."))


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v, where)}" for k, v in value.items()) + " }"
    raise SwapError(f"{where}: cannot write {type(value).__name__} value {value!r} to TOML")


def _set_key(lines: list[str], table: str, key: str, value: str, *, where: str) -> bool:
    """Replace `key = …` inside `[table]` keeping indentation and any trailing comment."""
    inside = False
    pat = re.compile(rf"^(?P<pre>\s*{re.escape(key)}\s*=\s*)(?P<val>\"[^\"]*\"|'[^']*')(?P<post>\s*(#.*)?)$")
    for i, line in enumerate(lines):
        name = _table_name(line)
        if name is not None or line.lstrip().startswith("[["):
            inside = name == table
            continue
        if inside:
            m = pat.match(line.rstrip("\r\n"))
            if m:
                end = line[len(line.rstrip("\r\n")):]
                lines[i] = f"{m.group('pre')}{value}{m.group('post')}{end}"
                return True
    raise SwapError(f"{where}: no `{key} = \"…\"` line in [{table}] to edit (is it written inline?)")


def _insert_table(lines: list[str], after_prefix: str, block: list[str]) -> None:
    """Insert a table after the last table whose name starts with `after_prefix` (else at the end),
    above the comments that introduce whatever table follows."""
    last = max((i for i, line in enumerate(lines) if (_table_name(line) or "").startswith(after_prefix)),
               default=None)
    at = len(lines)
    if last is not None:
        nxt = next((i for i in range(last + 1, len(lines)) if _table_name(lines[i]) is not None
                    or lines[i].lstrip().startswith("[[")), len(lines))
        at = nxt
        while at > last + 1 and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
            at -= 1
    if lines and not lines[-1].endswith("\n") and at == len(lines):
        lines[-1] += "\n"
    lines[at:at] = ["\n", *block] + (["\n"] if at < len(lines) and lines[at].strip() else [])


def edit_pyproject(text: str, *, slot: str, proposed: str, proposed_config: Mapping[str, Any],
                   where: str = "pyproject.toml") -> str:
    """The swap as a text edit: the slot's `use` line, plus the candidate's table (added when
    missing, its `artifact` line updated when it changed); every other byte stays as it was."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SwapError(f"{where}: invalid TOML: {exc}") from None
    gg = before.get("tool", {}).get("goldgate", {})
    if slot not in gg.get("slots", {}):
        raise SwapError(f"{where}: no [tool.goldgate.slots.{slot}] table")
    lines = text.splitlines(keepends=True)
    _set_key(lines, f"tool.goldgate.slots.{slot}", "use", json.dumps(proposed), where=where)
    existing = gg.get("candidates", {}).get(proposed)
    table = f"tool.goldgate.candidates.{proposed}"
    if existing is None:
        block = [f"[{table}]\n"] + [f"{_toml_key(k)} = {_toml_value(v, f'{where}: [{table}] {k}')}\n"
                                    for k, v in proposed_config.items()]
        _insert_table(lines, "tool.goldgate.candidates.", block)
    elif proposed_config.get("artifact") and existing.get("artifact") != proposed_config["artifact"]:
        _set_key(lines, table, "artifact", json.dumps(proposed_config["artifact"]), where=where)
    new = "".join(lines)
    _check_edit(before, new, slot=slot, proposed=proposed, proposed_config=proposed_config, where=where)
    return new


def _check_edit(before: dict[str, Any], new: str, *, slot: str, proposed: str,
                proposed_config: Mapping[str, Any], where: str) -> None:
    """Parse the edited file and require exactly the intended change, and a valid candidate."""
    from pydantic import ValidationError

    from goldgate.config import CandidateConfig

    after = tomllib.loads(new)
    expected = json.loads(json.dumps(before))
    gg = expected["tool"]["goldgate"]
    gg["slots"][slot]["use"] = proposed
    cands = gg.setdefault("candidates", {})
    if proposed not in cands:
        cands[proposed] = json.loads(json.dumps(dict(proposed_config)))
    elif proposed_config.get("artifact"):
        cands[proposed]["artifact"] = proposed_config["artifact"]
    if json.loads(json.dumps(after)) != expected:
        raise SwapError(f"{where}: the edit would change more than [tool.goldgate.slots.{slot}] use; "
                        "edit it by hand")
    try:
        CandidateConfig.model_validate(after["tool"]["goldgate"]["candidates"][proposed])
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise SwapError(f"{where}: [tool.goldgate.candidates.{proposed}] {key}: {first['msg']}") from None


