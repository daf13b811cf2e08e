"""P9: an eval run under injected faults against the same run without them, as a ratio in one run.

The sim answers 5% of requests with 429 (Retry-After 1 s), 5% with 500 and hangs 1% for 5 s;
4,500 cases at concurrency 32 and 100 ms latency. Target: the fault run takes <= 2x the clean run,
and its counters match what the sim saw (every request counted once, every 429 counted as throttled).

Usage: python bench/bench_faults.py [--n 4500] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _project import make_project, timed

from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

PYTEST = [sys.executable, "-m", "pytest", "-q", "--tb=no", "-rN", "-p", "no:cacheprovider", "--goldgate-no-progress"]
FAULTS = {"rate_429": 0.05, "retry_after_s": 1.0, "rate_500": 0.05, "rate_hang": 0.01, "hang_s": 5.0}


def run(proj: Path, faults: dict[str, float], latency_ms: int) -> dict[str, float]:
    shutil.rmtree(proj / ".goldgate", ignore_errors=True)
    out = proj / "run"
    key = proj / "evals" / "goldens" / "bench.jsonl"
    with SimProcess(SimSettings(keys=[key], latency_ms=latency_ms, accuracy=0.9, port=0, **faults)) as sim:
        wall, res = timed([*PYTEST, "evals", "--goldgate-out", str(out)], proj, {"GOLDGATE_SIM_URL": sim.url})
        seen = sim.stats()
    if res.returncode not in (0, 1):
        raise SystemExit(res.stdout[-3000:] + res.stderr[-3000:])
    t = json.loads((out / "summary.json").read_text())["totals"]
    return {"wall": wall, "requests": seen["requests"], "sim_429": seen["by_status"].get("429", 0),
            "hangs": seen["hangs"], "llm_calls": t["llm_calls"], "throttled": t["throttled"],
            "min_concurrency": t["min_concurrency"], "cases": t["cases"], "errors": t["errors"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4500)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency-ms", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="goldgate-bench-") as d:
        proj = make_project(Path(d) / "p9", args.n, args.concurrency)
        clean = run(proj, {}, args.latency_ms)
        faulty = run(proj, FAULTS, args.latency_ms)
    print(f"P9  {args.n} cases, concurrency {args.concurrency}, {args.latency_ms} ms latency")
    for label, r in (("clean", clean), ("faults", faulty)):
        print(f"    {label:<7} {r['wall']:7.2f} s  requests {r['requests']} (429s {r['sim_429']}, hangs {r['hangs']}); "
              f"summary: llm_calls {r['llm_calls']}, throttled {r['throttled']}, cases {r['cases']}, "
              f"errors {r['errors']}, min concurrency {r['min_concurrency']}")
    ratio = faulty["wall"] / clean["wall"]
    counted = faulty["llm_calls"] == faulty["requests"] and faulty["throttled"] == faulty["sim_429"]
    print(f"    fault run = {ratio:.2f}x the clean run (target <= 2x); counters match the sim: {'yes' if counted else 'NO'}")


if __name__ == "__main__":
    main()
