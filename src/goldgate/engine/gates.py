"""Suite gates: the rules that decide a build, applied to a suite's aggregated results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GateCheck", "Gates", "evaluate_gates"]


@dataclass(frozen=True)
class Gates:
    min_pass_rate: float | None = None
    max_error_rate: float | None = 0.05
    max_cost_per_case: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"min_pass_rate": self.min_pass_rate, "max_error_rate": self.max_error_rate,
                "max_cost_per_case": self.max_cost_per_case}


@dataclass(frozen=True)
class GateCheck:
    name: str
    threshold: float
    value: float
    ok: bool

    def message(self) -> str:
        op = ">=" if self.name.startswith("min") else "<="
        verdict = "ok" if self.ok else "FAILED"
        return f"{self.name}: {self.value:.4g} {op} {self.threshold:.4g} {verdict}"


def evaluate_gates(gates: Gates, *, n: int, passed: int, errors: int, cost_usd: float) -> dict[str, Any]:
    """The gate verdict as plain data: status, each check, and a one-line reason when it fails."""
    checks: list[GateCheck] = []
    if n == 0:
        return {"status": "fail", "checks": [], "reasons": ["no cases ran"]}
    if gates.min_pass_rate is not None:
        rate = passed / n
        checks.append(GateCheck("min_pass_rate", gates.min_pass_rate, rate, rate >= gates.min_pass_rate))
    if gates.max_error_rate is not None:
        rate = errors / n
        checks.append(GateCheck("max_error_rate", gates.max_error_rate, rate, rate <= gates.max_error_rate))
    if gates.max_cost_per_case is not None:
        per = cost_usd / n
        checks.append(GateCheck("max_cost_per_case", gates.max_cost_per_case, per, per <= gates.max_cost_per_case))
    failed = [c for c in checks if not c.ok]
    return {
        "status": "fail" if failed else "pass",
        "checks": [
            {"name": c.name, "threshold": c.threshold, "value": c.value, "ok": c.ok} for c in checks
        ],
        "reasons": [c.message() for c in failed],
    }
