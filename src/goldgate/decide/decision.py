"""The swap rule of docs/statistics: swap the LLM for a student only when every check holds.

(a) the test cases are human-validated and disjoint from the training data (hash-checked upstream;
an overlap is an error, not a "keep"); (b) non-inferiority: the one-sided 95% lower bound of the
paired accuracy difference (student − LLM) is above −δ; (c) the student's all-in cost is at most
0.7× the LLM's and the projected volume reaches break-even; (d) no class with ≥ 30 cases loses
more than δ recall (Holm-corrected) and the student's p95 latency meets the SLO; (e) an identical
open swap PR is the GitHub step's business.

The interval for (b) is Tango's score interval for a difference of paired proportions (Tango 1998,
Stat Med 17:891): it inverts the score test that constrains the discordant-cell probabilities to
the null, so the interval and the test always agree and it stays honest with few discordant pairs
(the Wald interval does not). The per-class guard uses the same score test, one-sided, per class.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goldgate.engine.stats import wilson_interval
from goldgate.errors import GoldgateError
from goldgate.files import check_output_dir, write_atomic
from goldgate.models.cost import CostSettings, LLMCost, StudentCost, break_even_volume

__all__ = [
    "DECISION_SCHEMA",
    "CandidatePoint",
    "DecisionError",
    "DecisionInputs",
    "Pair",
    "class_recall_guard",
    "decide",
    "holm",
    "noninferiority",
    "tango_lower_bound",
    "tango_z",
    "write_decision",
]

DECISION_SCHEMA = "goldgate.decision/v1"
Z_ONE_SIDED_95 = 1.6448536269514722
METHOD = "Tango score interval for paired proportions (one-sided 95%)"


class DecisionError(GoldgateError):
    """The runs to compare do not pair up, or the inputs to the rule are inconsistent."""


@dataclass(frozen=True, slots=True)
class Pair:
    """One test case answered by both sides; an errored answer counts as wrong."""

    case_id: str
    label: str
    llm_ok: bool
    student_ok: bool


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def tango_z(b: int, c: int, n: int, d: float) -> float:
    """Score statistic for H0: p10 − p01 = d, where b = #(student right, LLM wrong), c = the reverse."""
    if n == 0:
        return 0.0
    theta = (b - c) / n
    # Restricted MLE of p01 under the null: root of 2n x² + B x + C = 0 (Tango 1998, eq. 3).
    big_b = -(b + c) + d * (2 * n - b + c)
    big_c = -c * d * (1 - d)
    x = (-big_b + math.sqrt(max(0.0, big_b * big_b - 8 * n * big_c))) / (4 * n)
    var = (2 * x + d - d * d) / n
    if var <= 0:
        return 0.0 if math.isclose(theta, d, abs_tol=1e-12) else math.copysign(math.inf, theta - d)
    return (theta - d) / math.sqrt(var)


def tango_lower_bound(b: int, c: int, n: int, z: float = Z_ONE_SIDED_95) -> float:
    """The smallest d not rejected by the one-sided score test at level z (bisection; Z falls as d rises)."""
    if n == 0:
        return -1.0
    lo, hi = -1.0 + 1e-12, (b - c) / n
    if tango_z(b, c, n, lo) <= z:
        return -1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if tango_z(b, c, n, mid) > z:
            lo = mid
        else:
            hi = mid
    return lo


def _counts(pairs: Sequence[Pair]) -> tuple[int, int, int]:
    b = sum(p.student_ok and not p.llm_ok for p in pairs)
    c = sum(p.llm_ok and not p.student_ok for p in pairs)
    return len(pairs), b, c


def noninferiority(pairs: Sequence[Pair], delta: float) -> dict[str, Any]:
    n, b, c = _counts(pairs)
    acc_llm = sum(p.llm_ok for p in pairs) / n if n else 0.0
    acc_student = sum(p.student_ok for p in pairs) / n if n else 0.0
    lower = tango_lower_bound(b, c, n)
    return {
        "n": n,
        "student_better": b,
        "llm_better": c,
        "accuracy_llm": acc_llm,
        "accuracy_student": acc_student,
        "difference": acc_student - acc_llm,
        "lower_95": lower,
        "delta": delta,
        "p_value": 1 - _phi(tango_z(b, c, n, -delta)),
        "method": METHOD,
        "non_inferior": lower > -delta,
        "beats": lower > 0,
    }


def holm(pvalues: dict[str, float], alpha: float) -> set[str]:
    """Keys whose null is rejected by Holm's step-down procedure at family-wise level alpha."""
    rejected: set[str] = set()
    ordered = sorted(pvalues.items(), key=lambda kv: kv[1])
    for i, (key, p) in enumerate(ordered):
        if p > alpha / (len(ordered) - i):
            break
        rejected.add(key)
    return rejected


