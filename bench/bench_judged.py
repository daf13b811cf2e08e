"""P6: a judged suite against `goldgate sim`, as ratios to the same suite without the judge, measured
in the same run.

P6  1,000 cases, one judge per case, 100 ms latency (generations and judge calls alike),
    concurrency 32: the whole `pytest evals` run with the judge vs without it (target <= 1.3x);
    the sim's peak in-flight requests (must stay <= concurrency); then a re-run after editing only
    the rubric (must make 0 generation calls and N judge calls).

Usage: python bench/bench_judged.py [--n 1000] [--latency-ms 100] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _project import make_project, timed

from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

PYTEST = [sys.executable, "-m", "pytest", "-q", "--tb=no", "-rN", "-p", "no:cacheprovider", "--goldgate-no-progress"]

JUDGE = """
[tool.goldgate.judges.fit]
model = "openai/sim-judge"
rubric = "rubric.md"
api_base = "${GOLDGATE_SIM_URL}"
input_cost_per_token = 0.0000025
output_cost_per_token = 0.00001
"""

JUDGED_EVAL = """
import goldgate as gg

@gg.eval("bench", model="router", split="test", judges=["fit"], min_pass_rate=0.0, max_error_rate=1.0)
def test_case(case, output, verdicts):
    assert verdicts["fit"].passed
"""


def run(proj: Path, sim: SimProcess, label: str) -> tuple[float, dict]:
    sim.reset()
    wall, res = timed(PYTEST + ["evals"], proj, {"GOLDGATE_SIM_URL": sim.url})
    if "passed" not in res.stdout and "failed" not in res.stdout:
        raise SystemExit(f"{label} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return wall, sim.stats()


def p6(tmp: Path, n: int, latency_ms: int, concurrency: int) -> dict[str, float]:
    plain = make_project(tmp / "plain", n, concurrency)
    judged = make_project(tmp / "judged", n, concurrency)
    (judged / "pyproject.toml").write_text((judged / "pyproject.toml").read_text() + JUDGE)
    (judged / "rubric.md").write_text("Pass when the output is the query's intent.\n")
    (judged / "evals" / "test_bench.py").write_text(JUDGED_EVAL)
    key = plain / "evals" / "goldens" / "bench.jsonl"
    out: dict[str, float] = {"floor": n * latency_ms / 1000 / concurrency}
    with SimProcess(SimSettings(keys=[key], latency_ms=latency_ms, accuracy=0.9, port=0)) as sim:
        for label, proj in (("plain", plain), ("judged", judged)):
            shutil.rmtree(proj / ".goldgate", ignore_errors=True)
            out[label], stats = run(proj, sim, label)
            out[label + "_requests"] = stats["requests"]
            out[label + "_peak"] = stats["max_inflight"]
        (judged / "rubric.md").write_text("Pass when the output is the query's intent. Be strict.\n")
        out["rejudge"], stats = run(judged, sim, "rejudge")
        out["rejudge_generations"] = stats["by_model"].get("sim-bench", 0)
        out["rejudge_judge_calls"] = stats["by_model"].get("sim-judge", 0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="goldgate-bench-") as d:
        r = p6(Path(d), args.n, args.latency_ms, args.concurrency)
    print(f"P6  {args.n} cases, one judge each, {args.latency_ms} ms latency, concurrency {args.concurrency}")
    print(f"    latency floor, generations only {r['floor']:6.2f} s (with the judge: {2 * r['floor']:.2f} s)")
    print(f"    without the judge          {r['plain']:6.2f} s  {int(r['plain_requests'])} requests, "
          f"peak in flight {int(r['plain_peak'])}")
    print(f"    with the judge             {r['judged']:6.2f} s  = {r['judged'] / r['plain']:.2f}x (target <= 1.3x), "
          f"{int(r['judged_requests'])} requests, peak in flight {int(r['judged_peak'])} "
          f"(limit {args.concurrency})")
    print(f"    re-run, rubric edited      {r['rejudge']:6.2f} s  {int(r['rejudge_generations'])} generation calls, "
          f"{int(r['rejudge_judge_calls'])} judge calls")


if __name__ == "__main__":
    main()
