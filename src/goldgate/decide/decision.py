"""The swap rule of docs/statistics: swap the LLM for a student only when every check holds.

First, the evidence must be usable: cases whose call failed in transport (timeout, 5xx, 429 or a
connection error after the retries) say nothing about either model, so they leave the pairing, and
when either side lost more than `max_error_rate` of its cases that way the rule refuses to decide.
Unusable answers (off-label, unparseable) are the model's mistakes and count as wrong.

(a) the test cases are human-validated and disjoint from the training data (hash-checked upstream;
an overlap is an error, not a "keep"); (b) non-inferiority: the one-sided 95% lower bound of the
paired accuracy difference (student − LLM) is above −δ (`noninferiority`), at a level that shrinks
with each decision already made on the same test split (`splitlog`); (c) the student's all-in
cost is at most 0.7× the LLM's and the projected volume reaches break-even; (d) no class with ≥ 30
cases loses recall beyond the guard (`guards`) and the student's p95 latency meets the SLO; (e) an
identical open swap PR is the GitHub step's business.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goldgate.decide.guards import CLASS_ALPHA, class_recall_guard, holm
from goldgate.decide.noninferiority import Pair, noninferiority, tango_lower_bound
from goldgate.decide.render import break_even_text, money, render_report, write_decision
from goldgate.decide.splitlog import MAX_DECISIONS, SPLIT_ALPHA, spent_alpha
from goldgate.engine.stats import wilson_interval
from goldgate.errors import GoldgateError
from goldgate.models.cost import CostSettings, LLMCost, StudentCost, break_even_volume

__all__ = [
    "DECISION_SCHEMA",
    "CandidatePoint",
    "DecisionError",
    "DecisionInputs",
    "ErrorCounts",
    "Pair",
    "break_even_text",
    "class_recall_guard",
    "decide",
    "holm",
    "noninferiority",
    "render_report",
    "tango_lower_bound",
    "write_decision",
]

DECISION_SCHEMA = "goldgate.decision/v1"


class DecisionError(GoldgateError):
    """The runs to compare do not pair up, or the inputs to the rule are inconsistent."""


@dataclass(frozen=True)
class ErrorCounts:
    """One side's errored cases out of the n it ran: calls that failed, and answers that were unusable."""

    n: int
    transport: int = 0
    output: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "transport": self.transport, "output": self.output,
                "transport_rate": self.transport / self.n if self.n else 0.0,
                "output_rate": self.output / self.n if self.n else 0.0}


@dataclass(frozen=True)
class CandidatePoint:
    """One candidate on the accuracy-vs-cost chart and in the report's table."""

    name: str
    role: str
    n: int
    correct: int
    cost_per_request: float | None
    latency_p95_ms: float

    def to_dict(self) -> dict[str, Any]:
        acc = self.correct / self.n if self.n else 0.0
        lo, hi = wilson_interval(self.correct, self.n)
        cost = self.cost_per_request
        return {
            "name": self.name,
            "role": self.role,
            "n": self.n,
            "accuracy": acc,
            "accuracy_ci95": [lo, hi],
            "cost_per_request": cost,
            "cost_per_1k": None if cost is None else cost * 1000,
            "accuracy_per_usd_1k": None if not cost else acc / (cost * 1000),
            "cost_per_correct": None if cost is None or acc == 0 else cost / acc,
            "latency_p95_ms": self.latency_p95_ms,
        }


