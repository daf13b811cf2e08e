"""The swap rule: its statistics, its edge cases, and its exact error rates."""

from __future__ import annotations

import json
import math
import random
from itertools import pairwise
from pathlib import Path
from statistics import NormalDist

import pytest

from goldgate.decide.decision import (
    CandidatePoint,
    DecisionInputs,
    ErrorCounts,
    Pair,
    class_recall_guard,
    decide,
    holm,
    tango_lower_bound,
    write_decision,
)
from goldgate.decide.guards import CLASS_ALPHA, class_loss_p
from goldgate.decide.noninferiority import noninferior
from goldgate.decide.operating import (
    Cells,
    outcome_probability,
    swap_probability,
    swap_probability_with_losses,
)
from goldgate.decide.splitlog import FIRST_ALPHA, MAX_DECISIONS, SPLIT_ALPHA, spent_alpha
from goldgate.models.cost import CostSettings, LLMCost, break_even_volume, student_cost

Z_FIRST = NormalDist().inv_cdf(1 - FIRST_ALPHA)  # the first decision on a test split
COST = CostSettings(monthly_volume=10_000_000, hardware_usd_per_hour=0.10, utilisation=0.3, latency_slo_ms=200)
LLM_COST = LLMCost(0.00002, 1000, 0.02, "test prices", "2025-01-01")


def _inputs(pairs: list[Pair], *, cost: CostSettings | None = COST, llm: LLMCost = LLM_COST, p95: float = 5.0,
            non_human: list[str] | None = None, llm_errors: ErrorCounts | None = None,
            prior: int = 0) -> DecisionInputs:
    sc = None if cost is None else student_cost(cost, throughput_rps=5000, training_s=30, teacher_usd=0.5,
                                                cpu_s_per_request=0.0004)
    n = len(pairs)
    return DecisionInputs(
        slot="router", current="llm", proposed="student", proposed_config={"type": "sklearn", "artifact": "a"},
        pairs=pairs, llm=CandidatePoint("llm", "current", n, sum(p.llm_ok for p in pairs), llm.per_request, 400.0),
        student=CandidatePoint("student", "proposed", n, sum(p.student_ok for p in pairs),
                               None if sc is None else sc.per_request, p95),
        llm_cost=llm, student_cost=sc, cost=cost, test_sources={"human": n}, non_human_ids=non_human or [],
        leakage={"overlaps": 0}, llm_errors=llm_errors or ErrorCounts(n), student_errors=ErrorCounts(n),
        prior_decisions=prior, split_log="evals/decisions/b.test.jsonl")


def _simulate(rng: random.Random, n: int, p_llm: float, diff: float, discordant: float = 0.10,
              classes: int = 10) -> list[Pair]:
    """Paired outcomes with P(LLM right) = p_llm and P(student right) = p_llm + diff."""
    p10, p01 = (discordant + diff) / 2, (discordant - diff) / 2
    p11 = p_llm - p01
    pairs = []
    for i in range(n):
        u = rng.random()
        llm_ok, student_ok = (True, True) if u < p11 else (False, True) if u < p11 + p10 else \
            (True, False) if u < p11 + p10 + p01 else (False, False)
        pairs.append(Pair(f"c{i}", f"class{i % classes}", llm_ok, student_ok))
    return pairs


def test_tango_interval_matches_published_value() -> None:
    # Tango (1998): 0 discordant pairs out of 100 → 95% two-sided interval [−0.0370, 0.0370].
    assert tango_lower_bound(0, 0, 100, z=1.959964, correction=0) == pytest.approx(-0.0370, abs=5e-4)
    assert tango_lower_bound(10, 5, 100) < 0.05 < 0.05 + tango_lower_bound(5, 10, 100) + 1


def test_holm_steps_down() -> None:
    assert holm({"a": 0.001, "b": 0.02, "c": 0.06}, 0.05) == {"a", "b"}
    assert holm({"a": 0.001, "b": 0.02, "c": 0.04}, 0.05) == {"a", "b", "c"}
    assert holm({"a": 0.03, "b": 0.04}, 0.05) == set()


