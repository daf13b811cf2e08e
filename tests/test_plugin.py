"""The pytest plugin as users drive it: pytester projects run in a subprocess against a real sim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import eval_source, make_project, summary_of


@pytest.fixture
def project(pytester: pytest.Pytester, sim_env) -> pytest.Pytester:
    make_project(pytester.path)
    return pytester


def _run(p: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    out = p.path / "run"
    res = p.runpytest_subprocess("-p", "no:cacheprovider", "--goldgate-out", str(out), *args)
    return res, summary_of(out)


def test_gate_below_pass_rate_exits_0_even_with_failed_cases(project: pytest.Pytester, sim_env) -> None:
    project.makepyfile(test_evals=eval_source(min_pass_rate=0.5))
    res, summary = _run(project)
    suite = summary["suites"][0]
    assert res.ret == 0, res.stdout.str()
    assert suite["failed"] > 0 and suite["passed"] > 0
    assert suite["n"] == 200 and suite["passed"] + suite["failed"] + suite["errors"] == 200
    assert suite["gate"]["status"] == "pass"
    res.stdout.fnmatch_lines(["*goldgate*", "*test_intent*200*PASS*"])
    assert sim_env.stats()["requests"] == 200


def test_gate_above_pass_rate_exits_1_and_names_the_gate(project: pytest.Pytester) -> None:
    project.makepyfile(test_evals=eval_source(min_pass_rate=0.99))
    res, summary = _run(project)
    assert res.ret == 1
    assert summary["status"] == "fail"
    assert summary["suites"][0]["gate"]["reasons"][0].startswith("min_pass_rate")
    res.stdout.fnmatch_lines(["*gate failed: test_evals.py::test_intent: min_pass_rate*FAILED*"])  # the node id


def test_strict_mode_fails_on_any_case_failure(project: pytest.Pytester) -> None:
    project.makepyfile(test_evals=eval_source(min_pass_rate=0.5))
    res, _ = _run(project, "--goldgate-strict")
    assert res.ret == 1


def test_summary_schema_and_cases_file(project: pytest.Pytester) -> None:
    project.makepyfile(test_evals=eval_source(min_pass_rate=0.5))
    _, summary = _run(project)
    assert summary["schema"] == "goldgate.run/v1"
    s = summary["suites"][0]
    for key in ("name", "n", "passed", "failed", "errors", "pass_rate", "pass_rate_ci", "cost_usd", "gate"):
        assert key in s
    lo, hi = s["pass_rate_ci"]
    assert lo < s["pass_rate"] < hi
    assert s["cost_usd"] > 0 and s["fingerprints"]["dataset_sha256"] and s["fingerprints"]["prompt_sha256"]
    for key in ("cases", "cost_usd", "llm_calls", "cache_hits"):
        assert key in summary["totals"]
    cases = [json.loads(line) for line in (project.path / "run" / "cases.jsonl").read_text().splitlines()]
    assert len(cases) == 200 and {c["status"] for c in cases} <= {"passed", "failed"}
    assert all(c["output"]["label"] for c in cases)


def test_second_run_is_served_from_cache(project: pytest.Pytester, sim_env) -> None:
    project.makepyfile(test_evals=eval_source())
    _, first = _run(project)
    sim_env.reset()
    _, second = _run(project)
    assert sim_env.stats()["requests"] == 0
    assert second["totals"]["llm_calls"] == 0 and second["totals"]["cache_hits"] == 200
    assert second["suites"][0]["passed"] == first["suites"][0]["passed"]


def test_xdist_gives_the_same_totals_without_duplicate_calls(project: pytest.Pytester, sim_env) -> None:
    project.makepyfile(test_evals=eval_source())
    res_n, par = _run(project, "-n", "2")
    assert sim_env.stats()["requests"] == 200  # each case called once across both workers
    (project.path / ".goldgate" / "cache.sqlite").unlink()
    res_1, single = _run(project)
    keys = ("n", "passed", "failed", "errors")
    assert [par["suites"][0][k] for k in keys] == [single["suites"][0][k] for k in keys]
    assert res_n.ret == res_1.ret == 0


def test_calls_spread_over_processes_give_the_same_results(project: pytest.Pytester, sim_env) -> None:
    project.makepyfile(test_evals=eval_source())
    _, inproc = _run(project)
    (project.path / ".goldgate" / "cache.sqlite").unlink()
    py = project.path / "pyproject.toml"
    py.write_text(py.read_text().replace("concurrency = 16", "concurrency = 16\ncall_processes = 2"))
    sim_env.reset()
    res, pooled = _run(project)
    assert res.ret == 0 and sim_env.stats()["requests"] == 200
    keys = ("n", "passed", "failed", "errors", "cost_usd")
    assert [pooled["suites"][0][k] for k in keys] == [inproc["suites"][0][k] for k in keys]
    assert pooled["totals"]["llm_calls"] == 200


def test_bodies_run_as_answers_land_and_x_stops_the_calls_left(pytester: pytest.Pytester, monkeypatch, sim_key) -> None:
    """Pooled answers stream into the test bodies: -x ends the run at the first failing case
    instead of after every call, and no worker goes on calling once pytest has stopped."""
    import time

    from goldgate.sim.process import SimProcess
    from goldgate.sim.settings import SimSettings

    make_project(pytester.path)
    py = pytester.path / "pyproject.toml"
    py.write_text(py.read_text().replace("concurrency = 16", "concurrency = 4\ncall_processes = 2"))
    pytester.makepyfile(test_evals=eval_source(min_pass_rate=0.0))
    with SimProcess(SimSettings(keys=[sim_key], accuracy=0.5, latency_ms=100, port=0)) as slow:
        monkeypatch.setenv("GOLDGATE_SIM_URL", slow.url)
        res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-x", "--goldgate-no-progress")
        made = slow.stats()["requests"]
        time.sleep(0.5)
        assert slow.stats()["requests"] == made  # nothing is left calling
    res.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    assert res.ret == 1 and made < 60  # a full run is 200 calls, 5 s at 4 in flight


def test_a_fixture_asking_for_streaming_outputs_makes_no_second_call(project: pytest.Pytester, sim_env) -> None:
    """A module fixture that predicts every case up front (the judge pattern) while the pool's
    answers are still streaming in waits for them; nothing is called twice."""
    py = project.path / "pyproject.toml"
    py.write_text(py.read_text().replace("concurrency = 16", "concurrency = 16\ncall_processes = 2"))
    project.makepyfile(test_evals=eval_source(min_pass_rate=0.0) + """