@dataclass
class DecisionInputs:
    slot: str
    current: str
    proposed: str
    proposed_config: dict[str, Any]
    pairs: list[Pair]
    llm: CandidatePoint
    student: CandidatePoint
    llm_cost: LLMCost
    student_cost: StudentCost | None
    cost: CostSettings | None
    test_sources: dict[str, int]
    non_human_ids: list[str]
    leakage: dict[str, Any]
    llm_errors: ErrorCounts
    student_errors: ErrorCounts
    excluded_cases: int = 0
    max_error_rate: float = 0.05
    prior_decisions: int = 0
    comparison_key: str = ""
    split_log: str = "no decision log"
    split_log_path: Path | None = None
    delta: float = 0.03
    max_cost_ratio: float = 0.7
    min_class_cases: int = 30
    alpha: float = CLASS_ALPHA
    others: list[CandidatePoint] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def decide(inp: DecisionInputs) -> dict[str, Any]:
    """Apply checks (a)–(d); every number goes into the returned decision document."""
    if not inp.pairs:
        raise DecisionError(f"no paired test cases: the two runs share no case ids that answered on both sides "
                            f"({inp.excluded_cases} left out for transport failures)")
    ok_reasons: list[str] = []
    bad_reasons: list[str] = []

    def verdict(passed: bool, good: str, bad: str) -> bool:
        (ok_reasons if passed else bad_reasons).append(good if passed else bad)
        return passed

    errors = _errors_check(inp)
    for side, counts in (("LLM", inp.llm_errors), ("student", inp.student_errors)):
        rate = counts.transport / counts.n if counts.n else 0.0
        verdict(rate <= inp.max_error_rate,
                f"{side}: {counts.transport} of {counts.n} calls failed in transport ({rate:.1%} ≤ "
                f"{inp.max_error_rate:.1%}); left out of the pairing",
                f"refusing to decide: {counts.transport} of {counts.n} {side} calls failed in transport "
                f"({rate:.1%} > max_error_rate {inp.max_error_rate:.1%}); re-run the evals once the provider "
                f"recovers (answered calls stay cached)")

    a = {"human_validated": not inp.non_human_ids, "test_sources": inp.test_sources,
         "non_human_ids": inp.non_human_ids[:50], "n": len(inp.pairs), **inp.leakage}
    a["pass"] = verdict(
        a["human_validated"] and inp.leakage.get("overlaps", 0) == 0,
        f"(a) {len(inp.pairs)} human-validated test cases, disjoint from the training data by text hash",
        f"(a) {len(inp.non_human_ids)} test case(s) are not human-validated (e.g. {', '.join(inp.non_human_ids[:3])})",
    )

    k = inp.prior_decisions + 1
    verdict(inp.prior_decisions < MAX_DECISIONS, f"decision {k} on this test split ({inp.split_log})",
            f"refusing to decide: {inp.prior_decisions} decisions were already made on this test split "
            f"({inp.split_log}); each one spends α, so use a fresh test split (a new split name, or a reviewed "
            f"reset of the log)")
    b = noninferiority(inp.pairs, inp.delta, spent_alpha(SPLIT_ALPHA, k))
    b.update(decision_number=k, prior_decisions=inp.prior_decisions, split_log=inp.split_log,
             comparison_key=inp.comparison_key)
    level = f"one-sided lower bound at α = {b['alpha']:.4f} (decision {k} on this test split)"
    b["pass"] = verdict(
        b["non_inferior"],
        f"(b) non-inferior: accuracy {b['accuracy_student']:.3f} vs {b['accuracy_llm']:.3f}, "
        f"{level} of the difference {b['lower_bound']:+.3f} > −δ = {-inp.delta:+.3f}"
        + (" (and above 0: the student beats the LLM)" if b["beats"] else ""),
        f"(b) not shown non-inferior: {level} {b['lower_bound']:+.3f} ≤ −δ = {-inp.delta:+.3f} "
        f"(accuracy {b['accuracy_student']:.3f} vs {b['accuracy_llm']:.3f}, N = {b['n']})",
    )

    c: dict[str, Any] = {"llm": inp.llm_cost.to_dict(), "max_ratio": inp.max_cost_ratio}
    if inp.cost is None or inp.student_cost is None:
        c["pass"] = verdict(False, "", "(c) no [tool.goldgate.cost] table: the student's cost cannot be judged")
    else:
        sc = inp.student_cost
        ratio = sc.per_request / inp.llm_cost.per_request if inp.llm_cost.per_request > 0 else math.inf
        be = break_even_volume(sc.one_time_usd, inp.llm_cost.per_request, sc.serving_per_request)
        c.update(student=sc.to_dict(), ratio=ratio, break_even_volume=be, projected_volume=inp.cost.projected_volume,
                 monthly_volume=inp.cost.monthly_volume, amortisation_months=inp.cost.amortisation_months,
                 monthly_saving_usd=(inp.llm_cost.per_request - sc.per_request) * inp.cost.monthly_volume)
        cheap, pays = ratio <= inp.max_cost_ratio, inp.cost.projected_volume >= be
        c["pass"] = verdict(
            cheap and pays,
            f"(c) student costs {money(sc.per_request)} vs {money(inp.llm_cost.per_request)} per request "
            f"({ratio:.2f}× ≤ {inp.max_cost_ratio}×); break-even after {break_even_text(be)}, "
            f"projected {inp.cost.projected_volume:,.0f}",
            f"(c) student costs {money(sc.per_request)} vs {money(inp.llm_cost.per_request)} per request "
            f"({ratio:.2f}×, limit {inp.max_cost_ratio}×)" if not cheap else
            f"(c) volume {inp.cost.projected_volume:,.0f} does not reach break-even: {break_even_text(be)}",
        )

    guard = class_recall_guard(inp.pairs, inp.delta, min_cases=inp.min_class_cases, alpha=inp.alpha)
    slo = inp.cost.latency_slo_ms if inp.cost else None
    p95 = inp.student.latency_p95_ms
    d = {"class_recall": guard, "latency_p95_ms": p95, "latency_slo_ms": slo,
         "latency_pass": slo is None or p95 <= slo}
    verdict(guard["pass"],
            f"(d) no class (of {guard['tested_classes']} with ≥ {inp.min_class_cases} cases) loses more than "
            f"δ recall (Holm, α = {inp.alpha})",
            f"(d) class(es) losing more than δ recall: {', '.join(guard['failing'][:5])}")
    verdict(d["latency_pass"],
            f"(d) p95 latency {p95:.1f} ms" + (f" ≤ SLO {slo:.0f} ms" if slo else " (no latency_slo_ms set)"),
            f"(d) p95 latency {p95:.1f} ms exceeds the SLO of {slo} ms")
    d["pass"] = guard["pass"] and d["latency_pass"]

    refused = not errors["pass"] or inp.prior_decisions >= MAX_DECISIONS
    swap = not refused and a["pass"] and b["pass"] and c["pass"] and d["pass"]
    points = [inp.llm, inp.student, *inp.others]
    return {
        "schema": DECISION_SCHEMA,
        "decision": "swap" if swap else "keep",
        "refused": refused,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "slot": inp.slot,
        "current": inp.current,
        "proposed": inp.proposed,
        "proposed_config": inp.proposed_config,
        "reasons": ok_reasons if swap else bad_reasons,
        "passed": ok_reasons,
        "checks": {
            "errors": errors,
            "a_test_split": a,
            "b_noninferiority": b,
            "c_cost": c,
            "d_guards": d,
            "e_open_pr": "checked by the GitHub swap-PR step (update an identical open PR instead)",
            "candidates": [p.to_dict() for p in points],
        },
        "evidence": inp.evidence,
        "report": "decision.md",
        "chart": "decision.png",
    }


def _errors_check(inp: DecisionInputs) -> dict[str, Any]:
    llm, student = inp.llm_errors.to_dict(), inp.student_errors.to_dict()
    return {"llm": llm, "student": student, "max_error_rate": inp.max_error_rate,
            "excluded_cases": inp.excluded_cases,
            "pass": max(llm["transport_rate"], student["transport_rate"]) <= inp.max_error_rate,
            "method": "transport failures leave the pairing; output errors count as wrong answers"}
