"""LLM judges as users drive them: a real `goldgate sim` over HTTP, projects written to tmp_path,
the CLI and pytest run as subprocesses. The helpers here are shared with test_calibration.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from goldgate.calls.base import CallRequest
from goldgate.config import load_config
from goldgate.judges.judge import Judge, JudgeError, JudgeItem

REPO = Path(__file__).resolve().parents[1]
BANKING77 = REPO / "evals" / "goldens" / "banking77.jsonl"
CALIBRATION = REPO / "evals" / "goldens" / "banking77-judge-calibration.jsonl"
ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
RUBRIC = "Pass when the output is the intent the customer's message is about; fail otherwise.\n"

PYPROJECT = """
[tool.goldgate]
goldens = "goldens"
cache = ".goldgate/cache.sqlite"
concurrency = 16
timeout_s = 10
max_retries = 1

[tool.goldgate.slots.router]
use = "sim-llm"
labels = "labels.json"

[tool.goldgate.candidates.sim-llm]
model = "openai/sim-router"
prompt = "router.md"
api_base = "${{GOLDGATE_SIM_URL}}"
params = {{ temperature = 0 }}
input_cost_per_token = 0.000001
output_cost_per_token = 0.000002

[tool.goldgate.judges.j]
model = "{judge_model}"
rubric = "rubric.md"
api_base = "${{GOLDGATE_SIM_URL}}"
params = {{ temperature = 0 }}
input_cost_per_token = 0.000001
output_cost_per_token = 0.000002
calibration = "calibration"
fields = {{ input = "text", output = "predicted" }}

[tool.goldgate.judges.j.floors]
{floors}
"""

ROUTER = "## system\nPick one intent from: {{ labels }}\n## user\nMessage: {{ text }}\n"

EVAL = """
import goldgate as gg
from goldgate.judges.judge import judge

@gg.eval("b77", model="router", split="test", min_pass_rate=0.5)
def test_judged(case, output):
    verdict = judge("j").check(input=case.inputs["text"], output=output.label)
    assert verdict.passed, verdict.rationale
"""


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in sorted(rows, key=lambda r: r["id"])), encoding="utf-8"
    )


def make_project(
    root: Path,
    *,
    judge_model: str = "openai/sim-judge",
    floors: str = "",
    n_pass: int = 130,
    n_fail: int = 70,
    n_cases: int = 40,
) -> Path:
    """A goldgate project with a router, Banking77 test cases, and judge `j` whose calibration set
    is a slice of the repo's real one (human verdicts from the BANKING77 labels)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(judge_model=judge_model, floors=floors), encoding="utf-8"
    )
    (root / "router.md").write_text(ROUTER, encoding="utf-8")
    (root / "rubric.md").write_text(RUBRIC, encoding="utf-8")
    (root / "labels.json").write_text(
        (REPO / "evals/goldens/banking77.labels.json").read_text(), encoding="utf-8"
    )
    cal = _jsonl(CALIBRATION)
    passes = [r for r in cal if r["expected"]["verdict"] == "pass"][:n_pass]
    fails = [r for r in cal if r["expected"]["verdict"] == "fail"][:n_fail]
    write_jsonl(root / "goldens" / "calibration.jsonl", passes + fails)
    with BANKING77.open(encoding="utf-8") as fh:
        tests = [r for r in map(json.loads, fh) if r["metadata"]["split"] == "test"][:n_cases]
    write_jsonl(root / "goldens" / "b77.jsonl", tests)
    (root / "evals").mkdir(exist_ok=True)
    (root / "evals" / "test_judged.py").write_text(EVAL, encoding="utf-8")
    return root


def sim_settings(**overrides: Any) -> Any:
    from goldgate.sim.settings import SimSettings

    base: dict[str, Any] = {
        "keys": [BANKING77],
        "accuracy": 0.85,
        "format_noise": 0.0,
        "port": 0,
        "judge_model_agreement": {"sim-judge-weak": 0.6, "sim-judge-slip": 0.8},
    }
    return SimSettings(**{**base, **overrides})


