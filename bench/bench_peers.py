"""P1 against the peers: goldgate vs DeepEval and promptfoo on one `goldgate sim`, same cases, one run.

Every tool sends the same two messages per case (system "Labels: ..." + user "Query: ...", as
goldgate's prompt.md renders them) to the same sim, with the same concurrency, and is timed as a
whole process (imports included). Ratios only mean something inside one run, so all rows share it.
The sim runs with format_noise=0 so exact-match peers and goldgate's label parser score alike: every
row should report the same pass count and N requests, or its time is not comparable.

Set up the peers once (they are not goldgate dependencies): bash bench/peers/setup.sh
Usage: python bench/bench_peers.py [--n 1000] [--rounds 3] [--slow]
  --rounds R runs the fast rows R times, interleaved, each round starting with a different tool;
  the table shows medians and the ratios are per round (both runs of a ratio share a round).
  --slow adds DeepEval's evaluate() at its defaults (~65 s) and `deepeval test run` (~185 s).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _project import ENV, LABELS, bare_litellm, make_project, text, timed

from goldgate.errors import GoldgateError
from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings

HERE = Path(__file__).resolve().parent
DEEPEVAL_PY = HERE / ".venv-deepeval" / "bin" / "python"
PROMPTFOO = HERE / ".peers-node" / "node_modules" / ".bin" / "promptfoo"
PEER_ENV = {
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
    "DEEPEVAL_NO_INSPECT_PROMPT": "1",
    "PROMPTFOO_DISABLE_TELEMETRY": "1",
    "PROMPTFOO_DISABLE_UPDATE": "1",
    "PROMPTFOO_DISABLE_SHARING": "1",
    "PROMPTFOO_CONFIG_DIR": str(HERE / ".peers-node" / "promptfoo-config"),
}
PYTEST = [
    sys.executable,
    "-m",
    "pytest",
    "evals",
    "-q",
    "--tb=no",
    "-rN",
    "-p",
    "no:cacheprovider",
    "--goldgate-no-progress",
]
WARMUP_N = 20
BARE = "bare litellm.acompletion gather loop"

# DeepEval's evaluate(): outputs generated with AsyncOpenAI at the same concurrency, then scored.
DEEPEVAL_EVALUATE = r"""
import asyncio, json, sys
from openai import AsyncOpenAI
from deepeval import evaluate
from deepeval.evaluate.configs import AsyncConfig, CacheConfig
from deepeval.metrics import ExactMatchMetric
from deepeval.test_case import LLMTestCase

cases_path, url, concurrency, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cases = json.load(open(cases_path))

async def generate():
    client = AsyncOpenAI(base_url=url, api_key="dummy")
    sem = asyncio.Semaphore(concurrency)
    async def one(case):
        async with sem:
            r = await client.chat.completions.create(model="sim-bench", messages=case["messages"])
            return r.choices[0].message.content
    return await asyncio.gather(*(one(c) for c in cases))

outputs = asyncio.run(generate())
test_cases = [LLMTestCase(input=c["messages"][-1]["content"], actual_output=o, expected_output=c["expected"])
              for c, o in zip(cases, outputs)]
best = dict(async_config=AsyncConfig(max_concurrent=concurrency), cache_config=CacheConfig(write_cache=False))
result = evaluate(test_cases, [ExactMatchMetric()], **(best if mode == "best" else {}))
print("BENCH_PASSED", sum(bool(r.success) for r in result.test_results))
"""

# DeepEval's pytest-native path, as its docs show it: one parametrised test per golden, assert_test.
DEEPEVAL_TEST_FILE = r"""
import json, os
import pytest
from openai import OpenAI
from deepeval import assert_test
from deepeval.metrics import ExactMatchMetric
from deepeval.test_case import LLMTestCase

CASES = json.load(open(os.environ["BENCH_CASES"]))
client = OpenAI(base_url=os.environ["BENCH_URL"], api_key="dummy")

