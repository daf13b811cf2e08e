"""The rich progress bar every trainer shows (disabled when stderr is not a terminal)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["steps"]


@contextmanager
def steps(total: int, label: str, enabled: bool, *, loss: bool = True) -> Iterator[Any]:
    """Yields `step(value)`: with `loss`, one step done at that loss; else `value` items done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    if loss:
        columns.append(TextColumn("loss {task.fields[loss]:.3f}"))
    with Progress(*columns, disable=not enabled) as bar:
        task = bar.add_task(label, total=total, loss=float("nan"))
        if loss:
            yield lambda value: bar.update(task, advance=1, loss=value)
        else:
            yield lambda n: bar.update(task, advance=n)
