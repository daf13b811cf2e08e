"""Spread a batch of model calls over worker processes, so litellm's per-call CPU uses every core.

The parent never imports litellm on this path: each worker imports it (in parallel), claims and
makes its share of the calls through the same `runner.fill` as the in-process path, writes each
result to the shared SQLite cache, and streams it back as a JSON line for the progress bar.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, fields

from goldgate.calls import CallRequest, CallResult
from goldgate.errors import ConfigError, GoldgateError
from goldgate.runner import RunnerSettings, RunStats, fill

__all__ = ["fill_in_processes"]

_REQ_FIELDS = [f.name for f in fields(CallRequest) if f.init]


async def fill_in_processes(
    missing: list[CallRequest],
    results: dict[str, CallResult],
    settings: RunnerSettings,
    stats: RunStats,
    processes: int,
    on_result: Callable[[CallResult], None],
) -> None:
    share = max(1, settings.concurrency // processes)
    conf = json.dumps({"cache_path": str(settings.cache_path), "concurrency": share,
                       "timeout_s": settings.timeout_s, "max_retries": settings.max_retries})
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "goldgate.callpool", conf,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**24,
        )
        for _ in range(processes)
    ]
    for i, proc in enumerate(procs):
        assert proc.stdin is not None
        lines = (json.dumps({k: getattr(r, k) for k in _REQ_FIELDS}) + "\n" for r in missing[i::processes])
        proc.stdin.write("".join(lines).encode("utf-8"))
        await proc.stdin.drain()
        proc.stdin.close()
    fatal: list[str] = []

    async def read(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            msg = json.loads(line)
            if "result" in msg:
                res = CallResult.from_dict(msg["result"])
                results[res.key] = res
                on_result(res)
            elif "stats" in msg:
                for k in ("llm_calls", "throttled", "waited_on_peers"):
                    setattr(stats, k, getattr(stats, k) + msg["stats"][k])
                floor = msg["stats"]["min_concurrency"]
                stats.min_concurrency = min(stats.min_concurrency or floor, floor)
            elif "fatal" in msg:
                fatal.append(msg["fatal"])
        if await proc.wait() != 0 and not fatal:
            fatal.append(f"call worker exited with code {proc.returncode}")

    await asyncio.gather(*(read(p) for p in procs))
    if fatal:
        raise ConfigError(fatal[0])
    lost = [r.key for r in missing if r.key not in results]
    if lost:
        raise GoldgateError(f"call workers returned no result for {len(lost)} calls")


def _worker(conf: dict) -> int:
    from goldgate.cache import CallCache

    settings = RunnerSettings(cache_path=conf["cache_path"], concurrency=conf["concurrency"],
                              timeout_s=conf["timeout_s"], max_retries=conf["max_retries"], progress=False)
    reqs = [CallRequest(**json.loads(line)) for line in sys.stdin if line.strip()]
    out = sys.stdout

    def emit(res: CallResult) -> None:
        out.write(json.dumps({"result": res.to_dict()}) + "\n")
        out.flush()

    stats = RunStats()
    with CallCache(settings.cache_path) as cache:
        try:
            asyncio.run(fill(reqs, {}, cache, settings, stats, emit))
        except GoldgateError as exc:
            out.write(json.dumps({"fatal": str(exc)}) + "\n")
            return 2
    out.write(json.dumps({"stats": asdict(stats)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_worker(json.loads(sys.argv[1])))
