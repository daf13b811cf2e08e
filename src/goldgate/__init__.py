"""goldgate: LLM feature quality as CI gates.

Evals are pytest tests over golden datasets; goldens sync with Argilla; judges are calibrated
against humans; small models replace the LLM when the evidence says so. `import goldgate` stays
light: providers and ML frameworks load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from goldgate.version import __version__

__all__ = [
    "Case",
    "ConfigError",
    "GoldenFormatError",
    "GoldgateError",
    "ModelCallError",
    "Prediction",
    "__version__",
    "eval",
    "judge",
    "load_goldens",
    "load_model",
    "metrics",
]

from goldgate import metrics
from goldgate.engine.spec import eval
from goldgate.errors import ConfigError, GoldenFormatError, GoldgateError, ModelCallError

if TYPE_CHECKING:
    from goldgate.goldens.records import Case, load_goldens
    from goldgate.models.base import Model, Prediction


def load_model(slot: str, *, project: Any = None) -> Model:
    """The slot's current candidate (see `goldgate.models.load.load_model`)."""
    from goldgate.models.load import load_model as _load

    return _load(slot, project=project)


def judge(name: str, *, project: Any = None) -> Any:
    """The named judge from `[tool.goldgate.judges]` (see `goldgate.judges.judge.judge`)."""
    from goldgate.judges.judge import judge as _judge

    return _judge(name, project=project)


def __getattr__(name: str) -> Any:
    # Loaded on first use: the call-pool process imports `goldgate.*` and must reach its litellm
    # import without paying for pydantic and the goldens loader (~0.1 s on the critical path).
    if name == "Prediction":
        from goldgate.models.base import Prediction

        return Prediction
    if name in ("Case", "load_goldens"):
        from goldgate import goldens

        return getattr(goldens, name)
    raise AttributeError(name)
