"""Eval runs under faults: 429 storms, 500s, hung requests, SIGKILL mid-run, bad config up front."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import eval_source, golden_records, make_project, summary_of, write_jsonl

from goldgate.calls.base import CallRequest
from goldgate.calls.llm import LLMClient
from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

PYTEST = [sys.executable, "-m", "pytest", "evals", "-q", "--tb=no", "-rN", "-p", "no:cacheprovider"]


def _project(tmp_path: Path, *, timeout_s: float = 10, max_retries: int = 4, concurrency: int = 16) -> Path:
    make_project(tmp_path, timeout_s=timeout_s, max_retries=max_retries)
    py = tmp_path / "pyproject.toml"
    py.write_text(py.read_text().replace("concurrency = 16", f"concurrency = {concurrency}"))
    (tmp_path / "evals" / "test_evals.py").write_text(eval_source(min_pass_rate=0.0))
    return tmp_path


def _run(project: Path, url: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = project / "run"
    res = subprocess.run([*PYTEST, "--goldgate-out", str(out), *args], check=False, cwd=project, capture_output=True, text=True,
                         env={**os.environ, "GOLDGATE_SIM_URL": url}, timeout=300)
    return res, summary_of(out)


def _cases(project: Path) -> list[dict]:
    return [json.loads(line) for line in (project / "run" / "cases.jsonl").read_text().splitlines()]


def test_mixed_faults_every_case_ends_once(tmp_path: Path, sim_key: Path) -> None:
    project = _project(tmp_path, timeout_s=1.0, max_retries=3)
    settings = SimSettings(keys=[sim_key], rate_429=0.05, retry_after_s=0.1, rate_500=0.02, rate_hang=0.01,
                           hang_s=30, port=0)
    with SimProcess(settings) as sim:
        res, summary = _run(project, sim.url)
        stats = sim.stats()
    s = summary["suites"][0]
    cases = _cases(project)
    assert len(cases) == 200 and len({c["case_id"] for c in cases}) == 200  # none missing, none twice
    assert s["passed"] + s["failed"] + s["errors"] == s["n"] == 200
    assert stats["by_status"].get("429", 0) > 0 and stats["by_status"].get("500", 0) > 0 and stats["hangs"] > 0
    assert stats["requests"] <= 200 * 4  # retries are bounded (1 try + 3 retries)
    assert summary["totals"]["llm_calls"] >= 200 + stats["by_status"]["429"] + stats["by_status"]["500"]
    assert s["error_rate"] == s["errors"] / 200 and s["gate"]["checks"][-1]["name"] == "max_error_rate"
    assert res.returncode in (0, 1)


@pytest.mark.parametrize("processes", [1, 2], ids=["in-process", "call-pool"])
def test_counters_match_the_server_under_sporadic_faults(tmp_path: Path, sim_key: Path, processes: int) -> None:
    """Every request the sim saw is one llm_call, every 429 one throttle, on either call path; and a
    429 now and then is not a storm, so the concurrency limit is not driven down to its floor."""
    project = _project(tmp_path, timeout_s=10, max_retries=4, concurrency=32)
    py = project / "pyproject.toml"
    py.write_text(py.read_text().replace("[tool.goldgate]\n", f"[tool.goldgate]\ncall_processes = {processes}\n", 1))
    settings = SimSettings(keys=[sim_key], rate_429=0.05, retry_after_s=0.2, rate_500=0.05, rate_hang=0.01,
                           hang_s=0.5, latency_ms=5, port=0)
    with SimProcess(settings) as sim:
        _, summary = _run(project, sim.url)
        stats = sim.stats()
    t = summary["totals"]
    assert len(_cases(project)) == 200 and t["errors"] == 0
    assert stats["by_status"].get("429", 0) > 0 and stats["by_status"].get("500", 0) > 0
    assert t["llm_calls"] == stats["requests"]
    assert t["throttled"] == stats["by_status"]["429"]
    assert t["min_concurrency"] >= 32 // processes // 2  # at most one cut from the ceiling


def test_error_gate_reports_the_error_rate(tmp_path: Path, sim_key: Path) -> None:
    project = _project(tmp_path, timeout_s=0.5, max_retries=0)
    with SimProcess(SimSettings(keys=[sim_key], rate_500=0.25, port=0)) as sim:
        res, summary = _run(project, sim.url)
    s = summary["suites"][0]
    assert 20 < s["errors"] < 80 and res.returncode == 1
    assert f"max_error_rate: {s['errors'] / 200:.4g} <= 0.05 FAILED" in s["gate"]["reasons"][0]
    errors = [c for c in _cases(project) if c["status"] == "error"]
    assert all("InternalServerError" in c["message"] for c in errors)


def test_retry_after_is_honoured_and_retries_are_bounded(sim_key: Path) -> None:
    with SimProcess(SimSettings(keys=[sim_key], rate_429=1.0, retry_after_s=0.3, port=0)) as sim:
        client_kw = {"timeout_s": 5, "max_retries": 2}
        req = CallRequest(model="openai/sim", messages=[{"role": "user", "content": "hi"}], api_base=sim.url,
                          input_cost_per_token=0, output_cost_per_token=0)

        async def go():
            return await LLMClient(**client_kw).complete(req)

        t0 = time.perf_counter()
        res = asyncio.run(go())
        waited = time.perf_counter() - t0
        assert sim.stats()["by_status"] == {"429": 3}
    assert res.error and "gave up after 3 attempts" in res.error and res.attempts == 3
    assert waited >= 0.6  # two Retry-After waits of 0.3 s


def test_hung_requests_time_out_as_errors(tmp_path: Path, sim_key: Path) -> None:
    project = _project(tmp_path, timeout_s=0.5, max_retries=1)
    with SimProcess(SimSettings(keys=[sim_key], rate_hang=1.0, hang_s=120, port=0)) as sim:
        res, summary = _run(project, sim.url, "-k", "c-000")  # 10 cases
        assert sim.stats()["hangs"] == 20
    s = summary["suites"][0]
    assert s["n"] == 10 and s["errors"] == 10 and res.returncode == 1
    assert "Timeout" in _cases(project)[0]["message"] or "timed out" in _cases(project)[0]["message"]


def test_adaptive_concurrency_backs_off_on_a_429_storm(tmp_path: Path, sim_key: Path) -> None:
    project = _project(tmp_path, concurrency=32, max_retries=8)
    with SimProcess(SimSettings(keys=[sim_key], max_inflight=4, retry_after_s=0.05, latency_ms=20, port=0)) as sim:
        _, summary = _run(project, sim.url)
    t = summary["totals"]
    assert summary["suites"][0]["errors"] == 0 and summary["suites"][0]["n"] == 200
    assert t["throttled"] > 0 and t["min_concurrency"] <= 8  # halved from 32 at least twice


def test_sigkill_mid_run_resumes_with_only_the_missing_calls(tmp_path: Path, sim_key: Path) -> None:
    project = _project(tmp_path, concurrency=4)
    cache = project / ".goldgate" / "cache.sqlite"
    with SimProcess(SimSettings(keys=[sim_key], latency_ms=150, port=0)) as sim:
        env = {**os.environ, "GOLDGATE_SIM_URL": sim.url}
        proc = subprocess.Popen([*PYTEST, "--goldgate-no-progress"], cwd=project, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        done = 0
        deadline = time.monotonic() + 120
        while done < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
            if cache.exists():
                try:
                    with sqlite3.connect(cache) as db:
                        done = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(cache) as db:  # readable after SIGKILL
            kept = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        assert 40 <= kept < 200
        sim.reset()
        _, summary = _run(project, sim.url)
        assert sim.stats()["requests"] == 200 - kept
    assert summary["suites"][0]["n"] == 200 and summary["totals"]["cache_hits"] == kept


def test_image_inputs_reach_the_model_as_image_parts(tmp_path: Path) -> None:
    make_project(tmp_path)
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "receipt.png").write_bytes(png)
    recs = golden_records(6)
    for i, r in enumerate(recs):
        r["inputs"]["photo"] = "img/receipt.png" if i % 2 else f"https://example.test/img/{i}.png"
    golden = write_jsonl(tmp_path / "evals" / "goldens" / "tiny.jsonl", recs)
    (tmp_path / "prompts" / "router.md").write_text("## user\nMessage: {{ text }}\n{{ photo }}\n")
    (tmp_path / "evals" / "test_evals.py").write_text(eval_source(min_pass_rate=0.0))
    with SimProcess(SimSettings(keys=[golden], accuracy=1.0, format_noise=0, port=0)) as sim:
        _, summary = _run(tmp_path, sim.url)
        assert sim.stats()["image_parts"] == 6
    assert summary["suites"][0]["n"] == 6 and summary["suites"][0]["errors"] == 0


def test_unusable_config_fails_before_any_model_call(tmp_path: Path, sim_env) -> None:
    project = _project(tmp_path)
    py = project / "pyproject.toml"
    py.write_text(py.read_text().replace("input_cost_per_token = 0.000001\noutput_cost_per_token = 0.000002\n", "", 1)
                  .replace('model = "openai/sim-router"', 'model = "openai/not-a-priced-model"'))
    res = subprocess.run([*PYTEST], check=False, cwd=project, capture_output=True, text=True,
                         env={**os.environ, "GOLDGATE_SIM_URL": sim_env.url})
    assert res.returncode == 4
    assert "has no price in litellm's price map; set input_cost_per_token" in res.stderr + res.stdout
    assert sim_env.stats()["requests"] == 0
    py.write_text(py.read_text().replace("concurrency = 16", "concurrency = 16\ncall_processes = 2"))
    res = subprocess.run([*PYTEST], check=False, cwd=project, capture_output=True, text=True,
                         env={**os.environ, "GOLDGATE_SIM_URL": sim_env.url})  # the same from the call pool
    assert res.returncode == 4 and "passed" not in res.stdout
    assert "has no price in litellm's price map; set input_cost_per_token" in res.stderr + res.stdout
    assert sim_env.stats()["requests"] == 0
    (project / "prompts" / "router.md").write_text("## user\n{{ nope }}\n")
    res = subprocess.run([*PYTEST], check=False, cwd=project, capture_output=True, text=True,
                         env={**os.environ, "GOLDGATE_SIM_URL": sim_env.url})
    assert res.returncode == 4 and "template slot(s) {{nope}} not in the case inputs" in res.stderr
    assert sim_env.stats()["requests"] == 0


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_call_workers_dying_mid_run_give_one_clear_error(tmp_path: Path, sim_key: Path) -> None:
    project = _project(tmp_path, concurrency=4)
    py = project / "pyproject.toml"
    py.write_text(py.read_text().replace("concurrency = 4", "concurrency = 4\ncall_processes = 2"))
    with SimProcess(SimSettings(keys=[sim_key], latency_ms=100, port=0)) as sim:
        proc = subprocess.Popen([*PYTEST, "--goldgate-no-progress"], cwd=project, text=True,
                                env={**os.environ, "GOLDGATE_SIM_URL": sim.url},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while not workers and time.monotonic() < deadline:  # the pool's forked workers, once calling
            time.sleep(0.2)
            if sim.stats()["requests"] >= 10:
                workers = [w for pool in _children(proc.pid) for w in _children(pool)]
        for w in workers:
            os.kill(w, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    assert workers and proc.returncode == 4
    assert "goldgate: a call worker was killed by SIGKILL; answers it committed are cached, rerun for the rest" in err
    assert "KeyError" not in out + err  # tests after the crash error with the same clear reason
