"""P8 and batch labelling at scale, against `goldgate sim`.

P8     N cases (default 100,000) as one run, then as 4 shards run one after another on this
       machine and merged: sum of shard walls vs the unsharded wall (target <= 1.2x) and the
       merge step (target <= 5 s). The cache is warmed first with the exact answers, so both
       sides measure goldgate's own work (collection, bookkeeping, results), which is what sharding
       adds to; model calls shard perfectly and would only make the ratio look better.
BATCH  `goldgate distill --pool-split pool --batch` over a pool of N records (default 100,000)
       through the sim's files + batches endpoints (2 % per-request failures), killed while
       polling and run again: it must resume the same batches (no second submission), label or
       report every record, and cost the batch price (half the live price here).

    python bench/bench_scale.py [--n 100000] [--only p8|batch]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _project import ENV, LABELS, make_project, timed

from goldgate.calls.base import CallResult
from goldgate.calls.cache import CallCache
from goldgate.config import load_config
from goldgate.goldens.records import load_goldens
from goldgate.models.load import model_for_candidate
from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

GG = [sys.executable, "-m", "goldgate"]


def warm_cache(proj: Path) -> None:
    """Every case's answer, stored under the key a run will look up (the expected label)."""
    os.environ.setdefault("GOLDGATE_SIM_URL", "http://127.0.0.1:9/v1")  # api_base is not in the cache key
    cfg = load_config(proj)
    model = model_for_candidate(cfg, "router", None)
    golden = load_goldens(proj / "evals/goldens/bench.jsonl", splits=cfg.splits)
    with CallCache(cfg.path(cfg.cache)) as cache:
        items = []
        for c in golden.split("test"):
            req = model.request(c.inputs)  # type: ignore[attr-defined]
            items.append((req.key, CallResult(key=req.key, content=c.expected["label"], model="sim-bench",
                                              prompt_tokens=40, completion_tokens=3, cost_usd=7.8e-6,
                                              latency_s=0.1)))
        cache.put_many(items)


def cpu_timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall, CPU seconds of the child, result): on a shared machine CPU time is the steadier measure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, res = timed(cmd, cwd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), res


def p8(tmp: Path, n: int) -> dict[str, float]:
    proj = make_project(tmp / "p8", n)
    warm_cache(proj)
    env = {"GOLDGATE_SIM_URL": "http://127.0.0.1:9/v1"}  # never called: every answer is cached
    out: dict[str, float] = {}
    out["unsharded"], out["unsharded_cpu"], res = cpu_timed(GG + ["run", "--out", str(tmp / "full"), "--", "-q", "--tb=no",
                                                                  "-rN"], proj, env)
    assert (tmp / "full/summary.json").exists(), res.stdout[-2000:] + res.stderr[-2000:]
    shards = []
    for i in range(1, 5):
        wall, out[f"shard{i}_cpu"], res = cpu_timed(GG + ["run", "--shard", f"{i}/4", "--out", str(tmp / f"s{i}"), "--",
                                                          "-q", "--tb=no", "-rN"], proj, env)
        assert (tmp / f"s{i}/summary.json").exists(), res.stdout[-2000:] + res.stderr[-2000:]
        out[f"shard{i}"] = wall
        shards.append(str(tmp / f"s{i}"))
    out["merge"], out["merge_cpu"], res = cpu_timed(GG + ["merge", *shards, "--out", str(tmp / "merged")], proj, env)
    assert res.returncode in (0, 1), res.stderr[-2000:]
    full = json.loads((tmp / "full/summary.json").read_text())
    merged = json.loads((tmp / "merged/summary.json").read_text())
    keys = ("cases", "passed", "failed", "errors", "cost_usd")
    out["same_totals"] = float(all(full["totals"][k] == merged["totals"][k] for k in keys)
                               and full["suites"][0]["gate"] == merged["suites"][0]["gate"])
    out["shards"] = sum(out[f"shard{i}"] for i in range(1, 5))
    out["shards_cpu"] = sum(out[f"shard{i}_cpu"] for i in range(1, 5))
    return out