def class_recall_guard(pairs: Sequence[Pair], delta: float, *, min_cases: int = 30,
                       alpha: float = 0.05) -> dict[str, Any]:
    """Per class with ≥ min_cases: test H0 "recall loss ≤ δ" against "loses more than δ"; Holm over
    the classes tested. The guard fails when any class's excess loss is significant."""
    by_class: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_class[p.label].append(p)
    rows, pvals = [], {}
    for label, group in sorted(by_class.items()):
        n, b, c = _counts(group)
        if n < min_cases:
            continue
        pvals[label] = _phi(tango_z(b, c, n, -delta))
        rows.append({"label": label, "n": n, "recall_llm": sum(p.llm_ok for p in group) / n,
                     "recall_student": sum(p.student_ok for p in group) / n, "difference": (b - c) / n,
                     "p_value": pvals[label]})
    rejected = holm(pvals, alpha)
    for r in rows:
        r["loses_more_than_delta"] = r["label"] in rejected
    return {
        "pass": not rejected,
        "tested_classes": len(rows),
        "skipped_classes": len(by_class) - len(rows),
        "min_cases": min_cases,
        "alpha": alpha,
        "failing": sorted(rejected),
        "classes": rows,
    }


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
    delta: float = 0.03
    max_cost_ratio: float = 0.7
    min_class_cases: int = 30
    alpha: float = 0.05
    others: list[CandidatePoint] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def _money(x: float) -> str:
    return f"${x:.6f}" if x < 0.01 else f"${x:,.4f}"