def test_clear_win_swaps_and_writes_json_report_and_chart(tmp_path) -> None:
    pairs = _simulate(random.Random(1), 1000, 0.87, 0.03)
    dec = decide(_inputs(pairs))
    assert dec["decision"] == "swap" and dec["schema"] == "goldgate.decision/v1"
    assert dec["checks"]["b_noninferiority"]["lower_bound"] > -0.03
    path = write_decision(tmp_path, dec)
    saved = json.loads(path.read_text())
    assert saved["proposed_config"] == {"type": "sklearn", "artifact": "a"}
    assert (tmp_path / "decision.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "decision.svg").is_file()
    assert "SWAP" in (tmp_path / "decision.md").read_text()


def test_keep_when_student_is_not_shown_non_inferior() -> None:
    dec = decide(_inputs(_simulate(random.Random(2), 300, 0.87, -0.06)))
    assert dec["decision"] == "keep"
    assert dec["reasons"][0].startswith("(b) not shown non-inferior")


def test_keep_when_the_student_is_not_cheap_enough_at_this_volume() -> None:
    low = COST.model_copy(update={"monthly_volume": 1_000_000})  # the always-on instance floor dominates
    dec = decide(_inputs(_simulate(random.Random(3), 1000, 0.87, 0.03), cost=low))
    assert dec["decision"] == "keep"
    assert any(r.startswith("(c)") and "limit 0.7×" in r for r in dec["reasons"])
    assert dec["checks"]["c_cost"]["ratio"] > 0.7


def test_dedicated_hosting_is_stated_and_shared_hosting_pays_only_cpu_time(tmp_path) -> None:
    pairs = _simulate(random.Random(3), 1000, 0.87, 0.03)
    low = COST.model_copy(update={"monthly_volume": 1_000_000})
    dedicated = decide(_inputs(pairs, cost=low))
    assert dedicated["decision"] == "keep" and dedicated["checks"]["c_cost"]["student"]["hosting"] == "dedicated"
    write_decision(tmp_path / "d", dedicated)
    assert "Assumes dedicated hosting: one always-on" in (tmp_path / "d/decision.md").read_text()

    shared = CostSettings(monthly_volume=1_000_000, hosting="shared", hardware_usd_per_hour=0.10,
                          cpu_usd_per_hour=0.04, latency_slo_ms=200)
    dec = decide(_inputs(pairs, cost=shared))
    sc = dec["checks"]["c_cost"]["student"]
    assert sc["floor_per_request"] == 0 and sc["serving_per_request"] == pytest.approx(0.0004 * 0.04 / 3600)
    assert dec["decision"] == "swap", dec["reasons"]
    write_decision(tmp_path / "s", dec)
    assert "Assumes shared hosting: the student runs on the app's own servers" in (tmp_path / "s/decision.md").read_text()
    with pytest.raises(ValueError, match="set cpu_usd_per_hour"):
        CostSettings(monthly_volume=1, hosting="shared", hardware_usd_per_hour=0.1)


def test_keep_without_cost_assumptions_and_when_latency_breaks_the_slo() -> None:
    pairs = _simulate(random.Random(4), 1000, 0.87, 0.03)
    assert decide(_inputs(pairs, cost=None))["checks"]["c_cost"]["pass"] is False
    slow = decide(_inputs(pairs, p95=450.0))
    assert slow["decision"] == "keep" and any("exceeds the SLO" in r for r in slow["reasons"])


def test_keep_when_test_cases_are_not_human_validated() -> None:
    dec = decide(_inputs(_simulate(random.Random(5), 1000, 0.87, 0.03), non_human=["t1", "t2"]))
    assert dec["decision"] == "keep" and "not human-validated" in dec["reasons"][0]


def test_break_even_is_infinite_when_the_student_saves_nothing() -> None:
    assert math.isinf(break_even_volume(10.0, 0.001, 0.002))
    assert break_even_volume(10.0, 0.002, 0.001) == pytest.approx(10_000)


def test_class_guard_catches_one_collapsed_class_but_ignores_small_ones() -> None:
    pairs = _simulate(random.Random(6), 1000, 0.9, 0.0, discordant=0.04)
    broken = [Pair(p.case_id, p.label, p.llm_ok, p.student_ok and p.label != "class3") for p in pairs]
    guard = class_recall_guard(broken, 0.03)
    assert guard["failing"] == ["class3"] and not guard["pass"]
    assert decide(_inputs(broken))["decision"] == "keep"
    tiny = class_recall_guard(broken[:200], 0.03)  # 20 cases a class: below min_cases
    assert tiny["tested_classes"] == 0 and tiny["pass"]


def test_class_guard_has_power_against_a_ten_point_loss_in_one_class_of_100() -> None:
    """10 classes of 100 cases, 10 % discordant pairs. Holm rejects anything only when the smallest
    p-value is ≤ α/10, so these exact products bound the guard's pass and block rates from below."""
    classes, n, alpha = 10, 100, CLASS_ALPHA
    no_loss, loss = Cells.paired(0.0, 0.10), Cells.paired(-0.10, 0.10)

    def flagged(b: int, c: int) -> bool:
        return class_loss_p(b, c, n) <= alpha / classes and (b - c) / n < -0.03

    any_rejection = outcome_probability(n, no_loss, lambda b, c: class_loss_p(b, c, n) <= alpha / classes)
    assert (1 - any_rejection) ** classes >= 0.90  # no class loses: the guard passes
    assert 1 - outcome_probability(n, no_loss, flagged) >= 0.99  # and each no-loss class passes
    block = 1 - (1 - outcome_probability(n, loss, flagged)) * (1 - outcome_probability(n, no_loss, flagged)) ** 9
    assert block >= 0.80

    pairs = _simulate(random.Random(9), 900, 0.87, 0.0, classes=9) + [
        Pair(f"l{i}", "lossy", True, i >= 10) for i in range(100)]  # loses exactly 10 of 100
    assert class_recall_guard(pairs, 0.03)["failing"] == ["lossy"]


def _multinomial_swap_probability(n: int, cells: Cells, delta: float) -> float:
    """Brute force over every (b, c): the reference the exact operating characteristic must match."""
    p11 = 1 - cells.p10 - cells.p01
    return sum(math.factorial(n) / (math.factorial(b) * math.factorial(c) * math.factorial(n - b - c))
               * cells.p10 ** b * cells.p01 ** c * p11 ** (n - b - c)
               for b in range(n + 1) for c in range(n + 1 - b) if noninferior(b, c, n, delta, Z_FIRST))


def test_exact_operating_characteristic_matches_brute_force_and_decide() -> None:
    for cells in (Cells.paired(-0.03, 0.10), Cells.independent(0.8, 0.75), Cells.paired(0.05, 0.2)):
        assert swap_probability(60, cells, 0.03) == pytest.approx(_multinomial_swap_probability(60, cells, 0.03),
                                                                  abs=1e-12)
    rng = random.Random(7)
    for _ in range(60):  # the region the sums run over is the one decide() applies
        n = rng.randrange(100, 400)
        b, c = rng.randrange(0, 40), rng.randrange(0, 40)
        pairs = ([Pair(f"b{i}", "x", False, True) for i in range(b)] + [Pair(f"c{i}", "x", True, False)
                 for i in range(c)] + [Pair(f"a{i}", "x", True, True) for i in range(n - b - c)])
        check = decide(_inputs(pairs))["checks"]["b_noninferiority"]
        assert check["pass"] == noninferior(b, c, n, 0.03, Z_FIRST) == (check["lower_bound"] > -0.03)


SCENARIOS = {"10% discordant": lambda d: Cells.paired(d, 0.10),
             "independent errors": lambda d: Cells.independent(0.87, 0.87 + d)}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("n", [300, 1000])
def test_exact_size_at_minus_delta_is_at_most_5_percent(scenario: str, n: int) -> None:
    # Worse by δ = 0.03 (or more: the rate only falls): the rule opens a PR in at most 5% of golden sets.
    assert swap_probability(n, SCENARIOS[scenario](-0.03), 0.03) <= 0.05


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_exact_power_at_plus_two_points_is_at_least_80_percent(scenario: str) -> None:
    assert swap_probability(1000, SCENARIOS[scenario](0.02), 0.03) >= 0.80


def test_llm_transport_failures_do_not_raise_the_false_swap_rate() -> None:
    """2% of the LLM's calls fail in transport, at random, and the student is truly worse by δ: the
    failed cases leave the pairing, so the false-swap rate stays within 5% at N = 1,000. Scored as wrong
    answers (the old rule) the same failures hand the student the swap about half the time."""
    worse = Cells.paired(-0.03, 0.10)
    assert swap_probability_with_losses(1000, worse, 0.03, loss_rate=0.02) <= 0.05
    both_right = 0.87 - worse.p01  # LLM accuracy 0.87
    scored_as_wrong = Cells(worse.p10 + 0.02 * both_right, 0.98 * worse.p01)
    assert swap_probability(1000, scored_as_wrong, 0.03, alpha=0.05, correction=0) > 0.45  # as the rule was


def test_transport_errors_above_the_gate_refuse_the_decision() -> None:
    pairs = _simulate(random.Random(8), 1000, 0.87, 0.03)
    ok = decide(_inputs(pairs, llm_errors=ErrorCounts(1020, transport=20, output=3)))
    assert ok["decision"] == "swap" and not ok["refused"]
    assert ok["checks"]["errors"]["llm"] == {"n": 1020, "transport": 20, "output": 3,
                                             "transport_rate": 20 / 1020, "output_rate": 3 / 1020}
    refused = decide(_inputs(pairs, llm_errors=ErrorCounts(1060, transport=60)))
    assert refused["decision"] == "keep" and refused["refused"]
    assert refused["reasons"] == [("refusing to decide: 60 of 1060 LLM calls failed in transport (5.7% > "
                                  "max_error_rate 5.0%); re-run the evals once the provider recovers "
                                  "(answered calls stay cached)")]


def test_each_decision_on_a_test_split_spends_alpha_and_a_limit_asks_for_a_fresh_split() -> None:
    """k decisions at 5 % each would allow up to 1 − 0.95^k false swaps; spent as 0.05 · 6 / (π² k²),
    all of them together stay within 5 %."""
    assert sum(spent_alpha(SPLIT_ALPHA, k) for k in range(1, 100_000)) <= SPLIT_ALPHA
    pairs = _simulate(random.Random(10), 1000, 0.87, 0.03)
    levels = [decide(_inputs(pairs, prior=k))["checks"]["b_noninferiority"] for k in range(MAX_DECISIONS)]
    assert [b["alpha"] for b in levels] == [spent_alpha(SPLIT_ALPHA, k + 1) for k in range(MAX_DECISIONS)]
    assert levels[0]["alpha"] == FIRST_ALPHA and all(a["lower_bound"] > b["lower_bound"] for a, b in pairwise(levels))
    worse = Cells.paired(-0.03, 0.10)
    assert sum(swap_probability(1000, worse, 0.03, alpha=b["alpha"]) for b in levels) <= 0.05
    over = decide(_inputs(pairs, prior=MAX_DECISIONS))
    assert over["decision"] == "keep" and over["refused"]
    assert over["reasons"][0].startswith(f"refusing to decide: {MAX_DECISIONS} decisions were already made on this "
                                         "test split (evals/decisions/b.test.jsonl)")


def test_the_same_comparison_again_spends_no_more_alpha(tmp_path: Path) -> None:
    """A re-run from the cache (same student, same paired outcomes) is the same test; a new student's
    comparison is the next decision on the split."""
    from goldgate.decide.splitlog import SplitLog, comparison_key

    log = SplitLog(tmp_path / "decisions" / "b.test.jsonl")
    outcomes = [(f"c{i}", i % 3 != 0, i % 4 != 0) for i in range(40)]
    first = comparison_key("router", "llm", "student", "sha-a", outcomes)
    assert first == comparison_key("router", "llm", "student", "sha-a", list(reversed(outcomes)))

    def dec(key: str) -> dict:
        return {"created": "t", "slot": "router", "current": "llm", "proposed": "student", "decision": "swap",
                "checks": {"b_noninferiority": {"n": 40, "alpha": 0.03, "lower_bound": 0.0, "difference": 0.0,
                                                "comparison_key": key}}}

    assert log.prior(first) == 0
    log.record(dec(first))
    log.record(dec(first))
    assert len(log.entries()) == 1 and log.prior(first) == 0
    retrained = comparison_key("router", "llm", "student", "sha-b", outcomes)
    assert retrained != first and log.prior(retrained) == 1
    log.record(dec(retrained))
    assert [e["key"] for e in log.entries()] == [first, retrained]