import pytest

@pytest.fixture(scope="module", autouse=True)
def _ahead(request):
    cases = [i.callspec.params["case"] for i in request.session.items if hasattr(i, "callspec")]
    assert len(gg.load_model("router").predict_many([c.inputs for c in cases])) == 200
""")
    res, summary = _run(project)
    assert res.ret == 0 and summary["suites"][0]["n"] == 200
    assert sim_env.stats()["requests"] == 200


def test_errors_are_counted_separately_and_gate_on_error_rate(pytester: pytest.Pytester, monkeypatch, sim_key) -> None:
    from goldgate.sim.process import SimProcess
    from goldgate.sim.settings import SimSettings

    make_project(pytester.path, timeout_s=2, max_retries=1)
    pytester.makepyfile(test_evals=eval_source(min_pass_rate=0.0))
    with SimProcess(SimSettings(keys=[sim_key], rate_500=1.0, port=0)) as broken:
        monkeypatch.setenv("GOLDGATE_SIM_URL", broken.url)
        res, summary = _run(pytester)
        assert broken.stats()["by_status"]["500"] == 400  # 1 try + 1 retry per case, bounded
    s = summary["suites"][0]
    assert (s["errors"], s["passed"], s["failed"]) == (200, 0, 0)
    assert s["gate"]["status"] == "fail" and "max_error_rate" in s["gate"]["reasons"][0]
    assert res.ret == 1


def test_bad_golden_line_is_one_clear_collection_error(project: pytest.Pytester) -> None:
    golden = project.path / "evals" / "goldens" / "tiny.jsonl"
    lines = golden.read_text().splitlines()
    lines[6] = lines[6][:-1]
    golden.write_text("\n".join(lines) + "\n")
    project.makepyfile(test_evals=eval_source())
    res = project.runpytest_subprocess("-p", "no:cacheprovider")
    assert res.ret == 4
    res.stderr.fnmatch_lines([f"ERROR: goldgate: {golden}:7: invalid JSON*"])
    assert "Traceback" not in res.stdout.str() + res.stderr.str()


def test_candidate_override_and_unknown_slot(project: pytest.Pytester) -> None:
    project.makepyfile(test_evals=eval_source(min_pass_rate=0.0))
    _, weak = _run(project, "--goldgate-candidate", "router=sim-weak")
    _, strong = _run(project)
    assert weak["suites"][0]["candidate"] == "sim-weak"
    assert weak["suites"][0]["pass_rate"] < strong["suites"][0]["pass_rate"]
    project.makepyfile(test_evals=eval_source().replace('model="router"', 'model="nope"'))
    res = project.runpytest_subprocess("-p", "no:cacheprovider")
    res.stderr.fnmatch_lines(["*no model slot 'nope'*"])
    assert res.ret == 4


def test_collect_only_makes_no_calls(project: pytest.Pytester, sim_env) -> None:
    project.makepyfile(test_evals=eval_source())
    res = project.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["*test_intent?c-0199?*"])
    assert sim_env.stats()["requests"] == 0


def test_repeats_report_pass_at_k_and_flakiness(project: pytest.Pytester, sim_env) -> None:
    project.makepyfile(test_evals=eval_source(extra=", repeats=3"))
    _, summary = _run(project)
    s = summary["suites"][0]
    assert s["n"] == 600 and sim_env.stats()["requests"] == 600  # each repeat is its own cache key
    r = s["repeats"]
    assert r["k"] == 3 and 0 <= r["pass_all_k"] <= r["pass_at_k"] <= 1
    assert len(r["per_case_pass_rate"]) == 200


def test_case_fixture_without_decorator_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_x(case):\n    pass\n\ndef test_y(output):\n    pass\n")
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    res.stdout.fnmatch_lines(["*test_plain.py::test_x: the `case` fixture needs @goldgate.eval*",
                              "*test_plain.py::test_y: the `case` fixture needs @goldgate.eval*"])
    assert res.ret != 0


def test_unrelated_tests_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n\ndef test_bad():\n    assert False\n")
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert res.ret == 1
    res.assert_outcomes(passed=1, failed=1)
    assert not Path(pytester.path / ".goldgate").exists()
