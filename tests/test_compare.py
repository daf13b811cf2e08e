"""`goldgate compare`: paired statistics, verdicts, flips, fingerprints, and safe markdown."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from scipy.stats import binomtest, norm

from goldgate.decide.compare import (
    compare_runs,
    paired_test,
    render_markdown,
)
from goldgate.decide.operating import Cells, outcome_probability
from goldgate.engine.results import build_summary, write_run

FINGERPRINTS = {"dataset": "banking77", "dataset_sha256": "d" * 64, "candidate": "sim-llm", "type": "llm",
                "model": "openai/sim-router", "params": {"temperature": 0}, "prompt": "evals/prompts/router.md",
                "prompt_sha256": "a" * 64}


def make_run(out: Path, outcomes: dict[str, bool | str], *, suite: str = "test_intent",
             fingerprints: dict[str, Any] | None = None, min_pass_rate: float | None = 0.8,
             outputs: dict[str, str] | None = None, cost: float = 1e-5, latency: float = 0.2) -> Path:
    """A real run directory (written by goldgate.engine.results) with one suite; True = passed."""
    records = []
    for cid, outcome in outcomes.items():
        status = outcome if isinstance(outcome, str) else ("passed" if outcome else "failed")
        label = (outputs or {}).get(cid, "right" if status == "passed" else "wrong")
        records.append({"suite": suite, "case_id": cid, "repeat": 0, "status": status,
                        "output": {"label": label, "text": label}, "expected": {"label": "right"},
                        "cost_usd": cost, "latency_s": latency, "message": "" if status == "passed" else "assert"})
    meta = {suite: {"name": suite, "dataset": "banking77", "fingerprints": fingerprints or FINGERPRINTS,
                    "gates": {"min_pass_rate": min_pass_rate, "max_error_rate": 0.05}}}
    summary = build_summary(meta, records, run_id=out.name, call_stats={}, wall_s=1.0)
    return write_run(out, summary, records)


def make_suites(out: Path, suites: dict[str, dict[str, bool | str]]) -> Path:
    """A run directory with several suites; True = passed."""
    records, meta = [], {}
    for suite, outcomes in suites.items():
        meta[suite] = {"name": suite, "dataset": "banking77", "fingerprints": FINGERPRINTS,
                       "gates": {"min_pass_rate": None, "max_error_rate": 0.05}}
        records += [{"suite": suite, "case_id": cid, "repeat": 0, "status": "passed" if ok else "failed",
                     "expected": {"label": "right"}, "output": {"label": "x", "text": "x"}, "message": ""}
                    for cid, ok in outcomes.items()]
    return write_run(out, build_summary(meta, records, run_id=out.name, call_stats={}, wall_s=1.0), records)


def goldgate(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "goldgate", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=120, check=False)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 10), (3, 12), (5, 5), (40, 61), (1, 0), (0, 6), (20, 4)])
def test_one_score_test_gives_the_verdict_and_the_interval(b: int, c: int) -> None:
    n = 200
    p, (lo, hi) = paired_test(b, c, n)
    assert -1 <= lo <= (b - c) / n <= hi <= 1
    assert (p < 0.05) == (lo > 0 or hi < 0)  # never a significant verdict with an interval through 0
    if b + c:  # at "no change" it is the continuity-corrected McNemar test, close to the exact one
        z = max(0.0, abs(b - c) - 1) / math.sqrt(b + c)
        assert p == pytest.approx(min(1.0, 2 * norm.sf(z)), abs=1e-9)
        assert p == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, abs=0.03)
    assert paired_test(c, b, n)[1] == pytest.approx((-hi, -lo))


def test_verdict_and_interval_agree_everywhere_at_n_60() -> None:
    for b in range(30):
        for c in range(30 - b):
            p, (lo, hi) = paired_test(b, c, 60)
            assert (p < 0.05) == (lo > 0 or hi < 0), (b, c, p, lo, hi)


def _exact_mcnemar(b: int, c: int) -> float:
    n = b + c
    return 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n)


def test_holm_keeps_unchanged_suites_from_being_called_worse() -> None:
    """Five unchanged suites of 200 cases, 10 % discordant: exactly how often the overall verdict is
    "worse". Holm rejects anything only if the smallest p is ≤ α/5, which bounds it from above."""
    suites, n, same = 5, 200, Cells.paired(0.0, 0.10)
    worse_before = outcome_probability(n, same, lambda b, c: c > b and _exact_mcnemar(b, c) < 0.05)
    worse_now = outcome_probability(n, same, lambda b, c: c > b and paired_test(b, c, n)[0] <= 0.05 / suites)
    assert 1 - (1 - worse_before) ** suites > 0.07  # 7.1 %
    assert 1 - (1 - worse_now) ** suites <= 0.05


def test_overall_verdict_is_holm_corrected_across_suites(tmp_path: Path) -> None:
    records: dict[str, dict[str, bool | str]] = {}
    base_runs, head_runs = {}, {}
    for k in range(5):
        records[f"s{k}"] = {f"c{i:03d}": i % 5 != 0 for i in range(200)}
    base_runs = records
    head_runs = {name: dict(cases) for name, cases in records.items()}
    for i in range(1, 12):  # s0: 11 regressions, 2 fixes: p ≈ 0.02, not below 0.05 / 5
        head_runs["s0"][f"c{5 * i + 1:03d}"] = False
    head_runs["s0"]["c000"] = head_runs["s0"]["c005"] = True
    base, head = make_suites(tmp_path / "base", base_runs), make_suites(tmp_path / "head", head_runs)
    cmp = compare_runs(base, head)
    s0 = cmp.suites[0]
    assert s0.verdict == "worse" and 0.01 < s0.p_value < 0.05 and not s0.holm_significant
    assert cmp.verdict == "no detectable change"
    assert "🔴 worse (not after Holm)" in render_markdown(cmp)
    for i in range(12, 20):  # 8 more regressions: significant after Holm too
        head_runs["s0"][f"c{5 * i + 1:03d}"] = False
    assert compare_runs(base, make_suites(tmp_path / "head2", head_runs)).verdict == "worse"


def test_regression_is_worse_with_flips_added_removed_and_changed_prompt(tmp_path: Path) -> None:
    ids = [f"c{i:03d}" for i in range(200)]
    base = make_run(tmp_path / "base", {cid: i % 10 != 0 for i, cid in enumerate(ids)} | {"gone": True})
    head_outcomes: dict[str, bool | str] = {cid: i % 10 != 0 and i % 7 != 0 for i, cid in enumerate(ids)}
    head_outcomes["c001"] = "error"
    head = make_run(tmp_path / "head", head_outcomes | {"new": False},
                    fingerprints=FINGERPRINTS | {"prompt_sha256": "b" * 64})
    cmp = compare_runs(base, head)
    s = cmp.suites[0]
    assert cmp.verdict == s.verdict == "worse"
    assert s.shared == 200 and s.fixed == 0
    assert s.regressed == len([i for i in range(200) if i % 10 and (i % 7 == 0 or i == 1)])
    assert {f.case_id for f in s.regressions} >= {"c001", "c007"}
    assert s.added == ["new"] and s.removed == ["gone"]
    assert set(s.changed) == {"prompt"}
    assert s.delta_ci[1] < 0 and s.p_value < 0.05

    proc = goldgate("compare", str(base), str(head), "--json", "--output", str(tmp_path / "c.json"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data == json.loads((tmp_path / "c.json").read_text())
    assert data["schema"] == "goldgate.compare/v1" and data["verdict"] == "worse"
    assert data["suites"][0]["regressions"][0]["case_id"] == "c001"
    assert goldgate("compare", str(base), str(head), "--fail-on-worse").returncode == 1


def test_small_change_is_no_detectable_change_and_improvement_is_better(tmp_path: Path) -> None:
    ids = [f"c{i:03d}" for i in range(100)]
    base = make_run(tmp_path / "base", {cid: i % 5 != 0 for i, cid in enumerate(ids)})
    slightly = make_run(tmp_path / "slightly", {cid: i % 5 != 0 or i == 0 for i, cid in enumerate(ids)})
    assert compare_runs(base, slightly).verdict == "no detectable change"
    fixed = make_run(tmp_path / "fixed", dict.fromkeys(ids, True))
    cmp = compare_runs(base, fixed)
    assert cmp.verdict == "better" and cmp.suites[0].fixed == 20 and cmp.suites[0].delta == pytest.approx(0.2)


def test_markdown_table_on_top_details_folded(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", {f"c{i}": True for i in range(40)})
    head = make_run(tmp_path / "head", {f"c{i}": i >= 12 for i in range(40)},
                    fingerprints=FINGERPRINTS | {"model": "openai/other"}, cost=2e-5)
    md = goldgate("compare", str(base), str(head)).stdout
    assert md.startswith("### goldgate: head vs base — 🔴 worse")
    table, details = md.index("| suite |"), md.index("<details>")
    assert table < details and md.count("<details>") == md.count("</details>") == 1
    assert "| model | FAIL |" in md
    assert "+$0.0100" in md  # Δ cost per 1k cases: (2e-5 − 1e-5) × 1000


def _render(md: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md)


@pytest.mark.parametrize("evil", [
    "<img src=x onerror=alert(1)>",
    "a | b | c",
    "</details><script>alert(1)</script>",
    "``` \n# Heading\n@octocat please merge",
    "`code` and ``more`` [link](javascript:alert(1))",
    "<!-- goldgate:evals -->",
])
def test_model_output_cannot_inject_markup(tmp_path: Path, evil: str) -> None:
    base = make_run(tmp_path / "base", {"c1": True, "c2": True})
    head = make_run(tmp_path / "head", {"c1": False, "c2": True}, outputs={"c1": evil})
    html = _render(render_markdown(compare_runs(base, head)))
    assert "<img" not in html and "<script" not in html and "<h1>" not in html
    assert 'href="javascript' not in html and "<!--" not in html
    row = next(r for r in html.split("<tr>") if "c1" in r)
    assert row.count("<td") == 4, row
    assert "@octocat" not in html or "<code>" in row
