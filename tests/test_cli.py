"""The CLI as a subprocess: run, report, config errors as one line with no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import eval_source, make_project, run_cli, summary_of


def test_run_then_report(tmp_path: Path, sim_env) -> None:
    make_project(tmp_path)
    (tmp_path / "evals" / "test_evals.py").write_text(eval_source(min_pass_rate=0.5))
    res = run_cli("run", "--", "-q", "--tb=no", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:]
    (out,) = (tmp_path / ".goldgate" / "runs").iterdir()
    assert summary_of(out)["suites"][0]["n"] == 200
    rep = run_cli("report", str(out), cwd=tmp_path)
    assert rep.returncode == 0 and "test_intent" in rep.stdout and "PASS" in rep.stdout
    md = run_cli("report", "--markdown", cwd=tmp_path)  # latest run by default
    assert md.returncode == 0 and md.stdout.startswith("### goldgate run") and "| test_intent | 200 |" in md.stdout


def test_report_of_failing_run_exits_1_and_bad_dir_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"schema": "other/v9"}))
    res = run_cli("report", str(run), cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "expected 'goldgate.run/v1'" in res.stderr
    res = run_cli("report", str(tmp_path / "missing"), cwd=tmp_path)
    assert res.returncode == 2 and "not found" in res.stderr and "Traceback" not in res.stderr


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    make_project(tmp_path)
    py = tmp_path / "pyproject.toml"
    py.write_text(py.read_text().replace('use = "sim-llm"', 'use = "gpt-9"'))
    res = run_cli("run", cwd=tmp_path)
    assert res.returncode == 2
    assert "[tool.goldgate.slots.router] use = 'gpt-9' names no candidate" in res.stderr
    py.write_text(py.read_text().replace('use = "gpt-9"', 'use = "sim-llm"').replace("concurrency = 16", "concurrency = -1"))
    res = run_cli("run", cwd=tmp_path)
    assert res.returncode == 2 and "[tool.goldgate] concurrency: Input should be greater than or equal to 1" in res.stderr
    assert "Traceback" not in res.stderr


def test_import_goldgate_is_light() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import goldgate"], capture_output=True,
                         text=True, check=False)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert "goldgate" in imported
    for heavy in ("litellm", "torch", "transformers", "peft", "argilla", "github", "datasets", "sklearn"):
        assert heavy not in imported, heavy
