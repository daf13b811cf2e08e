"""Spread a batch of model calls over worker processes, so litellm's per-call CPU uses every core.

The parent never imports litellm on this path: each worker imports it (in parallel), claims and
makes its share of the calls through the same `runner.fill` as the in-process path, writes each
result to the shared SQLite cache, and streams it back as a JSON line for the progress bar.
A pool can be started before the calls are known (`prewarm`), so the workers' ~3 s litellm import
overlaps pytest's start-up and collection instead of following it.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, fields

from goldgate.calls import CallRequest, CallResult
from goldgate.errors import ConfigError, GoldgateError
from goldgate.runner import RunnerSettings, RunStats, fill

__all__ = ["CallPool", "discard_prewarmed", "prewarm", "take_prewarmed"]

_REQ_FIELDS = [f.name for f in fields(CallRequest) if f.init]
_prewarmed: CallPool | None = None


def _conf(settings: RunnerSettings, processes: int) -> dict:
    return {"cache_path": str(settings.cache_path), "concurrency": max(1, settings.concurrency // processes),
            "timeout_s": settings.timeout_s, "max_retries": settings.max_retries}


class CallPool:
    """Worker processes that import litellm as they start, then make one batch of calls each."""

    def __init__(self, settings: RunnerSettings, processes: int):
        self.conf = _conf(settings, processes)
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "goldgate.callpool", json.dumps(self.conf)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(processes)
        ]

    def fits(self, settings: RunnerSettings) -> bool:
        return self.conf == _conf(settings, len(self.procs))

    def run(self, missing: list[CallRequest], results: dict[str, CallResult], stats: RunStats,
            on_result: Callable[[CallResult], None]) -> None:
        n = len(self.procs)
        for i, proc in enumerate(self.procs):
            assert proc.stdin is not None
            lines = (json.dumps({k: getattr(r, k) for k in _REQ_FIELDS}) + "\n" for r in missing[i::n])
            try:
                proc.stdin.write("".join(lines).encode("utf-8"))
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the worker died; reported below by its exit code
        fatal: list[str] = []
        sel = selectors.DefaultSelector()
        for proc in self.procs:
            assert proc.stdout is not None
            sel.register(proc.stdout, selectors.EVENT_READ, proc)
        while sel.get_map():
            for key, _ in sel.select():
                line = key.fileobj.readline()  # type: ignore[union-attr]
                if not line:
                    sel.unregister(key.fileobj)
                    continue
                self._handle(json.loads(line), results, stats, on_result, fatal)
        for proc in self.procs:
            if proc.wait() != 0 and not fatal:
                fatal.append(f"call worker exited with code {proc.returncode}")
        if fatal:
            raise ConfigError(fatal[0])
        lost = [r.key for r in missing if r.key not in results]
        if lost:
            raise GoldgateError(f"call workers returned no result for {len(lost)} calls")

    @staticmethod
    def _handle(msg: dict, results: dict[str, CallResult], stats: RunStats,
                on_result: Callable[[CallResult], None], fatal: list[str]) -> None:
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

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.stdin.close()  # type: ignore[union-attr]  # no calls: the worker exits
                    proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()


def prewarm(settings: RunnerSettings, processes: int) -> None:
    """Start a pool now for a batch that will come later (e.g. after pytest's collection)."""
    global _prewarmed
    if _prewarmed is None and processes > 1:
        _prewarmed = CallPool(settings, processes)


def take_prewarmed(settings: RunnerSettings) -> CallPool | None:
    global _prewarmed
    pool, _prewarmed = _prewarmed, None
    if pool is not None and not pool.fits(settings):
        pool.close()
        return None
    return pool


def discard_prewarmed() -> None:
    global _prewarmed
    if _prewarmed is not None:
        _prewarmed.close()
        _prewarmed = None


def _worker(conf: dict) -> int:
    from goldgate.cache import CallCache
    from goldgate.llm import LLMClient

    LLMClient(timeout_s=conf["timeout_s"], max_retries=conf["max_retries"])  # import litellm while we wait
    settings = RunnerSettings(cache_path=conf["cache_path"], concurrency=conf["concurrency"],
                              timeout_s=conf["timeout_s"], max_retries=conf["max_retries"], progress=False)
    reqs = [CallRequest(**json.loads(line)) for line in sys.stdin if line.strip()]
    out = sys.stdout
    if not reqs:
        return 0

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
