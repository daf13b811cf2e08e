"""Spread a batch of model calls over worker processes, so litellm's per-call CPU uses every core.

The parent never imports litellm on this path. One pool process imports it (~3 s of CPU), reads the
batch, then forks one worker per share, so the import is paid once rather than once per core
(where there is no fork, each share gets its own process and import). Each worker claims and makes
its calls through the same `runner.fill` as the in-process path, writes each result to the shared
SQLite cache, and streams it back as a JSON line (relayed whole by the pool process) for the
progress bar. A pool can be started before the calls are known (`prewarm`), so the import overlaps
pytest's start-up and collection instead of following it.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from goldgate.calls import CallRequest, CallResult
from goldgate.errors import ConfigError, GoldgateError
from goldgate.runner import RunnerSettings, RunStats, fill

__all__ = ["CallPool", "discard_prewarmed", "prewarm", "take_prewarmed"]

_REQ_FIELDS = [f.name for f in fields(CallRequest) if f.init]
_prewarmed: CallPool | None = None
_CAN_FORK = hasattr(os, "fork")  # elsewhere each share gets its own process (and litellm import)


def _conf(settings: RunnerSettings, processes: int) -> dict:
    return {"cache_path": str(settings.cache_path), "concurrency": max(1, settings.concurrency // processes),
            "timeout_s": settings.timeout_s, "max_retries": settings.max_retries,
            "forks": processes if _CAN_FORK else 1}


class CallPool:
    """Processes that import litellm as they start, then make one batch of calls between them."""

    def __init__(self, settings: RunnerSettings, processes: int):
        self.processes = processes
        self.conf = _conf(settings, processes)
        spawn = 1 if _CAN_FORK else processes
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "goldgate.callpool", json.dumps(self.conf)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(spawn)
        ]

    def fits(self, settings: RunnerSettings) -> bool:
        return self.conf == _conf(settings, self.processes)

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


def _pool(conf: dict) -> int:
    """The pool process: import litellm once, read the batch, fork a worker per share, relay their lines."""
    import gc

    from goldgate.llm import LLMClient

    # The protocol gets a private copy of stdout; fd 1 becomes stderr, so a stray print from a
    # library lands in the log instead of corrupting the JSON lines.
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    LLMClient(timeout_s=conf["timeout_s"], max_retries=conf["max_retries"])  # import litellm while we wait
    reqs = [CallRequest(**json.loads(line)) for line in sys.stdin if line.strip()]
    forks = min(conf["forks"], len(reqs))
    if forks <= 1:
        return _work(conf, reqs, proto)
    gc.freeze()  # the imported modules stay shared with the workers instead of being copied on write
    children: dict[int, int] = {}
    for i in range(forks):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # worker: no return into the pool's code, whatever happens
            code = 1
            try:
                os.close(read_fd)
                proto.close()
                for fd in children.values():
                    os.close(fd)
                with os.fdopen(write_fd, "wb") as out:
                    code = _work(conf, reqs[i::forks], out)
            except BaseException:  # noqa: BLE001 - report it; os._exit below, never back into the pool
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(write_fd)
        children[pid] = read_fd
    return _relay(children, proto)


def _relay(children: dict[int, int], out: Any) -> int:
    """Copy the workers' JSON lines to `out`, whole lines only, then reap them."""
    partial = {fd: b"" for fd in children.values()}
    sel = selectors.DefaultSelector()
    for fd in partial:
        sel.register(fd, selectors.EVENT_READ)
    while sel.get_map():
        for key, _ in sel.select():
            fd = key.fd
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                sel.unregister(fd)
                os.close(fd)
                continue
            head, _, partial[fd] = (partial[fd] + chunk).rpartition(b"\n")
            if head:
                out.write(head + b"\n")
                out.flush()
    code = 0
    for pid in children:
        status = os.waitpid(pid, 0)[1]
        code = code or os.waitstatus_to_exitcode(status)
    return 0 if code == 0 else 2


def _work(conf: dict, reqs: list[CallRequest], out: Any) -> int:
    """One worker's share of the calls, the results streamed to `out` as they land."""
    from goldgate.cache import CallCache

    settings = RunnerSettings(cache_path=conf["cache_path"], concurrency=conf["concurrency"],
                              timeout_s=conf["timeout_s"], max_retries=conf["max_retries"], progress=False)
    if not reqs:
        return 0

    lines: list[bytes] = []
    timer: list[asyncio.TimerHandle] = []

    def flush() -> None:
        timer.clear()
        out.write(b"".join(lines))
        out.flush()
        lines.clear()

    def send(msg: dict) -> None:
        lines.append(json.dumps(msg).encode("utf-8") + b"\n")
        flush()

    def send_result(res: CallResult) -> None:
        # Answers leave every ~20 ms, not one write (and two process wake-ups) per answer.
        lines.append(json.dumps({"result": res.to_dict()}).encode("utf-8") + b"\n")
        if not timer:
            timer.append(asyncio.get_running_loop().call_later(0.02, flush))

    stats = RunStats()
    with CallCache(settings.cache_path) as cache:
        try:
            asyncio.run(fill(reqs, {}, cache, settings, stats, send_result))
        except GoldgateError as exc:
            send({"fatal": str(exc)})
            return 2
    send({"stats": asdict(stats)})
    return 0


if __name__ == "__main__":
    sys.exit(_pool(json.loads(sys.argv[1])))
