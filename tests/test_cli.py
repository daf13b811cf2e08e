"""The CLI as a subprocess: run, report, config errors as one line with no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import eval_source, make_project, run_cli, summary_of

TWIN = '''

@gg.eval("tiny", model="router", split="test", min_pass_rate=0.5)
def test_intent_routed_by_the_production_prompt(case, output):
    assert output.label == case.expected["label"]
'''


def _suite_column(table: str) -> str:
    """The terminal table's first column, its folded lines joined back together."""
    return "".join(line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│"))


def test_run_then_report(tmp_path: Path, sim_env) -> None:
    make_project(tmp_path)
    (tmp_path / "evals" / "test_evals.py").write_text(eval_source(min_pass_rate=0.5) + TWIN)
    res = run_cli("run", "-q", "--tb=no", "-p", "no:randomly", cwd=tmp_path)  # pytest's options, no `--`
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    (out,) = (tmp_path / ".goldgate" / "runs").iterdir()
    assert [s["n"] for s in summary_of(out)["suites"]] == [200, 200]
    rep = run_cli("report", str(out), cwd=tmp_path, env={"COLUMNS": "80"})
    assert rep.returncode == 0 and "PASS" in rep.stdout and "…" not in rep.stdout
    column = _suite_column(rep.stdout)
    assert "evals/test_evals.py::test_intent" in column
    assert "evals/test_evals.py::test_intent_routed_by_the_production_prompt" in column
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
