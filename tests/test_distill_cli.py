"""`goldgate distill` and `goldgate decide` as users run them: subprocesses in a project on disk,
the teacher LLM served by a real `goldgate sim` over HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings
from goldgate.students.dataset import text_hash

REPO = Path(__file__).resolve().parents[1]
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "transfer_timing"]
LEAKS = 7
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five Banking77 intents (real texts), with seven test texts re-cased and re-punctuated into train."""
    root = tmp_path_factory.mktemp("proj")
    recs = [json.loads(line) for line in (REPO / "evals/goldens/banking77.jsonl").read_text().splitlines()]
    recs = [r for r in recs if r["expected"]["label"] in LABELS]
    tests = [r for r in recs if r["metadata"]["split"] == "test"]
    for i, leaked in enumerate(tests[:LEAKS]):
        recs.append({**leaked, "id": f"b77-train-zz-leak-{i}", "metadata": {"split": "train"},
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
    assert res.stderr.startswith("goldgate: error: ") and "b77-train-zz-leak-0~b77-test-" in res.stderr
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
    dropped = int(re.search(r"leakage guard: dropped (\d+) training record\(s\)", res.stdout).group(1))
    assert dropped >= LEAKS  # Banking77 repeats a few texts across its splits too
    assert res.stdout.count("  ~  ") == 5  # the first five; the rest are in the file it names
    assert "full list: artifacts/student-tfidf/leakage.tsv" in res.stdout
    listed = (project / "artifacts/student-tfidf/leakage.tsv").read_text()
    assert len(listed.splitlines()) == 1 + dropped and "b77-train-zz-leak-6\tb77-test-" in listed
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
    page = (project / "dec/report.html").read_text()  # student run vs the LLM run, with the decision drawn
    assert 'id="decision-chart"' in page and 'id="decision-table"' in page and 'id="compare-table"' in page

    keep = gg(project, "decide", "--slot", "router", "--student", "student-tfidf", "--llm-run", "dec/runs/sim-llm",
              "--student-run", "dec/runs/student-tfidf", "--out", "dec-keep", "--max-cost-ratio", "0.05")
    assert keep.returncode == 0, keep.stderr
    kept = json.loads((project / "dec-keep/decision.json").read_text())
    assert kept["decision"] == "keep" and kept["reasons"][0].startswith("(c) student costs")
    assert "DECISION: KEEP sim-llm" in keep.stdout
    fc = kept["forecast"]  # a KEEP says how many more human labels the student needs
    assert fc["labels_now"] > 0 and len(fc["points"]) == 7 and kept["reasons"][-1] == fc["headline"]
    assert (project / "dec-keep/learning_curve.png").is_file()
    assert "## Annotate more" in (project / "dec-keep/decision.md").read_text()
    # The same comparison under another cost limit is the same test of (b): it keeps its number and
    # spends no more α (tests/test_decision.py covers the k-th new decision).
    log = [json.loads(x) for x in (project / "evals/decisions/b5.test.jsonl").read_text().splitlines()]
    kb = kept["checks"]["b_noninferiority"]
    assert [e["key"] for e in log].count(kb["comparison_key"]) == 1 and kb["comparison_key"] == b["comparison_key"]
    assert kb["decision_number"] == b["decision_number"] and kb["alpha"] == b["alpha"]
    assert (f"decision {kb['decision_number']} on this split (log `evals/decisions/b5.test.jsonl`)"
            in (project / "dec-keep/decision.md").read_text())


def test_swap_pr_body_shows_reasons_and_evidence_once_without_machine_paths(project: Path, decided) -> None:
    assert decided[1].returncode == 0, decided[1].stderr
    dec = json.loads((project / "dec/decision.json").read_text())
    assert dec["evidence"]["llm_run"] == "dec/runs/sim-llm"
    res = gg(project, "github", "swap-pr", "--decision", "dec/decision.json", "--dry-run")
    assert res.returncode == 0, res.stderr
    for reason in dec["reasons"]:
        assert res.stdout.count(reason) == 1, reason
    assert res.stdout.count("dec/runs/student-tfidf") == 1
    assert res.stdout.count(dec["evidence"]["data_hashes"]["training_sha256"]) == 1
    assert str(project) not in res.stdout


def test_decide_explains_an_unreachable_break_even_and_a_missing_cost_table(project: Path, decided) -> None:
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text()
    runs = ["--llm-run", "dec/runs/sim-llm", "--student-run", "dec/runs/student-tfidf"]
    try:
        pyproject.write_text(original.replace("hardware_usd_per_hour = 0.10", "hardware_usd_per_hour = 100000"))
        dear = gg(project, "decide", "--slot", "router", "--student", "student-tfidf", *runs, "--out", "dec-dear")
        pyproject.write_text(original[:original.index("[tool.goldgate.cost]")])
        bare = gg(project, "decide", "--slot", "router", "--student", "student-tfidf", *runs, "--out", "dec-bare")
    finally:
        pyproject.write_text(original)
    assert dear.returncode == 0, dear.stderr
    assert "break-even never (the student saves nothing per request)" in dear.stdout
    assert "never requests" not in dear.stdout + (project / "dec-dear/decision.md").read_text()
    assert not re.search(r"\binf\b", (project / "dec-dear/decision.md").read_text())
    assert bare.returncode == 0, bare.stderr
    table = bare.stdout[bare.stdout.index("[tool.goldgate.cost]\n"):bare.stdout.index("\ndecision: ")]
    assert "monthly_volume = " in table and "# requests per month" in table
    import tomllib

    assert set(tomllib.loads(table)["tool"]["goldgate"]["cost"]) >= {"monthly_volume", "hardware_usd_per_hour"}



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
    counts, dropped = card["data"]["counts"], len(card["data"]["excluded"])  # the leakage guard drops a few
    assert counts["human"] + counts["llm"] + dropped == 170 and counts["human"] <= 50 and counts["llm"] <= 120
    assert card["data"]["teacher_usd"] > 0 and card["teacher"] == "sim-llm"
    assert sim.stats()["requests"] - before == 120
    # the pool split is labelled in the goldens: the teacher's agreement with them is measured (the sim: 80%)
    agree = re.search(r"the teacher agrees with the goldens' labels on (\d+)/(\d+) pool texts", res.stdout)
    assert agree and int(agree[2]) == 120 and 0.65 <= int(agree[1]) / 120 <= 0.95, res.stdout
    assert gg(project, *args, sim_url=sim.url).returncode == 0
    assert sim.stats()["requests"] - before == 120  # the second run is served from the cache


def _configured(project: Path, dest: Path, slot_extra: str = "", train: str = 'goldens = "b5"',
                extra: str = "") -> Path:
    """A copy of the project whose config lists the students (as CI runs it: no arguments)."""
    import shutil

    shutil.copytree(project, dest, ignore=shutil.ignore_patterns(".goldgate", "artifacts", "dec*"))
    text = (dest / "pyproject.toml").read_text()
    text = text.replace('use = "sim-llm"\n', f'use = "sim-llm"\n{slot_extra}\n', 1)
    text = text.replace('description = "TF-IDF student"\n',
                        f'description = "TF-IDF student"\n\n[tool.goldgate.candidates.student-tfidf.train]\n{train}\n')
    (dest / "pyproject.toml").write_text(text + extra)
    return dest


@pytest.mark.parametrize(("slot_extra", "train", "extra", "message"), [
    ("", 'goldens = "b5"', "", "[tool.goldgate.slots.<slot>] students: no student to train"),
    ('students = ["sim-llm"]', 'goldens = "b5"', "", ("[tool.goldgate.slots.router] students: 'sim-llm' names no "
                                                     "student candidate")),
    ('students = ["student-tfidf"]', 'gold = "b5"', "", ("[tool.goldgate] candidates.student-tfidf.train.gold: Extra "
                                                        "inputs are not permitted")),
    ('students = ["student-tfidf"]', "seed = 1", "", "[tool.goldgate.candidates.student-tfidf.train] goldens: not set"),
    ('students = ["student-tfidf"]', 'goldens = "b5"\nhyper = { epochs = 3 }', "",
     "[tool.goldgate.candidates.student-tfidf.train] hyper.epochs: not a sklearn setting"),
    ('students = ["student-tfidf"]', 'goldens = "b5"', "\n[tool.goldgate.distill]\ndelt = 0.1\n",
     "[tool.goldgate] distill.delt: Extra inputs are not permitted"),
], ids=["no-students", "llm-as-student", "unknown-train-key", "no-goldens", "wrong-hyper", "unknown-distill-key"])
def test_a_missing_or_wrong_distill_setting_is_one_line_naming_the_key(
        project: Path, tmp_path: Path, slot_extra: str, train: str, extra: str, message: str) -> None:
    root = _configured(project, tmp_path / "p", slot_extra, train, extra)
    res = gg(root, "distill")
    assert res.returncode != 0 and res.stderr.startswith("goldgate: error: "), res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (root / "artifacts").exists()


@pytest.mark.slow
def test_distill_and_decide_need_no_arguments_when_the_config_lists_the_students(
        project: Path, sim: SimProcess, tmp_path: Path) -> None:
    root = _configured(project, tmp_path / "p", 'students = ["student-tfidf"]\nsuite = "test_intent"',
                       'goldens = "b5"\nhyper = { C = 0.5 }')
    res = gg(root, "distill")
    assert res.returncode == 0, res.stderr
    assert (root / "artifacts/student-tfidf/card.json").is_file()
    res = gg(root, "decide", "--out", "decisions", sim_url=sim.url)
    assert res.returncode == 0, res.stderr
    dec = json.loads((root / "decisions/router/decision.json").read_text())
    assert (dec["slot"], dec["proposed"], dec["decision"]) == ("router", "student-tfidf", "swap")
    res = gg(root, "github", "swap-pr", "--decision", "decisions", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert '-use = "sim-llm"\n+use = "student-tfidf"' in res.stdout


def test_decide_takes_several_students_but_a_student_run_names_one(project: Path) -> None:
    res = gg(project, "decide", "--slot", "router", "--student", "student-tfidf", "--student", "other",
             "--student-run", "dec/runs/student-tfidf", "--out", "dec-two")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "--student-run is the run of one student: pass exactly one --student" in res.stderr
    assert not (project / "dec-two").exists()


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
