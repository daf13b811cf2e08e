"""`goldgate compare`: paired statistics, verdicts, flips, fingerprints, and safe markdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from scipy.stats import binomtest

from goldgate.decide.compare import (
    compare_runs,
    mcnemar_exact,
    paired_delta_interval,
    render_markdown,
)
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


def goldgate(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "goldgate", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=120, check=False)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 10), (3, 12), (5, 5), (40, 61), (1, 0)])
def test_mcnemar_exact_matches_binomial_test(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)


def test_paired_interval_contains_delta_flips_sign_and_narrows() -> None:
    lo, hi = paired_delta_interval(70, 5, 15, 10)
    assert -1 <= lo < (5 - 15) / 100 < hi <= 1
    assert paired_delta_interval(70, 15, 5, 10) == pytest.approx((-hi, -lo))
    lo4, hi4 = paired_delta_interval(280, 20, 60, 40)
    assert hi4 - lo4 < hi - lo
    assert paired_delta_interval(100, 0, 0, 0)[0] < 0 < paired_delta_interval(100, 0, 0, 0)[1]


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
