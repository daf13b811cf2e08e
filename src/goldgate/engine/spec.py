"""`@goldgate.eval(...)`: declares that a test function is an eval suite over a golden set.

The decorator only records the declaration on the function; the pytest plugin turns it into one
test per case. Keeping pytest out of this module keeps `import goldgate` cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["SPEC_ATTR", "EvalSpec", "eval"]

SPEC_ATTR = "_goldgate_spec"
F = TypeVar("F", bound=Callable[..., Any])
_GATE_KEYS = ("min_pass_rate", "max_error_rate", "max_cost_per_case")


@dataclass(frozen=True)
class EvalSpec:
    dataset: str
    model: str | None = None
    split: tuple[str, ...] = ()
    name: str | None = None
    repeats: int = 1
    candidate: str | None = None
    gate_overrides: dict[str, float | None] = field(default_factory=dict)
    judges: tuple[str, ...] = ()
    problem: str | None = None  # a bad argument, reported at collection as one line


def _problem(repeats: Any, gates: dict[str, Any]) -> str | None:
    """What is wrong with the arguments, if anything. Raising here instead would surface inside
    pytest's import-error traceback of the whole test module."""
    from pydantic import ValidationError

    from goldgate.config import GateConfig

    unknown = sorted(set(gates) - set(_GATE_KEYS))
    if unknown:
        return f"unknown argument(s) {', '.join(unknown)}; gates are {', '.join(_GATE_KEYS)}"
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        return f"repeats must be a whole number >= 1 (got {repeats!r})"
    try:
        GateConfig.model_validate(gates)
    except ValidationError as exc:
        err = exc.errors()[0]
        return f"{'.'.join(map(str, err['loc']))}: {err['msg']} (got {err['input']!r})"
    return None


def eval(
    dataset: str,
    *,
    model: str | None = None,
    split: str | tuple[str, ...] | list[str] | None = None,
    name: str | None = None,
    repeats: int = 1,
    candidate: str | None = None,
    judges: str | list[str] | tuple[str, ...] | None = None,
    **gates: float | None,
) -> Callable[[F], F]:
    """Parametrise the decorated test over `dataset`'s cases; `model` names the slot whose output the
    `output` fixture provides. `judges` name `[tool.goldgate.judges]` entries that judge each output
    as soon as it lands; the `verdicts` fixture holds their verdicts. Gate keywords (min_pass_rate,
    max_error_rate, max_cost_per_case) override the project's defaults for this suite."""
    splits = (split,) if isinstance(split, str) else tuple(split or ())
    names = (judges,) if isinstance(judges, str) else tuple(dict.fromkeys(judges or ()))
    problem = _problem(repeats, gates) or (
        "judges= needs model= (they judge the model's output)" if names and not model else None)
    spec = EvalSpec(dataset, model, splits, name, repeats, candidate, {} if problem else dict(gates), names,
                    problem)

    def mark(fn: F) -> F:
        setattr(fn, SPEC_ATTR, spec)
        return fn

    return mark
