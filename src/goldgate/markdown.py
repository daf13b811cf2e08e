"""Untrusted text made inert in markdown (PR comments, step summaries, reports): shared by every
writer of markdown, so one escaping rule holds everywhere."""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["escape_prose", "quote", "quote_plain"]

QUOTE_MAX = 120


def quote(text: Any, max_len: int = QUOTE_MAX, *, in_table: bool = True) -> str:
    """Untrusted text as inert markdown: a code span, so no markup, HTML, links or @mentions;
    pipes escaped inside tables, newlines shown as ⏎, long text cut with …."""
    s = "" if text is None else str(text)
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "⏎")
    s = "".join(ch if ch.isprintable() else "�" for ch in s)
    if len(s) > max_len:
        s = s[: max_len - 1] + "…"
    if not s.strip():
        return "*(empty)*"
    longest = max((len(run) for run in _backtick_runs(s)), default=0)
    fence = "`" * (longest + 1)
    if in_table:
        s = s.replace("|", "\\|")
    return f"{fence} {s} {fence}"


def escape_prose(text: Any) -> str:
    """Generated prose (reasons, messages) as plain text: markdown punctuation escaped, HTML
    neutralised, @mentions defused; one line."""
    s = html.escape(" ".join(str(text).split()), quote=False)
    s = re.sub(r"([\\`*_\[\]|~#])", r"\\\1", s)
    return s.replace("@", "@\u200b")


def _backtick_runs(s: str) -> list[str]:
    runs, cur = [], ""
    for ch in s:
        if ch == "`":
            cur += ch
        elif cur:
            runs.append(cur)
            cur = ""
    return runs + ([cur] if cur else [])


def quote_plain(text: str) -> str:
    """Run ids and similar: keep only characters that cannot close a code span or a table cell."""
    return "".join(ch for ch in str(text) if ch.isalnum() or ch in "-_.:T")
