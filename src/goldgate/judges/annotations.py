"""The running case's annotations: where checks inside a test body (judges) record plain data
that lands in that case's record. The engine opens the context; judges write into it."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["annotating", "case_annotations"]

_ANNOTATIONS: ContextVar[dict[str, Any] | None] = ContextVar("goldgate_case_annotations", default=None)


def case_annotations() -> dict[str, Any] | None:
    """The running case's annotation dict (e.g. judge verdicts), or None outside an eval body.

    Whatever a check stores here (plain data) lands in that case's record in cases.jsonl."""
    return _ANNOTATIONS.get()


class annotating:
    """Context manager the plugin wraps around a test body so checks can annotate its case."""

    def __init__(self, store: dict[str, Any]):
        self.store = store

    def __enter__(self) -> dict[str, Any]:
        self._token = _ANNOTATIONS.set(self.store)
        return self.store

    def __exit__(self, *exc: object) -> None:
        _ANNOTATIONS.reset(self._token)