def _batch_project(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    gdir = root / "evals/goldens"
    gdir.mkdir(parents=True)
    recs = [{"id": f"p{i:06d}", "inputs": {"text": f"pool message {i} about my card"},
             "expected": {"label": LABELS[i % len(LABELS)]}, "metadata": {"split": "pool"},
             "provenance": {"source": "human"}} for i in range(n)]
    recs += [{"id": f"t{i:04d}", "inputs": {"text": f"training message {i} about a transfer"},
              "expected": {"label": LABELS[i % len(LABELS)]}, "metadata": {"split": split},
              "provenance": {"source": "human"}} for i, split in ((i, "train" if i < 800 else "test") for i in range(1000))]
    (gdir / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "prompt.md").write_text("## system\nLabels: {{ labels }}\n## user\n{{ text }}\n")
    (root / "pyproject.toml").write_text(f"""
[tool.goldgate]
concurrency = 32

[tool.goldgate.distill]
batch_poll_s = 1

[tool.goldgate.slots.router]
use = "sim"
labels = {json.dumps(LABELS)}

[tool.goldgate.candidates.sim]
model = "openai/sim-bench"
prompt = "prompt.md"
api_base = "${{GOLDGATE_SIM_URL}}"
input_cost_per_token = 0.00000015
output_cost_per_token = 0.0000006
batch_input_cost_per_token = 0.000000075
batch_output_cost_per_token = 0.0000003
""")
    return root


def batch(tmp: Path, n: int) -> dict[str, float]:
    proj = _batch_project(tmp / "batch", n)
    argv = GG + ["distill", "--slot", "router", "--candidate", "student", "--goldens", "pool", "--pool-split", "pool",
                 "--batch"]
    out: dict[str, float] = {}
    settings = SimSettings(keys=[proj / "evals/goldens/pool.jsonl"], port=0, batch_delay_s=20, batch_fail_rate=0.02,
                           format_noise=0.0)
    with SimProcess(settings) as sim:
        env = {**ENV, "GOLDGATE_SIM_URL": sim.url}
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=proj, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        state = proj / ".goldgate/batches"
        expected = -(-n // 50_000)  # batches of at most 50,000 requests
        while len(list(state.glob("batch_*.json"))) < expected and proc.poll() is None:
            time.sleep(0.2)
        out["submit_s"] = time.perf_counter() - t0
        time.sleep(3)  # polling, with progress
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        out["batches_before_resume"] = sim.stats()["batches"]
        t1 = time.perf_counter()
        res = subprocess.run(argv, cwd=proj, env=env, capture_output=True, text=True, check=False)
        out["resume_s"] = time.perf_counter() - t1
        assert res.returncode == 0, res.stderr[-3000:]
        out["batches_after_resume"] = sim.stats()["batches"]
        out["batch_requests"] = sim.stats()["batch_requests"]
        out["live_requests"] = sim.stats()["requests"]
    card = json.loads((proj / "artifacts/student/card.json").read_text())
    pool = card["data"]["pool"]
    out["labelled"], out["unusable"] = pool["labelled"], pool["unusable"]
    out["teacher_usd"] = card["data"]["teacher_usd"]
    print(res.stdout, end="")
    print("\n".join(line for line in res.stderr.splitlines() if "goldgate batch" in line)[-600:])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--only", choices=("p8", "batch"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "p8"):
            r = p8(tmp, args.n)
            ratio = r["shards"] / r["unsharded"]
            walls = ", ".join(f"{r[f'shard{i}']:.1f}" for i in range(1, 5))
            print(f"P8  {args.n:,} cases, cached: unsharded {r['unsharded']:.1f} s; 4 shards one after another "
                  f"{r['shards']:.1f} s ({walls}) = {ratio:.2f}x "
                  f"(target <= 1.2x); merge {r['merge']:.1f} s (target <= 5 s); "
                  f"same totals and gates: {bool(r['same_totals'])}")
            print(f"    CPU: unsharded {r['unsharded_cpu']:.1f} s; shards {r['shards_cpu']:.1f} s = "
                  f"{r['shards_cpu'] / r['unsharded_cpu']:.2f}x; merge {r['merge_cpu']:.1f} s")
        if args.only in (None, "batch"):
            r = batch(tmp, args.n)
            print(f"BATCH {args.n:,} pool records: submitted in {r['submit_s']:.1f} s, killed while polling; "
                  f"rerun resumed and finished in {r['resume_s']:.1f} s; batches created {r['batches_before_resume']} "
                  f"before / {r['batches_after_resume']} after the resume ({r['batch_requests']:,} batch requests, "
                  f"{r['live_requests']} live calls); {r['labelled']:,} labelled + {r['unusable']:,} reported = "
                  f"{r['labelled'] + r['unusable']:,}; teacher cost ${r['teacher_usd']:.4f} at the batch price")


if __name__ == "__main__":
    main()
