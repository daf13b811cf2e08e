"""Shared set-up for the benchmarks: a synthetic goldgate project of N cases and a bare loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

LABELS = [f"intent_{a}_{b}" for a in ("card", "transfer", "top_up", "refund", "exchange") for b in ("late", "failed", "fee", "limit")]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}

PYPROJECT = """
[tool.goldgate]
concurrency = {concurrency}
timeout_s = 30
max_retries = 4

[tool.goldgate.slots.router]
use = "sim"
labels = {labels}

[tool.goldgate.candidates.sim]
model = "openai/sim-bench"
prompt = "prompt.md"
api_base = "${{GOLDGATE_SIM_URL}}"
input_cost_per_token = 0.00000015
output_cost_per_token = 0.0000006
"""

EVAL = """
import goldgate as gg

@gg.eval("bench", model="router", split="test", min_pass_rate=0.0, max_error_rate=1.0)
def test_case(case, output):
    assert output.label == case.expected["label"]
"""


def text(i: int) -> str:
    return f"benchmark query number {i} about my account"


def make_project(root: Path, n: int, concurrency: int = 32) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(concurrency=concurrency, labels=json.dumps(LABELS)))
    (root / "prompt.md").write_text("## system\nLabels: {{ labels }}\n## user\nQuery: {{ text }}\n")
    gdir = root / "evals" / "goldens"
    gdir.mkdir(parents=True, exist_ok=True)
    recs = [{"id": f"q{i:06d}", "inputs": {"text": text(i)}, "expected": {"label": LABELS[i % len(LABELS)]},
             "metadata": {"split": "test"}, "provenance": {"source": "human"}} for i in range(n)]
    (gdir / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "evals" / "test_bench.py").write_text(EVAL)
    return root


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, check=False, cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=True)
    return time.perf_counter() - t0, res


BARE_LITELLM = r"""
import asyncio, os, sys, time, resource
import litellm
litellm.suppress_debug_info = True
N, C, URL = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
LABELS = {labels!r}
async def main():
    sem = asyncio.Semaphore(C)
    async def one(i):
        async with sem:
            r = await litellm.acompletion(model="openai/sim-bench", api_base=URL, api_key="x",
                messages=[{{"role": "system", "content": "Labels: " + chr(10).join(LABELS)}},
                          {{"role": "user", "content": f"Query: benchmark query number {{i}} about my account"}}])
            return r.choices[0].message.content
    return await asyncio.gather(*(one(i) for i in range(N)))
t = time.perf_counter(); out = asyncio.run(main())
cpu = resource.getrusage(resource.RUSAGE_SELF)
print(f"{{time.perf_counter() - t:.3f}} {{cpu.ru_utime + cpu.ru_stime:.3f}} {{len(out)}}")
"""


def bare_litellm(n: int, concurrency: int, url: str, cwd: Path) -> tuple[float, float, float]:
    """(wall incl. import, loop wall, process CPU seconds) of a plain gather loop over litellm."""
    script = cwd / "bare_litellm.py"
    script.write_text(BARE_LITELLM.format(labels=LABELS))
    wall, res = timed([sys.executable, str(script), str(n), str(concurrency), url], cwd)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-2000:])
    loop, cpu, _ = res.stdout.split()
    return wall, float(loop), float(cpu)
