"""`goldgate distill` and `goldgate decide` as users run them: subprocesses in a project on disk,
the teacher LLM served by a real `goldgate sim` over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.sim.server import SimProcess, SimSettings
from goldgate.students.dataset import text_hash

REPO = Path(__file__).resolve().parents[1]
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "transfer_timing"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five Banking77 intents (real texts), with one test text re-cased and re-punctuated into train."""
    root = tmp_path_factory.mktemp("proj")
    recs = [json.loads(line) for line in (REPO / "evals/goldens/banking77.jsonl").read_text().splitlines()]
    recs = [r for r in recs if r["expected"]["label"] in LABELS]
    leaked = next(r for r in recs if r["metadata"]["split"] == "test")
    recs.append({**leaked, "id": "b77-train-zz-leak", "metadata": {"split": "train"},
                 "inputs": {"text": "  " + leaked["inputs"]["text"].upper().rstrip("?.!") + " !"}})
    (root / "evals/goldens").mkdir(parents=True)
    (root / "evals/goldens/b5.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sorted(recs, key=lambda r: r["id"])))
    (root / "evals/prompts").mkdir()
    (root / "evals/prompts/router.md").write_text((REPO / "evals/prompts/router.md").read_text())
    (root / "evals/test_router.py").write_text(
        "import goldgate as gg\n\n\n@gg.eval('b5', model='router', split='test')\n"
        "def test_intent(case, output):\n    assert output.label == case.expected['label']\n")
    (root / "pyproject.toml").write_text(f"""
[tool.goldgate]
evals = "evals"
concurrency = 16

[tool.goldgate.slots.router]
use = "sim-llm"
labels = {json.dumps(LABELS)}

[tool.goldgate.candidates.sim-llm]
model = "openai/sim-router"
prompt = "evals/prompts/router.md"
api_base = "${{GOLDGATE_SIM_URL}}"
params = {{ temperature = 0, max_tokens = 16 }}
input_cost_per_token = 0.00000015
output_cost_per_token = 0.0000006

[tool.goldgate.candidates.student-tfidf]
type = "sklearn"
artifact = "artifacts/student-tfidf"
description = "TF-IDF student"

[tool.goldgate.cost]
monthly_volume = 50000000
hardware_usd_per_hour = 0.10
utilisation = 0.3
latency_slo_ms = 500
price_date = "2025-01-01"
""")
    return root


@pytest.fixture(scope="module")
def sim(project: Path):
    settings = SimSettings(keys=[project / "evals/goldens/b5.jsonl"], accuracy=0.8, port=0, seed=3)
    with SimProcess(settings) as s:
        yield s


def gg(project: Path, *args: str, sim_url: str = "http://127.0.0.1:9/v1") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "goldgate", *args], cwd=project, capture_output=True, text=True,
                          env={**ENV, "GOLDGATE_SIM_URL": sim_url}, timeout=300, check=False)


def test_strict_leakage_names_the_overlapping_records(project: Path) -> None:
    res = gg(project, "distill", "--slot", "router", "--candidate", "student-tfidf", "--goldens", "b5",
             "--strict-leakage")
    assert res.returncode == 2
    assert res.stderr.startswith("goldgate: error: ") and "b77-train-zz-leak~b77-test-" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def decided(project: Path, sim: SimProcess) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """distill then decide, once per module (per xdist worker): later tests reuse the artifact and runs."""
    distill = gg(project, "distill", "--slot", "router", "--candidate", "student-tfidf", "--goldens", "b5")
    decide = gg(project, "decide", "--slot", "router", "--student", "student-tfidf", "--out", "dec", sim_url=sim.url)
    return distill, decide


def test_distill_drops_leaks_then_decide_swaps_with_evidence(project: Path, decided) -> None:
    res = decided[0]
    assert res.returncode == 0, res.stderr
    assert "leakage guard: dropped" in res.stdout and "b77-train-zz-leak  ~  b77-test-" in res.stdout
    assert json.loads((project / "artifacts/student-tfidf/card.json").read_text())["speed"]["cpu_s_per_request"] > 0
    hashes = (project / "artifacts/student-tfidf/train_hashes.txt").read_text()
    assert "b77-train-zz-leak" not in hashes

    res = decided[1]
    assert res.returncode == 0, res.stderr
    dec = json.loads((project / "dec/decision.json").read_text())
    assert dec["schema"] == "goldgate.decision/v1" and dec["decision"] == "swap", dec["reasons"]
    assert (dec["current"], dec["proposed"], dec["slot"]) == ("sim-llm", "student-tfidf", "router")
    assert dec["proposed_config"] == {"type": "sklearn", "artifact": "artifacts/student-tfidf",
                                      "description": "TF-IDF student"}
    b = dec["checks"]["b_noninferiority"]
    assert b["n"] == sum('"split": "test"' in x for x in (project / "evals/goldens/b5.jsonl").read_text().splitlines())
    assert b["lower_bound"] > -0.03 and b["accuracy_student"] > b["accuracy_llm"]
    assert dec["evidence"]["price_map_date"] == "2025-01-01"
    assert set(dec["evidence"]["data_hashes"]) >= {"goldens_sha256", "training_sha256", "train_hashes_sha256"}
    assert (project / "dec/decision.png").is_file() and "DECISION: SWAP" in res.stdout
    assert "Tango" in (project / "dec/decision.md").read_text()

    keep = gg(project, "decide", "--slot", "router", "--student", "student-tfidf", "--llm-run", "dec/runs/sim-llm",
              "--student-run", "dec/runs/student-tfidf", "--out", "dec-keep", "--max-cost-ratio", "0.05")
    assert keep.returncode == 0, keep.stderr
    kept = json.loads((project / "dec-keep/decision.json").read_text())
    assert kept["decision"] == "keep" and kept["reasons"][0].startswith("(c) student costs")
    assert "DECISION: KEEP sim-llm" in keep.stdout
    log = [json.loads(x) for x in (project / "evals/decisions/b5.test.jsonl").read_text().splitlines()]
    assert [e["decision"] for e in log[:2]] == ["swap", "keep"] and log[1]["alpha"] < log[0]["alpha"]
    assert kept["checks"]["b_noninferiority"]["decision_number"] == 2
    assert "decision 2 on this split (log `evals/decisions/b5.test.jsonl`)" in (project / "dec-keep/decision.md").read_text()


