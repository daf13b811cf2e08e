"""Labelling a pool through the provider's batch API (files + batches, through litellm), tested
offline against `goldgate sim`'s implementation of those endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import golden_records, write_jsonl

from goldgate.calls.base import CallRequest
from goldgate.calls.batch_api import BatchSettings, batch_pricing, run_batch
from goldgate.calls.cache import CallCache
from goldgate.errors import ConfigError
from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

LABELS = ["card_arrival", "card_delivery_estimate", "card_not_working", "lost_or_stolen_card",
          "transfer_failed", "transfer_not_received", "top_up_failed", "top_up_reverted",
          "exchange_rate", "exchange_charge"]  # fmt: skip
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
LIVE_IN, LIVE_OUT = 0.00000015, 0.0000006


def _requests(url: str, n: int = 200) -> list[CallRequest]:
    return [CallRequest(model="openai/sim-router", messages=[{"role": "user", "content": r["inputs"]["text"]}],
                        api_base=url) for r in golden_records(n)]


def test_batch_api_answers_reports_failures_and_fills_the_cache(tmp_path: Path, sim_key: Path) -> None:
    settings = BatchSettings(cache_path=tmp_path / "cache.sqlite", state_dir=tmp_path / "batches",
                             pricing=(1e-6, 2e-6), poll_s=0.1, max_requests=120, progress=False)
    with SimProcess(SimSettings(keys=[sim_key], port=0, batch_delay_s=0.5, batch_fail_rate=0.1)) as sim:
        reqs = _requests(sim.url)
        results, stats = run_batch(reqs, settings)
        assert set(results) == {r.key for r in reqs}
        assert stats.submitted == 200 and len(stats.batch_ids) == 2  # 120 per batch file at most
        failed = [r for r in results.values() if not r.ok]
        assert stats.failed == len(failed) and 5 < len(failed) < 40 and "HTTP 500" in failed[0].error
        ok = next(r for r in results.values() if r.ok)
        assert ok.content in LABELS and ok.cost_usd == pytest.approx(ok.prompt_tokens * 1e-6 + ok.completion_tokens * 2e-6)
        with CallCache(settings.cache_path) as cache:
            assert cache.count() == 200 - len(failed)  # failures are not cached: a rerun retries them
        assert not list(settings.state_dir.glob("*.json"))  # answered batches are forgotten

        again, stats2 = run_batch(reqs, settings)
        assert stats2.cache_hits == 200 - len(failed) and stats2.submitted == len(failed)
        assert sim.stats()["batches"] == 3 and sim.stats()["requests"] == 0  # no live chat call at all
        assert all(again[k].content == r.content for k, r in results.items() if r.ok)


def test_batch_price_comes_from_litellm_or_config() -> None:
    req = CallRequest(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert batch_pricing(req, (None, None)) == (7.5e-08, 3e-07)  # litellm's *_cost_per_token_batches
    assert batch_pricing(req, (1e-9, 2e-9)) == (1e-9, 2e-9)
    with pytest.raises(ConfigError, match="batch_input_cost_per_token"):
        batch_pricing(CallRequest(model="openai/sim-router", messages=[]), (None, None))


def _project(root: Path, *, batch: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    recs = golden_records(300, split="pool", prefix="p") + golden_records(60, split="train", prefix="t") \
        + golden_records(40, split="test", prefix="x")
    write_jsonl(root / "evals/goldens/b.jsonl", recs)
    (root / "prompts").mkdir(exist_ok=True)
    (root / "prompts/router.md").write_text("## system\nPick one intent from: {{ labels }}\n## user\n{{ text }}\n")
    (root / "pyproject.toml").write_text(f"""
[tool.goldgate]
concurrency = 16

[tool.goldgate.distill]
batch_poll_s = 0.2

[tool.goldgate.slots.router]
use = "sim-llm"
labels = {json.dumps(LABELS)}

[tool.goldgate.candidates.sim-llm]
model = "openai/sim-router"
prompt = "prompts/router.md"
api_base = "${{GOLDGATE_SIM_URL}}"
input_cost_per_token = {LIVE_IN}
output_cost_per_token = {LIVE_OUT}
batch_input_cost_per_token = {LIVE_IN / 2}
batch_output_cost_per_token = {LIVE_OUT / 2}
{batch}
""")
    return root


def _distill(root: Path, url: str, *extra: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    args = [sys.executable, "-m", "goldgate", "distill", "--slot", "router", "--candidate", "student",
            "--goldens", "b", "--pool-split", "pool", *extra]
    env = {**ENV, "GOLDGATE_SIM_URL": url}
    if not wait:
        return subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_distill_batch_labels_at_half_price_and_resumes_after_a_kill(tmp_path: Path, sim_key: Path) -> None:
    key = write_jsonl(tmp_path / "key.jsonl", golden_records(300, split="pool", prefix="p"))
    with SimProcess(SimSettings(keys=[key, sim_key], port=0, batch_delay_s=6, batch_fail_rate=0.02,
                                format_noise=0.0)) as sim:
        live = _distill(_project(tmp_path / "live"), sim.url)
        assert live.returncode == 0, live.stderr
        live_usd = json.loads((tmp_path / "live/artifacts/student/card.json").read_text())["data"]["teacher_usd"]
        assert sim.stats()["requests"] == 300

        root = _project(tmp_path / "batch")
        proc = _distill(root, sim.url, "--batch", wait=False)
        state = root / ".goldgate/batches"
        deadline = time.monotonic() + 120
        while not list(state.glob("batch_*.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert list(state.glob("batch_*.json")), proc.communicate()[1]
        proc.send_signal(signal.SIGKILL)  # killed while polling: the batch is submitted and paid for
        proc.wait()
        assert sim.stats()["batches"] == 1

        res = _distill(root, sim.url, "--batch")
        assert res.returncode == 0, res.stderr
        assert sim.stats()["batches"] == 1 and sim.stats()["requests"] == 300  # resumed; no live call
        assert "300 resumed" in res.stdout and "at the batch price" in res.stdout
        assert "goldgate batch: completed 300/300" in res.stderr  # progress while polling
        card = json.loads((root / "artifacts/student/card.json").read_text())
        pool = card["data"]["pool"]
        assert pool["via"] == "batch API" and pool["labelled"] + pool["unusable"] == 300 and pool["unusable"] > 0
        assert "unlabelled pool records" in res.stdout
        # Same tokens, half the price (the failed requests are the only ones not paid for).
        assert card["data"]["teacher_usd"] == pytest.approx(live_usd / 2 * pool["labelled"] / 300, rel=0.05)

        # `batch = true` on the teacher: no flag needed; the cache answers, the failures are retried.
        cfg = root / "pyproject.toml"
        cfg.write_text(cfg.read_text() + "batch = true\n")
        res = _distill(root, sim.url)
        assert res.returncode == 0, res.stderr
        assert sim.stats()["batches"] == 2 and f"{300 - pool['unusable']} from the cache" in res.stdout
