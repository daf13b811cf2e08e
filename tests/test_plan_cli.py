"""`goldgate plan` as users run it: the forecast, the chart, and a selected batch that never holds a
test-split or already-labelled record; the teacher LLM is a real `goldgate sim` over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings
from goldgate.students.dataset import text_hash

REPO = Path(__file__).resolve().parents[1]
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "transfer_timing"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five Banking77 intents: 150 human labels, the rest of train as an unlabelled pool, plus pool
    records that copy a test text (re-cased) and a labelled text, which the selector must skip."""
    root = tmp_path_factory.mktemp("plan")
    recs = [json.loads(line) for line in (REPO / "evals/goldens/banking77.jsonl").read_text().splitlines()]
    recs = [r for r in recs if r["expected"]["label"] in LABELS]
    train = [r for r in recs if r["metadata"]["split"] == "train"]
    test = [r for r in recs if r["metadata"]["split"] == "test"]
    pool = [{**r, "id": r["id"].replace("train", "pool"), "expected": {}, "metadata": {"split": "pool"},
             "provenance": {"source": "unlabelled"}} for r in train[150:]]
    copies = [{"id": "zz-copy-of-test", "inputs": {"text": test[0]["inputs"]["text"].upper() + "!!"},
               "expected": {}, "metadata": {"split": "pool"}, "provenance": {"source": "unlabelled"}},
              {"id": "zz-copy-of-label", "inputs": {"text": " " + train[0]["inputs"]["text"].lower()},
               "expected": {}, "metadata": {"split": "pool"}, "provenance": {"source": "unlabelled"}}]
    golden = sorted(train[:150] + test + pool + copies, key=lambda r: r["id"])
    (root / "evals/goldens").mkdir(parents=True)
    (root / "evals/goldens/b5.jsonl").write_text("".join(json.dumps(r) + "\n" for r in golden))
    (root / "evals/goldens/key.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "evals/prompts").mkdir()
    (root / "evals/prompts/router.md").write_text((REPO / "evals/prompts/router.md").read_text())
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
""")
    return root


@pytest.fixture(scope="module")
def sim(project: Path):
    with SimProcess(SimSettings(keys=[project / "evals/goldens/key.jsonl"], accuracy=0.97, port=0, seed=3)) as s:
        yield s


def gg(project: Path, *args: str, sim_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "goldgate", *args], cwd=project, capture_output=True, text=True,
                          env={**ENV, "GOLDGATE_SIM_URL": sim_url}, timeout=300, check=False)


@pytest.mark.slow
def test_plan_forecasts_and_selects_a_clean_batch(project: Path, sim: SimProcess) -> None:
    res = gg(project, "plan", "--slot", "router", "--goldens", "b5", "--select", "40", "--pool-split", "pool",
             "--pool-split", "train", "--out", "plan", sim_url=sim.url)
    assert res.returncode == 0, res.stderr
    doc = json.loads((project / "plan/plan.json").read_text())
    fc = doc["forecast"]
    assert fc["labels_now"] == 150 and len(fc["points"]) == 7 and fc["points"][-1]["n"] == 150
    assert fc["accuracy_llm"] > 0.9 and fc["status"] in ("forecast", "never")
    assert doc["headline"].startswith("KEEP: ") and doc["headline"] in res.stdout
    assert (project / "plan/learning_curve.png").is_file() and (project / "plan/learning_curve.svg").is_file()
    assert "## Annotate more" in (project / "plan/plan.md").read_text()

    golden = {r["id"]: r for r in map(json.loads, (project / "evals/goldens/b5.jsonl").read_text().splitlines())}
    batch = [json.loads(x) for x in (project / "plan/next-40.jsonl").read_text().splitlines()]
    assert len(batch) == 40 and len({r["id"] for r in batch}) == 40
    blocked = {text_hash(r["inputs"]["text"]) for r in golden.values()
               if r["metadata"]["split"] == "test" or r["expected"]}
    for rec in batch:
        src = golden[rec["id"]]
        assert src["metadata"]["split"] == "pool" and not src["expected"]  # never test, never labelled
        assert text_hash(rec["inputs"]["text"]) not in blocked
        assert rec["expected"] == {} and rec["provenance"]["source"] == "unlabelled"
        assert rec["provenance"]["llm"]["label"]["model"] == "openai/sim-router"
        assert rec["provenance"]["llm"]["label"]["suggested"] in LABELS
    assert [r["metadata"]["plan"]["rank"] for r in batch] == list(range(1, 41))
    # Diversity: the batch is not one confusion repeated.
    pairs = {(r["metadata"]["plan"]["student"], r["metadata"]["plan"]["runner_up"]) for r in batch}
    assert len(pairs) >= 5


def test_plan_push_needs_select(project: Path) -> None:
    res = gg(project, "plan", "--slot", "router", "--goldens", "b5", "--push", sim_url="http://127.0.0.1:9/v1")
    assert res.returncode == 2 and res.stderr.strip() == "goldgate: error: --push sends the selected batch: give --select N too"