def test_decide_refuses_a_student_trained_on_test_texts(project: Path, decided) -> None:
    art = project / "artifacts/student-tfidf/train_hashes.txt"
    test_case = next(json.loads(x) for x in (project / "evals/goldens/b5.jsonl").read_text().splitlines()
                     if '"split": "test"' in x)
    original = art.read_text()
    art.write_text(original + f"{text_hash(test_case['inputs']['text'])}\tsmuggled-1\n")
    try:
        res = gg(project, "decide", "--slot", "router", "--student", "student-tfidf", "--llm-run", "dec/runs/sim-llm",
                 "--student-run", "dec/runs/student-tfidf", "--out", "dec2")
    finally:
        art.write_text(original)
    assert res.returncode == 2
    assert f"smuggled-1~{test_case['id']}" in res.stderr
    assert not (project / "dec2/decision.json").exists()


def test_pool_labels_come_from_the_cached_teacher(project: Path, sim: SimProcess) -> None:
    args = ("distill", "--slot", "router", "--candidate", "student-mix", "--goldens", "b5", "--human-size", "50",
            "--pool-split", "train", "--pool-size", "120", "--llm-weight", "0.5", "--out", "artifacts/mix")
    before = sim.stats()["requests"]
    res = gg(project, *args, sim_url=sim.url)
    assert res.returncode == 0, res.stderr
    card = json.loads((project / "artifacts/mix/card.json").read_text())
    assert card["data"]["counts"]["human"] == 50 and card["data"]["counts"]["llm"] == 120
    assert card["data"]["teacher_usd"] > 0 and card["teacher"] == "sim-llm"
    assert sim.stats()["requests"] - before == 120
    assert gg(project, *args, sim_url=sim.url).returncode == 0
    assert sim.stats()["requests"] - before == 120  # the second run is served from the cache


def test_llm_transport_failures_leave_the_pairing_and_too_many_refuse_the_decision(
        project: Path, decided, tmp_path: Path) -> None:
    """The LLM's failed calls are not its wrong answers: they are reported, left out of the paired
    comparison, and above the error gate the rule refuses to decide (exact rates: test_decision.py)."""
    faulty = tmp_path / "proj"
    shutil.copytree(project, faulty, ignore=shutil.ignore_patterns(".goldgate", "dec*"))  # no cache: calls go out
    pyproject = faulty / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("concurrency = 16", "concurrency = 16\nmax_retries = 0"))
    settings = SimSettings(keys=[project / "evals/goldens/b5.jsonl"], accuracy=0.8, port=0, seed=3, rate_500=0.03)
    with SimProcess(settings) as flaky:
        gg(faulty, "run", "--candidate", "router=sim-llm", "--out", "llm-run", "--", "-q", sim_url=flaky.url)
    cases = [json.loads(x) for x in (faulty / "llm-run/cases.jsonl").read_text().splitlines()]
    lost = {c["case_id"] for c in cases if c.get("error_kind") == "transport"}
    assert lost and all(c["status"] == "error" and "InternalServerError" in c["error"] for c in cases
                        if c["case_id"] in lost)
    summary = json.loads((faulty / "llm-run/summary.json").read_text())["suites"][0]
    assert summary["transport_errors"] == len(lost) and summary["errors"] == len(lost) + summary["output_errors"]

    student_run = str(project / "dec/runs/student-tfidf")
    res = gg(faulty, "decide", "--slot", "router", "--student", "student-tfidf", "--llm-run", "llm-run",
             "--student-run", student_run, "--out", "dec-faulty")
    assert res.returncode == 0, res.stderr
    dec = json.loads((faulty / "dec-faulty/decision.json").read_text())
    err, b = dec["checks"]["errors"], dec["checks"]["b_noninferiority"]
    assert err["llm"]["transport"] == err["excluded_cases"] == len(lost) and err["student"]["transport"] == 0
    assert err["pass"] and not dec["refused"] and b["n"] == len(cases) - len(lost)
    scored = [c for c in cases if c["case_id"] not in lost]
    assert b["accuracy_llm"] == pytest.approx(sum(c["status"] == "passed" for c in scored) / len(scored))
    report = (faulty / "dec-faulty/decision.md").read_text()
    assert f"LLM: {len(lost)} transport" in report and "student: 0 transport" in report
    assert f"LLM {len(lost)} / " in res.stdout

    limit = len(lost) / len(cases) / 2
    res = gg(faulty, "decide", "--slot", "router", "--student", "student-tfidf", "--llm-run", "llm-run",
             "--student-run", student_run, "--out", "dec-refused", "--max-error-rate", str(limit))
    refused = json.loads((faulty / "dec-refused/decision.json").read_text())
    assert refused["decision"] == "keep" and refused["refused"] and not refused["checks"]["errors"]["pass"]
    assert refused["reasons"][0].startswith(f"refusing to decide: {len(lost)} of {len(cases)} LLM calls failed")
