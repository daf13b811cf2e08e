"""`goldgate demo`, the README's front door, run as a user runs it: on this repository's own project
(config, prompts, judges, suites), with Banking77 sampled down so it fits in a test. It must finish
with exit 0, distil both students (TF-IDF and the real MiniLM encoder), put them and the LLM on one
decision chart, and, run again, make no request to the sim (every call from the cache)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_workflow_runs import _sample

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _project(root: Path) -> Path:
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(REPO / "evals", root / "evals", ignore=shutil.ignore_patterns("__pycache__", "decisions"))
    golden = root / "evals/goldens/banking77.jsonl"
    calibration = (root / "evals/goldens/banking77-judge-calibration.jsonl").read_text(encoding="utf-8")
    golden.write_text(_sample(golden.read_text(encoding="utf-8"), calibration), encoding="utf-8")
    return root


def _demo(root: Path, out: str) -> tuple[str, Path]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "GOLDGATE_NO_INSTALL": "1"}
    proc = subprocess.run([sys.executable, "-m", "goldgate", "demo", "--out", out], cwd=root, env=env,
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, root / out


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("torch", "onnxruntime")),
                    reason="the encoder student needs goldgate[distill]")
def test_demo_distils_both_students_decides_on_one_chart_and_reruns_from_the_cache(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    first, run = _demo(root, "run1")
    assert "3/5 distil: TF-IDF" in first and "3/5 distil: MiniLM encoder student" in first, first
    assert re.search(r"trained encoder in [\d.]+ s; \d+ req/s", first), first
    assert "LLM-labelled pool:" in first and "DECISION:" in first, first
    decision = json.loads((root / ".goldgate/decisions/demo/decision.json").read_text())
    names = {c["name"] for c in decision["checks"]["candidates"]}
    assert names == {"sim-llm", "student-tfidf", "student-encoder"}, names
    assert (root / ".goldgate/decisions/demo/decision.png").stat().st_size > 10_000
    assert (run / "summary.json").is_file()
    assert not (root / "evals/decisions").exists(), "a demo decision spent the project's test-split α"
    assert (root / ".goldgate/decisions/demo/log/banking77.test.jsonl").is_file()
    second, _ = _demo(root, "run2")
    assert "requests to the sim, whole demo: 0" in second, second[-2000:]


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("llama_cpp", "peft", "onnxruntime")),
                    reason="goldgate demo --real needs llama-cpp-python (make .venv/.llm-installed) and goldgate[distill]")
def test_demo_real_runs_the_loop_on_real_models_only(tmp_path: Path) -> None:
    """`make demo-real`'s command on a small shard: the real local LLM answers and labels, both MiniLM
    students train and answer the same cases, decide puts all three on one chart, the LLM is priced
    per request in machine time, and no simulator is involved."""
    root = _project(tmp_path / "project")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "GOLDGATE_NO_INSTALL": "1", "GOLDGATE_SIM_URL": "http://127.0.0.1:9/v1"}  # a sim call would fail
    proc = subprocess.run([sys.executable, "-m", "goldgate", "demo", "--real", "--shard", "1/20", "--pool-size", "20",
                           "--out", "real"], cwd=root, env=env, capture_output=True, text=True, timeout=1500,
                          check=False)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "What is real here" in out and "DECISION:" in out, out[-3000:]
    assert "the teacher agrees with the goldens' labels on" in out, out[-3000:]
    decision = json.loads((root / "real/decision/decision.json").read_text())
    assert {c["name"] for c in decision["checks"]["candidates"]} == {"local-llm", "student-lora", "student-encoder"}
    cases = [json.loads(line) for line in (root / "real/local-llm/cases.jsonl").read_text().splitlines()]
    assert 0 < len(cases) < 100 and all(c["candidate"] == "local-llm" for c in cases)
    assert all(c["cost_usd"] == 0.0000162 and c["latency_s"] > 0 for c in cases if not c.get("error"))
    card = json.loads((root / "artifacts/student-lora/card.json").read_text())
    assert card["kind"] == "lora-encoder" and card["teacher"] == "local-llm" and card["data"]["counts"].get("llm")
    assert not (root / "evals/decisions").exists()
