"""`goldgate plan --select N --push` against the real local Argilla: the batch arrives with the LLM's
answers pre-filled as suggestions, and holds no test-split or labelled record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

pytestmark = pytest.mark.argilla

REPO = Path(__file__).resolve().parents[2]
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card"]
TABLES = f"""
[tool.goldgate.slots.router]
use = "sim-llm"
labels = {json.dumps(LABELS)}

[tool.goldgate.candidates.sim-llm]
model = "openai/sim-router"
prompt = "prompt.md"
api_base = "${{GOLDGATE_SIM_URL}}"
params = {{ temperature = 0, max_tokens = 16 }}
input_cost_per_token = 0.00000015
output_cost_per_token = 0.0000006
"""


def test_plan_pushes_the_selected_batch_with_llm_suggestions(make_project, owner):
    recs = [json.loads(x) for x in (REPO / "evals/goldens/banking77.jsonl").read_text().splitlines()]
    recs = [r for r in recs if r["expected"]["label"] in LABELS]
    train = [r for r in recs if r["metadata"]["split"] == "train"]
    test = [r for r in recs if r["metadata"]["split"] == "test"][:60]
    pool = [{**r, "id": r["id"].replace("train", "pool"), "expected": {}, "metadata": {"split": "pool"},
             "provenance": {"source": "unlabelled"}} for r in train[90:150]]
    proj = make_project('url = "local"\n' + TABLES)
    proj.write(train[:90] + test + pool)
    (proj.root / "prompt.md").write_text((REPO / "evals/prompts/router.md").read_text())
    key = proj.root / "key.jsonl"
    key.write_text("".join(json.dumps(r) + "\n" for r in train[:150] + test))
    with SimProcess(SimSettings(keys=[key], accuracy=0.9, port=0, seed=1)) as sim:
        proj.env["GOLDGATE_SIM_URL"] = sim.url
        out = proj.goldgate("plan", "--slot", "router", "--goldens", proj.name, "--select", "12", "--push",
                            "--out", "plan", timeout=300)
    assert "12 sent" in out.stdout, out.stdout
    assert f"the next 12 to label are in Argilla dataset {proj.name}" in out.stdout
    batch = [json.loads(x) for x in (proj.root / "plan/next-12.jsonl").read_text().splitlines()]
    pool_ids = {r["id"] for r in pool}
    ds = owner.datasets(proj.name, workspace="argilla")
    remote = {r.id: r for r in ds.records()}
    assert set(remote) == {r["id"] for r in batch} and set(remote) <= pool_ids
    for rec in batch:
        suggested = rec["provenance"]["llm"]["label"]["suggested"]
        got = [(s.value, s.agent) for s in remote[rec["id"]].suggestions]
        assert got == [(suggested, "openai/sim-router")]
        assert remote[rec["id"]].metadata == {"split": "pool", "source": "unlabelled"}