@pytest.mark.parametrize("case", CASES)
def test_case(case):
    out = client.chat.completions.create(model="sim-bench", messages=case["messages"]).choices[0].message.content
    assert_test(LLMTestCase(input=case["messages"][-1]["content"], actual_output=out,
                            expected_output=case["expected"]), [ExactMatchMetric()])
"""


class PeerError(GoldgateError):
    """A peer tool is missing or its run failed; the benchmark skips its row and says why."""


@dataclass(frozen=True)
class Row:
    name: str
    wall: float
    cpu: float
    passed: int
    requests: int
    peak: int  # the most requests the sim saw in flight at once: the concurrency really reached


@dataclass(frozen=True)
class Bench:
    """What every runner gets: the sim, where to work, and the cases in both formats."""

    sim: SimProcess
    tmp: Path
    n: int
    concurrency: int

    def cases(self, n: int) -> Path:
        """The cases as the peers read them: goldgate's rendered messages plus the expected label."""
        path = self.tmp / f"cases-{n}.json"
        if not path.exists():
            system = {"role": "system", "content": "Labels: " + "\n".join(LABELS)}
            path.write_text(
                json.dumps(
                    [
                        {
                            "messages": [system, {"role": "user", "content": f"Query: {text(i)}"}],
                            "expected": LABELS[i % len(LABELS)],
                        }
                        for i in range(n)
                    ]
                )
            )
        return path