def decide(inp: DecisionInputs) -> dict[str, Any]:
    """Apply checks (a)–(d); every number goes into the returned decision document."""
    if not inp.pairs:
        raise DecisionError("no paired test cases: the two runs share no case ids")
    ok_reasons: list[str] = []
    bad_reasons: list[str] = []

    def verdict(passed: bool, good: str, bad: str) -> bool:
        (ok_reasons if passed else bad_reasons).append(good if passed else bad)
        return passed

    a = {"human_validated": not inp.non_human_ids, "test_sources": inp.test_sources,
         "non_human_ids": inp.non_human_ids[:50], "n": len(inp.pairs), **inp.leakage}
    a["pass"] = verdict(
        a["human_validated"] and inp.leakage.get("overlaps", 0) == 0,
        f"(a) {len(inp.pairs)} human-validated test cases, disjoint from the training data by text hash",
        f"(a) {len(inp.non_human_ids)} test case(s) are not human-validated (e.g. {', '.join(inp.non_human_ids[:3])})",
    )

    b = noninferiority(inp.pairs, inp.delta)
    b["pass"] = verdict(
        b["non_inferior"],
        f"(b) non-inferior: accuracy {b['accuracy_student']:.3f} vs {b['accuracy_llm']:.3f}, "
        f"one-sided 95% lower bound of the difference {b['lower_95']:+.3f} > −δ = {-inp.delta:+.3f}"
        + (" (and above 0: the student beats the LLM)" if b["beats"] else ""),
        f"(b) not shown non-inferior: lower bound {b['lower_95']:+.3f} ≤ −δ = {-inp.delta:+.3f} "
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
            f"(c) student costs {_money(sc.per_request)} vs {_money(inp.llm_cost.per_request)} per request "
            f"({ratio:.2f}× ≤ {inp.max_cost_ratio}×); break-even after {be:,.0f} requests, "
            f"projected {inp.cost.projected_volume:,.0f}",
            f"(c) student costs {_money(sc.per_request)} vs {_money(inp.llm_cost.per_request)} per request "
            f"({ratio:.2f}×, limit {inp.max_cost_ratio}×)" if not cheap else
            f"(c) volume {inp.cost.projected_volume:,.0f} does not reach break-even {be:,.0f} requests",
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

    swap = a["pass"] and b["pass"] and c["pass"] and d["pass"]
    points = [inp.llm, inp.student, *inp.others]
    return {
        "schema": DECISION_SCHEMA,
        "decision": "swap" if swap else "keep",
        "slot": inp.slot,
        "current": inp.current,
        "proposed": inp.proposed,
        "proposed_config": inp.proposed_config,
        "reasons": ok_reasons if swap else bad_reasons,
        "passed": ok_reasons,
        "checks": {
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


def plot_candidates(candidates: list[dict[str, Any]], path: Path) -> None:
    """Accuracy (Wilson 95% bars) against cost per 1k requests, log scale, one point per candidate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for cand in candidates:
        cost = max(cand["cost_per_1k"] or 0.0, 1e-6)
        lo, hi = cand["accuracy_ci95"]
        acc = cand["accuracy"]
        ax.errorbar([cost], [acc], yerr=[[acc - lo], [hi - acc]], fmt="o", capsize=4,
                    color="tab:blue" if cand["role"] == "current" else "tab:orange")
        ax.annotate(f"{cand['name']}\n{acc:.3f} @ ${cost:.4f}/1k", (cost, acc), textcoords="offset points",
                    xytext=(8, -4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("cost per 1k requests (USD, log scale)")
    ax.set_ylabel("accuracy on the test split")
    ax.set_title("accuracy vs cost per 1k requests")
    ax.grid(True, which="both", alpha=0.3)
    xs = [max(c["cost_per_1k"] or 0.0, 1e-6) for c in candidates]
    ax.set_xlim(min(xs) / 3, max(xs) * 8)
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def render_report(dec: dict[str, Any]) -> str:
    """A one-screen markdown report: verdict, candidates, checks, cost formula, evidence."""
    ch = dec["checks"]
    b, c, d = ch["b_noninferiority"], ch["c_cost"], ch["d_guards"]
    head = (f"**Swap** `{dec['slot']}`: `{dec['current']}` → `{dec['proposed']}`" if dec["decision"] == "swap"
            else f"**Keep** `{dec['current']}` for `{dec['slot']}` (candidate `{dec['proposed']}` not adopted)")
    lines = [f"# goldgate decide: {dec['decision'].upper()}", "", head, ""]
    lines += [f"- {r}" for r in dec["reasons"]]
    lines += ["", "| candidate | accuracy [95% CI] | $/request | $/1k req | accuracy per $1k | $/correct | p95 ms |",
              "|---|---|---|---|---|---|---|"]
    for p in ch["candidates"]:
        lo, hi = p["accuracy_ci95"]
        cost = p["cost_per_request"]
        apd = p["accuracy_per_usd_1k"]
        lines.append(
            f"| `{p['name']}` ({p['role']}) | {p['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | "
            f"{'—' if cost is None else _money(cost)} | {'—' if cost is None else f'${cost * 1000:.4f}'} | "
            f"{'—' if apd is None else f'{apd:,.1f}'} | "
            f"{'—' if p['cost_per_correct'] is None else _money(p['cost_per_correct'])} | "
            f"{p['latency_p95_ms']:.1f} |")
    lines += ["", "| check | result | numbers |", "|---|---|---|",
              (f"| (a) test split | {_mark(ch['a_test_split']['pass'])} | N = {ch['a_test_split']['n']}, sources "
              f"{ch['a_test_split']['test_sources']}, overlaps {ch['a_test_split'].get('overlaps', 0)} |"),
              (f"| (b) non-inferiority | {_mark(b['pass'])} | Δ = {b['difference']:+.3f}, lower 95% "
              f"{b['lower_95']:+.3f} vs −δ = {-b['delta']:+.3f}; discordant {b['student_better']} / "
              f"{b['llm_better']} (student / LLM better); {b['method']} |")]
    if "ratio" in c:
        lines.append(f"| (c) cost | {_mark(c['pass'])} | ratio {c['ratio']:.2f}× (limit {c['max_ratio']}×), "
                     f"break-even {c['break_even_volume']:,.0f} req vs projected {c['projected_volume']:,.0f}; "
                     f"monthly saving ${c['monthly_saving_usd']:,.2f} |")
    else:
        lines.append(f"| (c) cost | {_mark(False)} | no cost assumptions configured |")
    g = d["class_recall"]
    lines += [(f"| (d) per-class recall | {_mark(g['pass'])} | {g['tested_classes']} classes tested "
              f"(≥ {g['min_cases']} cases), failing: {', '.join(g['failing']) or 'none'} |"),
              (f"| (d) p95 latency | {_mark(d['latency_pass'])} | {d['latency_p95_ms']:.1f} ms "
              f"(SLO {d['latency_slo_ms'] or 'not set'}) |"), ""]
    if "student" in c:
        s = c["student"]
        lines += [("**Cost model.** LLM: mean per-call cost over the run = "
                  f"{_money(c['llm']['per_request'])} ({c['llm']['price_source']}, price date "
                  f"{c['llm']['price_date']}). Student: {s['formula']} = {_money(s['per_request'])} "
                  f"(one-time: training ${s['training_usd']:.4f} + labelling ${s['labelling_usd']:.2f} + "
                  f"LLM labels ${s['teacher_usd']:.4f})."), ""]
    worst = sorted(g["classes"], key=lambda r: r["difference"])[:5]
    if worst:
        lines.append("Largest per-class recall changes (student − LLM): " + ", ".join(
            f"`{r['label']}` {r['difference']:+.2f} (p = {r['p_value']:.2f})" for r in worst) + ".")
        lines.append("")
    ev = dec["evidence"]
    lines += ["**Evidence.** " + "; ".join(f"{k}: `{v}`" for k, v in ev.items() if not isinstance(v, dict)),
              "", f"![accuracy vs cost]({dec['chart']})", ""]
    return "\n".join(lines)


def write_decision(out_dir: Path, dec: dict[str, Any]) -> Path:
    """decision.json, decision.md and the chart (PNG + SVG), side by side in `out_dir`."""
    check_output_dir(out_dir)
    plot_candidates(dec["checks"]["candidates"], out_dir / dec["chart"])
    write_atomic(out_dir / dec["report"], render_report(dec))
    path = out_dir / "decision.json"
    write_atomic(path, json.dumps(_finite(dec), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def _finite(x: Any) -> Any:
    """JSON has no infinity: an unreachable break-even is written as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