def goldgate(*args: str, cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    """`python -m goldgate ...` in the project, as a user runs it."""
    env = {**os.environ, **ENV, "GOLDGATE_SIM_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "goldgate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pytest_run(cwd: Path, url: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "GOLDGATE_SIM_URL": url}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "evals",
        "-p",
        "no:cacheprovider",
        "-q",
        "--tb=line",
        "--goldgate-out",
        str(out),
        "--goldgate-no-progress",
    ]
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    from goldgate.sim.process import SimProcess

    with SimProcess(sim_settings()) as s:
        yield s


def _judge(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Judge:
    monkeypatch.setenv("GOLDGATE_SIM_URL", url)
    return Judge("j", load_config(pyproject=root / "pyproject.toml"))


ITEMS = [
    JudgeItem("Some idiot stole my card.", "lost_or_stolen_card"),
    JudgeItem("Some idiot stole my card.", "card_arrival"),
    JudgeItem("Where should my card work?", "exchange_rate", reference="card_acceptance"),
]


def test_unparseable_answer_is_an_error_never_a_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from goldgate.sim.process import SimProcess

    root = make_project(tmp_path / "p")
    with SimProcess(sim_settings(judge_garbage_rate=1.0)) as garbage:
        j = _judge(root, garbage.url, monkeypatch)
        verdicts = j.check_many(ITEMS, progress=False)
        assert [v.verdict for v in verdicts] == ["error"] * 3
        assert "unparseable verdict after 3 attempt(s)" in verdicts[0].rationale
        # Each item was asked three times: the first answer and two retries with a nudge.
        assert garbage.stats()["judge_requests"] == 3 * len(ITEMS)
        with pytest.raises(JudgeError, match="judge 'j': unparseable"):
            j.check(input=ITEMS[0].input, output=ITEMS[0].output)


def test_unparseable_verdict_marks_the_case_not_passed_in_an_eval(tmp_path: Path) -> None:
    from goldgate.sim.process import SimProcess

    root = make_project(tmp_path / "p", n_cases=10)
    with SimProcess(sim_settings(judge_garbage_rate=1.0)) as garbage:
        res = pytest_run(root, garbage.url, tmp_path / "run")
    cases = _jsonl(tmp_path / "run" / "cases.jsonl")
    assert res.returncode == 1, res.stdout
    assert all(c["status"] != "passed" for c in cases)
    assert all(c["judges"][0]["verdict"] == "error" for c in cases)


def test_verdicts_parse_and_judge_calls_are_cached_apart_from_app_calls(
    tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from goldgate.calls.cache import CallCache

    root = make_project(tmp_path / "p")
    sim.reset()
    j = _judge(root, sim.url, monkeypatch)
    verdicts = j.check_many(ITEMS, progress=False)
    assert [v.verdict for v in verdicts] == ["pass", "fail", "fail"]
    assert all(v.rationale and not v.calibrated for v in verdicts)
    assert sim.stats()["judge_requests"] == 3
    with CallCache(root / ".goldgate" / "cache.sqlite") as cache:
        assert cache.count("judge") == 3 and cache.count("app") == 0
    # A fresh judge (another process, say) answers single checks from the cache.
    again = _judge(root, sim.url, monkeypatch)
    assert again.check(input=ITEMS[1].input, output=ITEMS[1].output).verdict == "fail"
    assert sim.stats()["judge_requests"] == 3
    # The same messages asked as an app call would get another cache key.
    req = j.request(ITEMS[0])
    app = CallRequest(req.model, req.messages, req.params, kind="app")
    assert app.key != req.key


def test_judge_prompt_carries_sections_and_structured_output(
    tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = _judge(make_project(tmp_path / "p"), sim.url, monkeypatch)
    req = j.request(ITEMS[2])
    user = req.messages[-1]["content"]
    assert "<input>\nWhere should my card work?\n</input>" in user
    assert (
        "<output>\nexchange_rate\n</output>" in user
        and "<reference>\ncard_acceptance\n</reference>" in user
    )
    assert req.params["response_format"]["json_schema"]["name"] == "goldgate_verdict"
    assert RUBRIC.strip() in req.messages[0]["content"] and req.kind == "judge"
    assert "previous answer" in j.request(ITEMS[2], attempt=1).messages[-1]["content"]


def test_config_mistake_is_one_line_naming_the_key(tmp_path: Path, sim: Any) -> None:
    root = make_project(tmp_path / "p", floors="min_kappa = 1.5")
    res = goldgate("judge", "check", "j", cwd=root, url=sim.url)
    assert res.returncode == 2
    line = (
        f"goldgate: error: {root / 'pyproject.toml'}: [tool.goldgate.judges.j] floors.min_kappa: "
        "Input should be less than or equal to 1"
    )
    assert res.stderr.strip().splitlines() == [line]


def test_plugin_gate_passes_a_calibrated_judge_and_fails_a_changed_rubric(
    tmp_path: Path, sim: Any
) -> None:
    root = make_project(tmp_path / "p")
    assert (
        goldgate("judge", "calibrate", "j", "--no-progress", cwd=root, url=sim.url).returncode == 0
    )
    res = pytest_run(root, sim.url, tmp_path / "run1")
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert res.returncode == 0, res.stdout + res.stderr
    (gate,) = summary["judge_gates"]
    assert gate["status"] == "pass" and gate["calibrated"] and gate["n"] == 200
    cases = _jsonl(tmp_path / "run1" / "cases.jsonl")
    assert all(c["judges"][0]["calibrated"] for c in cases)
    assert {c["status"] for c in cases} == {"passed", "failed"}

    (root / "rubric.md").write_text(RUBRIC + "Be strict.\n", encoding="utf-8")
    res = pytest_run(root, sim.url, tmp_path / "run2")
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert res.returncode == 1
    (gate,) = summary["judge_gates"]
    assert gate["status"] == "fail" and not gate["calibrated"]
    assert (
        "rubric changed" in gate["reasons"][0]
        and "goldgate judge calibrate j" in gate["reasons"][0]
    )
    assert summary["status"] == "fail"
    assert not any(c["judges"][0]["calibrated"] for c in _jsonl(tmp_path / "run2" / "cases.jsonl"))


def test_rerun_rejudges_saved_outputs_with_zero_app_calls(tmp_path: Path, sim: Any) -> None:
    root = make_project(tmp_path / "p")
    pytest_run(root, sim.url, tmp_path / "run")
    # Another judge model: every verdict must be asked again, and nothing else.
    text = (
        (root / "pyproject.toml")
        .read_text()
        .replace('"openai/sim-judge"', '"openai/sim-judge-weak"')
    )
    (root / "pyproject.toml").write_text(text, encoding="utf-8")
    sim.reset()
    res = goldgate("judge", "rerun", str(tmp_path / "run"), cwd=root, url=sim.url)
    stats = sim.stats()
    assert stats["judge_requests"] == 40
    assert stats["requests"] == stats["judge_requests"], "judge rerun made app calls"
    assert res.returncode == 1  # the weak judge has no calibration record
    assert "40 verdicts" in res.stdout and "no calibration record" in res.stdout
    rejudged = _jsonl(tmp_path / "run-rejudged" / "cases.jsonl")
    assert len(rejudged) == 40
    before = {c["case_id"]: c["judges"][0] for c in _jsonl(tmp_path / "run" / "cases.jsonl")}
    for c in rejudged:
        note = c["judges"][0]
        assert (
            note["input"] == before[c["case_id"]]["input"]
            and note["output"] == before[c["case_id"]]["output"]
        )
        assert note["fingerprint"] != before[c["case_id"]]["fingerprint"]
