"""Test helpers shared by the suites: a small goldgate project on disk, CLI runs, summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

LABELS = ["card_arrival", "card_delivery_estimate", "card_not_working", "lost_or_stolen_card",
          "transfer_failed", "transfer_not_received", "top_up_failed", "top_up_reverted",
          "exchange_rate", "exchange_charge"]  # fmt: skip
N_TEST = 200


def golden_records(n: int = N_TEST, split: str = "test", prefix: str = "c") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i:04d}",
            "inputs": {"text": f"{split} question {i}: something about my card or transfer"},
            "expected": {"label": LABELS[i % len(LABELS)]},
            "metadata": {"split": split},
            "provenance": {"source": "human", "annotators": ["tester"]},
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


PYPROJECT = """
[tool.goldgate]
cache = ".goldgate/cache.sqlite"
concurrency = 16
timeout_s = {timeout_s}
max_retries = {max_retries}

[tool.goldgate.slots.router]
use = "sim-llm"
labels = ["{labels}"]

[tool.goldgate.candidates.sim-llm]
model = "openai/sim-router"
prompt = "prompts/router.md"
api_base = "${{GOLDGATE_SIM_URL}}"
params = {{ temperature = 0 }}
input_cost_per_token = 0.000001
output_cost_per_token = 0.000002

[tool.goldgate.candidates.sim-weak]
model = "openai/sim-weak"
prompt = "prompts/router.md"
api_base = "${{GOLDGATE_SIM_URL}}"
input_cost_per_token = 0.000001
output_cost_per_token = 0.000002
"""

PROMPT = """## system
Pick one intent from: {{ labels }}
## user
Message: {{ text }}
"""


def make_project(root: Path, *, timeout_s: float = 10, max_retries: int = 2, n: int = N_TEST) -> Path:
    """A minimal goldgate project: config, prompt, one golden set with a test split."""
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(labels='", "'.join(LABELS), timeout_s=timeout_s, max_retries=max_retries),
        encoding="utf-8",
    )
    (root / "prompts").mkdir(exist_ok=True)
    (root / "prompts" / "router.md").write_text(PROMPT, encoding="utf-8")
    write_jsonl(root / "evals" / "goldens" / "tiny.jsonl", golden_records(n))
    return root


EVAL_FILE = '''
import goldgate as gg

@gg.eval("tiny", model="router", split="test", min_pass_rate={min_pass_rate}{extra})
def test_intent(case, output):
    assert output.label == case.expected["label"]
'''


def eval_source(min_pass_rate: float = 0.5, extra: str = "") -> str:
    return EVAL_FILE.format(min_pass_rate=min_pass_rate, extra=extra)


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m goldgate ...` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "goldgate", *args], check=False, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def summary_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