def run_peer(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float, failed_rc: int = 1
) -> tuple[float, float, str]:
    """(wall, CPU of the process tree, stdout) of one peer command; stdin closed so nothing prompts.

    `failed_rc` is the tool's exit status for "ran, some cases failed", which the sim's accuracy makes
    the normal outcome.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            cmd,
            check=False,
            cwd=cwd,
            env={**ENV, **PEER_ENV, **env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise PeerError(f"{cmd[0]}: no result within {timeout:.0f} s") from None
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if res.returncode not in (0, failed_rc):
        tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-3:]
        raise PeerError(f"{Path(cmd[0]).name} exited {res.returncode}: {' | '.join(tail)}")
    return wall, cpu, res.stdout


def workdir(b: Bench, name: str) -> Path:
    path = b.tmp / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def need(path: Path) -> None:
    if not path.exists():
        raise PeerError(f"{path} is missing: run bash bench/peers/setup.sh")


def goldgate_run(b: Bench, n: int) -> tuple[float, float, int]:
    proj = make_project(b.tmp / f"goldgate-{n}", n, b.concurrency)
    shutil.rmtree(proj / ".goldgate", ignore_errors=True)  # fresh cache
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, res = timed(PYTEST, proj, {"GOLDGATE_SIM_URL": b.sim.url})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
        raise PeerError(f"goldgate pytest exited {res.returncode}: {' | '.join(tail)}")
    (summary,) = (proj / ".goldgate" / "runs").glob("*/summary.json")
    passed = sum(s["passed"] for s in json.loads(summary.read_text())["suites"])
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, passed


def deepeval_evaluate(mode: str) -> Callable[[Bench, int], tuple[float, float, int]]:
    def run(b: Bench, n: int) -> tuple[float, float, int]:
        need(DEEPEVAL_PY)
        cwd = workdir(b, f"deepeval-{mode}-{n}")
        (cwd / "bench_deepeval.py").write_text(DEEPEVAL_EVALUATE)
        wall, cpu, out = run_peer(
            [
                str(DEEPEVAL_PY),
                "bench_deepeval.py",
                str(b.cases(n)),
                b.sim.url,
                str(b.concurrency),
                mode,
            ],
            cwd,
            {"DEEPEVAL_HOME": str(cwd / "home")},
            600,
        )
        return wall, cpu, int(_last(r"BENCH_PASSED (\d+)", out))

    return run


def deepeval_test_run(b: Bench, n: int) -> tuple[float, float, int]:
    need(DEEPEVAL_PY)
    cwd = workdir(b, f"deepeval-test-run-{n}")
    (cwd / "test_bench.py").write_text(DEEPEVAL_TEST_FILE)
    deepeval_cli = str(DEEPEVAL_PY.parent / "deepeval")
    env = {
        "BENCH_CASES": str(b.cases(n)),
        "BENCH_URL": b.sim.url,
        "DEEPEVAL_HOME": str(cwd / "home"),
    }
    wall, cpu, out = run_peer([deepeval_cli, "test", "run", "test_bench.py"], cwd, env, 900)
    return wall, cpu, int(_last(r"(\d+) passed", out))


def promptfoo_eval(b: Bench, n: int) -> tuple[float, float, int]:
    need(PROMPTFOO)
    cwd = workdir(b, f"promptfoo-{n}")
    cases = json.loads(b.cases(n).read_text())
    system = cases[0]["messages"][0]
    (cwd / "prompt.json").write_text(
        json.dumps([system, {"role": "user", "content": "Query: {{ text }}"}])
    )
    config = {
        "prompts": ["file://prompt.json"],
        "providers": [
            {"id": "openai:chat:sim-bench", "config": {"apiBaseUrl": b.sim.url, "apiKey": "dummy"}}
        ],
        "tests": [
            {
                "vars": {"text": c["messages"][1]["content"].removeprefix("Query: ")},
                "assert": [{"type": "equals", "value": c["expected"]}],
            }
            for c in cases
        ],
    }
    (cwd / "promptfooconfig.yaml").write_text(json.dumps(config))  # JSON is YAML
    cmd = [
        str(PROMPTFOO),
        "eval",
        "-c",
        "promptfooconfig.yaml",
        "--no-cache",
        "-j",
        str(b.concurrency),
        "--no-progress-bar",
        "--no-table",
        "-o",
        "results.json",
    ]
    wall, cpu, _ = run_peer(cmd, cwd, {}, 600, failed_rc=100)
    stats = json.loads((cwd / "results.json").read_text())["results"]["stats"]
    return wall, cpu, int(stats["successes"])


def _last(pattern: str, out: str) -> str:
    found = re.findall(pattern, out)
    if not found:
        raise PeerError(
            f"no pass count ({pattern!r}) in the output: {out.strip().splitlines()[-2:]}"
        )
    return found[-1]


Runner = Callable[[Bench, int], tuple[float, float, int]]


def run_once(b: Bench, name: str, runner: Runner) -> Row | None:
    """Time the tool on all N cases against a freshly reset sim."""
    try:
        b.sim.reset()
        wall, cpu, passed = runner(b, b.n)
    except (PeerError, OSError, ValueError, KeyError) as exc:
        print(f"  skipped {name}: {exc}", flush=True)
        return None
    stats = b.sim.stats()
    print(f"  measured {name}: {wall:.2f} s", flush=True)
    return Row(name, wall, cpu, passed, int(stats["requests"]), int(stats["max_inflight"]))


def warm_up(b: Bench, name: str, runner: Runner) -> bool:
    """A few cases first (bytecode, page cache, the tool's local DB); False if the tool can't run."""
    try:
        runner(b, WARMUP_N)
        return True
    except (PeerError, OSError, ValueError, KeyError) as exc:
        print(f"  skipped {name}: {exc}", flush=True)
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds of the fast rows; medians and per-round ratios are reported")
    ap.add_argument(
        "--slow", action="store_true", help="also DeepEval defaults and `deepeval test run` (one round)"
    )
    args = ap.parse_args()
    floor = args.n * args.latency_ms / 1000 / args.concurrency
    bare_loops: list[float] = []

    def bare(b: Bench, n: int) -> tuple[float, float, int]:
        wall, loop, cpu = bare_litellm(n, b.concurrency, b.sim.url, b.tmp)
        bare_loops.append(loop)
        return wall, cpu, -1

    fast: list[tuple[str, Runner]] = [
        (BARE, bare),
        ("goldgate (whole pytest run)", goldgate_run),
        (f"DeepEval evaluate(), async {args.concurrency}, no cache write", deepeval_evaluate("best")),
        (f"promptfoo eval --no-cache -j {args.concurrency}", promptfoo_eval),
    ]
    slow: list[tuple[str, Runner]] = []
    if args.slow:
        slow = [
            ("DeepEval evaluate(), defaults", deepeval_evaluate("defaults")),
            ("deepeval test run (pytest-native)", deepeval_test_run),
        ]
    samples: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory(prefix="goldgate-bench-peers-") as d:
        tmp = Path(d)
        key = make_project(tmp / "key", args.n) / "evals" / "goldens" / "bench.jsonl"
        settings = SimSettings(keys=[key], latency_ms=args.latency_ms, format_noise=0, port=0)
        with SimProcess(settings) as sim:
            b = Bench(sim, tmp, args.n, args.concurrency)
            fast = [(name, r) for name, r in fast if name == BARE or warm_up(b, name, r)]
            for i in range(args.rounds):
                print(f"round {i + 1}/{args.rounds}", flush=True)
                for name, runner in fast[i % len(fast):] + fast[:i % len(fast)]:  # each round starts elsewhere
                    row = run_once(b, name, runner)
                    if row is not None:
                        samples.setdefault(name, []).append(row)
            for name, runner in slow:
                row = run_once(b, name, runner)
                if row is not None:
                    samples[name] = [row]
    report(args, floor, samples, statistics.median(bare_loops))


def _median_row(rows: list[Row]) -> Row:
    return Row(rows[0].name, statistics.median(r.wall for r in rows), statistics.median(r.cpu for r in rows),
               rows[0].passed, rows[0].requests, max(r.peak for r in rows))


def report(args: argparse.Namespace, floor: float, samples: dict[str, list[Row]], bare_loop: float) -> None:
    print(
        f"\nP1 vs peers: {args.n} exact-match cases, goldgate sim {args.latency_ms} ms latency, "
        f"concurrency {args.concurrency}; medians of {args.rounds} interleaved rounds (slow rows: one)"
    )
    print(f"  {'':<48} {'wall':>8} {'CPU':>8} {'passed':>7} {'requests':>9} {'peak':>5}")
    print(f"  {'latency floor (N x latency / concurrency)':<48} {floor:7.2f}s")
    med = {name: _median_row(rows) for name, rows in samples.items()}
    for r in med.values():
        passed = "-" if r.passed < 0 else str(r.passed)
        print(f"  {r.name:<48} {r.wall:7.2f}s {r.cpu:7.2f}s {passed:>7} {r.requests:>9} {r.peak:>5}")
    bare = med[BARE]
    print(
        f"  (bare loop without its import: {bare_loop:.2f} s; "
        f"{1000 * bare.cpu / args.n:.1f} ms CPU per call incl. import; "
        "peak = most requests the sim saw in flight)"
    )
    gg_name = next((name for name in med if name.startswith("goldgate")), None)
    if gg_name is None:
        print("  goldgate did not run: no ratios")
        return

    def ratios(name: str) -> str:
        """Per-round ratios: each pair of runs shares a round, so the machine's drift cancels."""
        pairs = [x.wall / g.wall for x, g in zip(samples[name], samples[gg_name])]
        spread = f" (rounds {min(pairs):.2f}-{max(pairs):.2f})" if len(pairs) > 1 else ""
        return f"{statistics.median(pairs):6.2f}x{spread}"

    gg = med[gg_name]
    print(f"  goldgate = {gg.wall / bare.wall:.2f}x bare litellm (target <= 1.25x), {gg.wall / floor:.2f}x floor")
    for name in med:
        if name in (gg_name, BARE):
            continue
        goal = "target >= 10x" if "test run" in name else "target > 1x"
        print(f"  {name:<48} {ratios(name)} goldgate's time ({goal})")
    rows = [r for rs in samples.values() for r in rs]
    counts = sorted({r.passed for r in rows if r.passed >= 0})
    requests = sorted({r.requests for r in rows})
    fair = len(counts) == 1 and requests == [args.n]
    print(f"  {'comparable' if fair else 'NOT comparable'}: pass counts {counts}, requests per run {requests}")


if __name__ == "__main__":
    main()
