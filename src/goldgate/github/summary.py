"""GitHub Actions outputs: the step summary, `::error` annotations on golden files and prompts,
and step outputs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from goldgate.github.comment import fit_markdown

__all__ = ["annotations", "write_outputs", "write_step_summary"]

def write_step_summary(markdown: str, env: Mapping[str, str] = os.environ) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY (1 MiB per step on GitHub); None outside Actions."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(fit_markdown(markdown, 1_000_000) + "\n")
    return Path(path)


def _cmd_escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def annotations(summary: dict[str, Any], *, goldens_dir: str, changed_prompts: set[str],
                root: Path, workspace: Path) -> list[str]:
    """`::error` lines for failing suite gates, placed on the prompt the PR changed, else the golden."""
    lines = []
    for s in summary.get("suites", []):
        gate = s.get("gate") or {}
        if gate.get("status") != "fail":
            continue
        fp = s.get("fingerprints") or {}
        prompt = fp.get("prompt")
        target = prompt if prompt and prompt in changed_prompts else \
            f"{goldens_dir}/{s.get('dataset') or fp.get('dataset')}.jsonl"
        rel = os.path.relpath(root / target, workspace)
        reasons = "; ".join(gate.get("reasons") or ["gate failed"])
        title = f"goldgate gate failed: {s['name']}"
        lines.append(f"::error file={_cmd_escape(rel, prop=True)},line=1,"
                     f"title={_cmd_escape(title, prop=True)}::{_cmd_escape(reasons)}")
    return lines


def write_outputs(values: Mapping[str, str | int | float], env: Mapping[str, str] = os.environ) -> Path | None:
    """Step outputs via $GITHUB_OUTPUT (single-line values only)."""
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(f"{key}={' '.join(str(value).split())}\n" for key, value in values.items())
    return Path(path)
