"""P1-P3: eval-run throughput against `goldgate sim`, as ratios to baselines measured in the same run.

P1  1,000 cases, 100 ms latency, concurrency 32: goldgate's whole pytest run vs the latency floor and a
    bare `litellm.acompletion` gather loop (import included); also under `-n 2`.
P2  10,000 cases all from cache vs a bare parametrised no-op pytest run of 10,000 cases.
P3  `--collect-only` of 10,000 cases (target <= 3 s), with litellm not imported.

Usage: python bench/bench_throughput.py [--n 1000] [--cached-n 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _project import bare_litellm, make_project, timed

from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

PYTEST = [sys.executable, "-m", "pytest", "-q", "--tb=no", "-rN", "-p", "no:cacheprovider", "--goldgate-no-progress"]


def p1(tmp: Path, n: int, latency_ms: int, concurrency: int) -> dict[str, float]:
    proj = make_project(tmp / "p1", n, concurrency)
    key = proj / "evals" / "goldens" / "bench.jsonl"
    floor = n * latency_ms / 1000 / concurrency
    out: dict[str, float] = {"floor": floor}
    with SimProcess(SimSettings(keys=[key], latency_ms=latency_ms, accuracy=0.9, port=0)) as sim:
        env = {"GOLDGATE_SIM_URL": sim.url}
        out["bare_wall"], out["bare_loop"], out["bare_cpu"] = bare_litellm(n, concurrency, sim.url, proj)
        for label, extra in (("goldgate", []), ("goldgate_n2", ["-n", "2"])):
            (proj / ".goldgate").exists() and __import__("shutil").rmtree(proj / ".goldgate")
            sim.reset()
            wall, res = timed(PYTEST + ["evals", *extra], proj, env)
            if res.returncode != 0:
                raise SystemExit(f"{label} failed:\n{res.stdout[-3000:]}")
            out[label] = wall
            out[label + "_requests"] = sim.stats()["requests"]
    return out


def p2_p3(tmp: Path, n: int) -> dict[str, float]:
    proj = make_project(tmp / "p2", n)
    key = proj / "evals" / "goldens" / "bench.jsonl"
    out: dict[str, float] = {}
    with SimProcess(SimSettings(keys=[key], port=0)) as sim:
        env = {"GOLDGATE_SIM_URL": sim.url}
        timed(PYTEST + ["evals"], proj, env)  # warm the cache
        sim.reset()
        out["cached"], _ = timed(PYTEST + ["evals"], proj, env)
        out["cached_requests"] = sim.stats()["requests"]
    noop = tmp / "noop"
    noop.mkdir()
    (noop / "test_noop.py").write_text(f"import pytest\n\n@pytest.mark.parametrize('i', range({n}))\n"
                                       "def test_noop(i):\n    pass\n")
    out["noop"], res = timed([sys.executable, "-m", "pytest", "-q", "--tb=no", "-rN", "-p", "no:cacheprovider",
                              "test_noop.py"], noop)
    assert res.returncode == 0, res.stdout[-1000:]
    wall, res = timed([sys.executable, "-X", "importtime", *PYTEST[1:], "evals", "--collect-only"], proj)
    out["collect"] = wall
    out["collect_imports_litellm"] = float(any("| litellm" in line for line in res.stderr.splitlines()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--cached-n", type=int, default=10000)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="goldgate-bench-") as d:
        tmp = Path(d)
        r1 = p1(tmp, args.n, args.latency_ms, args.concurrency)
        r2 = p2_p3(tmp, args.cached_n)
    cpu_ms = 1000 * r1["bare_cpu"] / args.n
    print(f"P1  {args.n} cases, {args.latency_ms} ms latency, concurrency {args.concurrency}")
    print(f"    latency floor              {r1['floor']:6.2f} s")
    print(f"    bare litellm loop          {r1['bare_wall']:6.2f} s  (loop {r1['bare_loop']:.2f} s; "
          f"litellm process CPU {cpu_ms:.1f} ms/call incl. import)")
    for label in ("goldgate", "goldgate_n2"):
        print(f"    {label:<26} {r1[label]:6.2f} s  = {r1[label] / r1['bare_wall']:.2f}x bare litellm "
              f"(target <= 1.25x), {r1[label] / r1['floor']:.2f}x floor, {int(r1[label + '_requests'])} requests")
    print(f"P2  {args.cached_n} cached cases        {r2['cached']:6.2f} s  = {r2['cached'] / r2['noop']:.2f}x "
          f"no-op pytest ({r2['noop']:.2f} s; target <= 1.5x), {int(r2['cached_requests'])} requests")
    print(f"P3  collect {args.cached_n} cases        {r2['collect']:6.2f} s  (target <= 3 s), "
          f"litellm imported: {'yes' if r2['collect_imports_litellm'] else 'no'}")


if __name__ == "__main__":
    main()
