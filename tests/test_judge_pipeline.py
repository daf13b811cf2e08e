"""Judges declared on the eval, as users drive them: pytester projects against a real sim. Each
output is handed to its judge in the same batch as the generations; the totals count the judges."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support import make_project, summary_of

JUDGE = """
[tool.goldgate.judges.j]
model = "openai/sim-judge"
rubric = "rubric.md"
api_base = "${GOLDGATE_SIM_URL}"
input_cost_per_token = 0.000001
output_cost_per_token = 0.000002
"""

EVAL = '''
import goldgate as gg
from goldgate.judges.judge import judge

@gg.eval("tiny", model="router", split="test", judges=["j"], min_pass_rate={min_pass_rate})
def test_judged(case, output, verdicts):
    # A check in the body on the same output is the pipeline's verdict, not a second call.
    assert judge("j").check(input=case.inputs["text"], output=output.label) is verdicts["j"]
    assert verdicts["j"].passed, verdicts["j"].rationale
'''


def _project(p: pytest.Pytester, *, extra_config: str = "", min_pass_rate: float = 0.5) -> pytest.Pytester:
    make_project(p.path)
    py = p.path / "pyproject.toml"
    py.write_text(py.read_text().replace("concurrency = 16", "concurrency = 16" + extra_config) + JUDGE)
    (p.path / "rubric.md").write_text("Pass when the output is the message's intent.\n", encoding="utf-8")
    p.makepyfile(test_evals=EVAL.format(min_pass_rate=min_pass_rate))
    return p


def _run(p: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    out = p.path / "run"
    res = p.runpytest_subprocess("-p", "no:cacheprovider", "--goldgate-out", str(out), *args)
    return res, summary_of(out)


def _cases(p: pytest.Pytester) -> list[dict]:
    return [json.loads(line) for line in (p.path / "run" / "cases.jsonl").read_text().splitlines()]


def test_declared_judge_counts_in_the_totals_and_a_rubric_edit_only_rejudges(pytester: pytest.Pytester,
                                                                             sim_env) -> None:
    p = _project(pytester)
    res, summary = _run(p)
    stats = sim_env.stats()
    assert stats["by_model"] == {"sim-router": 200, "sim-judge": 200}, stats
    suite = summary["suites"][0]
    cases = _cases(p)
    assert all(len(c["judges"]) == 1 for c in cases)  # the body's check did not record it twice
    judge_cost = sum(c["judges"][0]["cost_usd"] for c in cases)
    app_cost = sum(c["cost_usd"] for c in cases)
    assert suite["judge_cost_usd"] == pytest.approx(judge_cost) and judge_cost > 0
    assert suite["cost_usd"] == pytest.approx(app_cost + judge_cost)
    assert summary["totals"]["judge_cost_usd"] == pytest.approx(judge_cost)
    assert suite["judge_errors"] == 0 and summary["totals"]["llm_calls"] == 400
    verdicts = [c["judges"][0]["verdict"] for c in cases]
    assert suite["passed"] == verdicts.count("pass") and suite["failed"] == verdicts.count("fail")
    res.stdout.fnmatch_lines(["*judge $*", "*(judges $*"])

    (p.path / "rubric.md").write_text("Pass when the output is the message's intent. Be strict.\n")
    sim_env.reset()
    _, again = _run(p)
    assert sim_env.stats()["by_model"] == {"sim-judge": 200}  # every generation from the cache
    assert again["totals"]["llm_calls"] == 200 and again["suites"][0]["n"] == 200


def test_pooled_pipeline_stays_within_concurrency_and_matches_xdist(pytester: pytest.Pytester,
                                                                    monkeypatch, sim_key) -> None:
    from goldgate.sim.process import SimProcess
    from goldgate.sim.settings import SimSettings

    p = _project(pytester, extra_config="\ncall_processes = 2")
    text = (p.path / "pyproject.toml").read_text().replace("concurrency = 16", "concurrency = 8")
    (p.path / "pyproject.toml").write_text(text)
    with SimProcess(SimSettings(keys=[sim_key], accuracy=0.8, latency_ms=20, port=0)) as sim:
        monkeypatch.setenv("GOLDGATE_SIM_URL", sim.url)
        res, pooled = _run(p)
        stats = sim.stats()
        assert stats["requests"] == 400  # (exit 1: judge `j` has no calibration record)
        assert stats["max_inflight"] <= 8, stats  # generations and judges share one budget
        (p.path / ".goldgate" / "cache.sqlite").unlink()
        sim.reset()
        res_n, par = _run(p, "-n", "2")
        assert sim.stats()["requests"] == 400 and sim.stats()["max_inflight"] <= 8
    keys = ("n", "passed", "failed", "errors", "judge_cost_usd", "judge_errors")
    assert [par["suites"][0][k] for k in keys] == [pooled["suites"][0][k] for k in keys]
    assert res_n.ret == res.ret


def test_k_selects_and_x_stops_the_judge_calls_nobody_needs(pytester: pytest.Pytester, monkeypatch,
                                                            sim_env, sim_key) -> None:
    from goldgate.sim.process import SimProcess
    from goldgate.sim.settings import SimSettings

    p = _project(pytester, extra_config="\ncall_processes = 2", min_pass_rate=0.0)
    _run(p, "-k", "c-0001 or c-0002")
    assert sim_env.stats()["by_model"] == {"sim-router": 2, "sim-judge": 2}

    (p.path / ".goldgate" / "cache.sqlite").unlink()
    text = (p.path / "pyproject.toml").read_text().replace("concurrency = 16", "concurrency = 4")
    (p.path / "pyproject.toml").write_text(text)
    with SimProcess(SimSettings(keys=[sim_key], accuracy=0.5, latency_ms=100, port=0)) as slow:
        monkeypatch.setenv("GOLDGATE_SIM_URL", slow.url)
        res = p.runpytest_subprocess("-p", "no:cacheprovider", "-x", "--goldgate-no-progress")
        made = slow.stats()["requests"]
        time.sleep(0.5)
        assert slow.stats()["requests"] == made  # nothing is left calling
    res.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    assert res.ret == 1 and made < 120  # a full run is 400 calls, 10 s at 4 in flight


def test_judge_errors_are_counted_and_make_the_case_an_error(pytester: pytest.Pytester, monkeypatch,
                                                             sim_key) -> None:
    from goldgate.sim.process import SimProcess
    from goldgate.sim.settings import SimSettings

    p = _project(pytester)
    with SimProcess(SimSettings(keys=[sim_key], judge_garbage_rate=1.0, port=0)) as garbage:
        monkeypatch.setenv("GOLDGATE_SIM_URL", garbage.url)
        res, summary = _run(p, "-k", "c-000")
    suite = summary["suites"][0]
    assert suite["n"] == 10 and suite["errors"] == 10 and suite["judge_errors"] == 10
    assert summary["totals"]["judge_errors"] == 10 and res.ret == 1
    assert all(c["status"] == "error" and "unparseable verdict" in c["message"] for c in _cases(p))


def test_verdicts_fixture_needs_declared_judges(pytester: pytest.Pytester, sim_env) -> None:
    make_project(pytester.path)
    pytester.makepyfile(test_evals='''
import goldgate as gg

@gg.eval("tiny", model="router", split="test")
def test_x(case, output, verdicts):
    pass
''')
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "c-0001")
    res.stdout.fnmatch_lines(["*the `verdicts` fixture needs @goldgate.eval(..., judges=*"])
    assert res.ret != 0


def test_unknown_declared_judge_is_one_collection_error(pytester: pytest.Pytester, sim_env) -> None:
    p = _project(pytester)
    p.makepyfile(test_evals=EVAL.format(min_pass_rate=0.5).replace('judges=["j"]', 'judges=["nope"]'))
    res = p.runpytest_subprocess("-p", "no:cacheprovider")
    res.stderr.fnmatch_lines(["*no judge 'nope' in [[]tool.goldgate.judges[]] (known: j)*"])
    assert res.ret != 0 and sim_env.stats()["requests"] == 0


def test_calibrate_fresh_sees_a_model_changed_behind_its_name(tmp_path: Path) -> None:
    """The cached verdicts hide a judge model that got worse; --fresh asks again and replaces them."""
    from test_judge import goldgate, sim_settings
    from test_judge import make_project as judge_project

    from goldgate.sim.process import SimProcess

    root = judge_project(tmp_path / "p")
    record = root / "evals" / "judges" / "j.calibration.json"
    with SimProcess(sim_settings()) as good:
        assert goldgate("judge", "calibrate", "j", "--no-progress", cwd=root, url=good.url).returncode == 0
    kappa = json.loads(record.read_text())["kappa"]
    with SimProcess(sim_settings(judge_agreement=0.6)) as drifted:
        cached = goldgate("judge", "calibrate", "j", "--no-progress", cwd=root, url=drifted.url)
        assert drifted.stats()["requests"] == 0 and json.loads(record.read_text())["kappa"] == kappa
        assert cached.returncode == 0
        fresh = goldgate("judge", "calibrate", "j", "--fresh", "--no-progress", cwd=root, url=drifted.url)
        assert drifted.stats()["judge_requests"] >= 200
        assert json.loads(record.read_text())["kappa"] < kappa - 0.2
        assert fresh.returncode == 1, fresh.stdout
        again = goldgate("judge", "calibrate", "j", "--no-progress", cwd=root, url=drifted.url)
    # The fresh answers replaced the cached ones: a plain calibrate now reads the drifted verdicts.
    assert json.loads(record.read_text())["kappa"] < kappa - 0.2 and again.returncode == 1
