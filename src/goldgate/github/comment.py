"""The sticky PR comment: one comment per tag, found by a hidden marker and updated in place."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from goldgate.github.client import github_errors

if TYPE_CHECKING:
    from github.Repository import Repository

__all__ = ["BODY_LIMIT", "CommentResult", "fit_markdown", "marker", "pr_number_from_env", "upsert_comment"]

BODY_LIMIT = 65_536


def marker(name: str) -> str:
    """The hidden HTML comment that identifies goldgate's comment for one workflow."""
    safe = re.sub(r"[^A-Za-z0-9_.:/ -]", "", name).strip() or "goldgate"
    return f"<!-- goldgate:{safe} -->"


def fit_markdown(text: str, limit: int = BODY_LIMIT, note: str = "") -> str:
    """Cut markdown to `limit` characters at a line boundary and close what the cut left open
    (code fences, <details>), so a truncated body still renders as intended."""
    if len(text) <= limit:
        return text
    tail = f"\n\n> ✂️ truncated to fit GitHub's {limit:,}-character limit. {note}".rstrip() + "\n"
    budget = limit - len(tail) - 64
    lines, used = [], 0
    for line in text.splitlines():
        if used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
    closers = []
    fences = sum(1 for line in lines if line.lstrip().startswith("```"))
    if fences % 2:
        closers.append("```")
    opened = sum(line.count("<details") for line in lines) - sum(line.count("</details>") for line in lines)
    closers += ["", "</details>"] * max(0, opened)
    return "\n".join(lines + closers) + tail


def pr_number_from_env(env: Mapping[str, str] = os.environ) -> int | None:
    """The pull request number of the running workflow (event payload, then GITHUB_REF)."""
    event = env.get("GITHUB_EVENT_PATH")
    if event and Path(event).is_file():
        try:
            payload = json.loads(Path(event).read_text(encoding="utf-8"))
        except ValueError:
            payload = {}
        number = (payload.get("pull_request") or {}).get("number")
        if isinstance(number, int):
            return number
    m = re.fullmatch(r"refs/pull/(\d+)/(merge|head)", env.get("GITHUB_REF", ""))
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class CommentResult:
    action: Literal["created", "updated"]
    url: str


def upsert_comment(repo: Repository, number: int, body: str, tag: str, *,
                   token: str | None = None) -> CommentResult:
    """Edit the comment that starts with `tag` on PR `number`, or create it: one per workflow."""
    full = fit_markdown(f"{tag}\n{body}", BODY_LIMIT)
    with github_errors(f"comment on {repo.full_name}#{number}", token):
        issue = repo.get_issue(number)
        for comment in issue.get_comments():
            if (comment.body or "").startswith(tag):
                comment.edit(full)
                return CommentResult("updated", comment.html_url)
        created = issue.create_comment(full)
        return CommentResult("created", created.html_url)
