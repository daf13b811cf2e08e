"""Spread a batch of model calls over worker processes, so litellm's per-call CPU uses every core.

The parent never imports litellm on this path. One pool process imports it (~3 s of CPU), reads the
batch, then forks one worker per share, so the import is paid once rather than once per core
(where there is no fork, each share gets its own process and import). Each worker claims and makes
its calls through the same `runner.fill` as the in-process path, writes each result to the shared
SQLite cache, and streams it back as a JSON line (relayed whole by the pool process). In the parent
a reader thread hands each answer to whoever waits for it: the progress bar, or a test body that
runs while later calls are still out. A pool can be started before the calls are known
(`prewarm`), so the import overlaps pytest's start-up and collection instead of following it.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from goldgate.calls.base import CallRequest, CallResult, FollowUp
from goldgate.calls.batch import RunnerSettings, RunStats, fill
from goldgate.errors import ConfigError, GoldgateError

__all__ = ["CallPool", "discard_prewarmed", "prewarm", "take_prewarmed"]

_REQ_FIELDS = [f.name for f in fields(CallRequest) if f.init]
_prewarmed: CallPool | None = None
_CAN_FORK = hasattr(os, "fork")  # elsewhere each share gets its own process (and litellm import)


def _conf(settings: RunnerSettings, processes: int) -> dict:
    return {"cache_path": str(settings.cache_path), "concurrency": max(1, settings.concurrency // processes),
            "timeout_s": settings.timeout_s, "max_retries": settings.max_retries,
            "forks": processes if _CAN_FORK else 1, "fresh": settings.fresh}


class CallPool:
    """Processes that import litellm as they start, then make one batch of calls between them.

    Their settings come with the batch (`start`), so a pool can be started before the project's
    config is even loaded."""

    def __init__(self, processes: int):
        self.processes = processes
        spawn = 1 if _CAN_FORK else processes
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "goldgate.calls.pool"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(spawn)
        ]

    def start(self, settings: RunnerSettings, missing: list[CallRequest], results: dict[str, CallResult],
              stats: RunStats, on_result: Callable[[CallResult], None],
              followups: dict[str, list[FollowUp]] | None = None) -> None:
        """Hand the batch to the processes; a reader thread fills `results` (and `stats`) as answers
        land, so the pipes never fill up while the caller is busy with the first answers. Each
        request carries its follow-ups, which the worker that makes it makes next."""
        followups = followups or {}
        conf = _conf(settings, self.processes)
        n = len(self.procs)
        shares = [missing[i::n] for i in range(n)]
        # One "ready" per process that makes calls: a pool process forks up to `forks` workers.
        self._expected = sum(min(conf["forks"], len(share)) for share in shares if share)
        self._ready = 0
        self._done = False
        self._fatal: list[str] = []
        self._missing = missing
        self._results = results
        self._cond = threading.Condition()
        for proc, share in zip(self.procs, shares):
            assert proc.stdin is not None
            lines = (json.dumps(_request_line(r, followups.get(r.key))) + "\n" for r in share)
            try:
                proc.stdin.write((json.dumps(conf) + "\n" + "".join(lines)).encode("utf-8"))
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the worker died; reported by join() from its exit code
        self._reader = threading.Thread(target=self._read, args=(stats, on_result), name="goldgate-answers",
                                        daemon=True)
        self._reader.start()

    def _read(self, stats: RunStats, on_result: Callable[[CallResult], None]) -> None:
        sel = selectors.DefaultSelector()
        for proc in self.procs:
            assert proc.stdout is not None
            sel.register(proc.stdout, selectors.EVENT_READ, proc)
        try:
            while sel.get_map():
                for key, _ in sel.select():
                    line = key.fileobj.readline()  # type: ignore[union-attr]
                    if not line:
                        sel.unregister(key.fileobj)
                        continue
                    msg = json.loads(line)
                    with self._cond:
                        self._handle(msg, stats, on_result)
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _handle(self, msg: dict, stats: RunStats, on_result: Callable[[CallResult], None]) -> None:
        if "result" in msg:
            res = CallResult.from_dict(msg["result"])
            self._results[res.key] = res
            if not res.cached:  # counted as answers land, so a run stopped early still counts them
                stats.llm_calls += res.attempts
            on_result(res)
        elif "ready" in msg:
            self._ready += 1
        elif "stats" in msg:
            for k in ("throttled", "waited_on_peers", "cache_hits"):
                setattr(stats, k, getattr(stats, k) + msg["stats"][k])
            floor = msg["stats"]["min_concurrency"]
            stats.min_concurrency = min(stats.min_concurrency or floor, floor)
        elif "fatal" in msg:
            self._fatal.append(msg["fatal"])

    def wait_ready(self) -> None:
        """Block until every worker has passed its checks and is calling; raise if one refused."""
        with self._cond:
            self._cond.wait_for(lambda: self._ready >= self._expected or self._fatal or self._done)
            failed = bool(self._fatal) or (self._done and self._ready < self._expected)
        if failed:
            self.join()  # raises the worker's error

    def wait_for(self, key: str) -> None:
        with self._cond:
            self._cond.wait_for(lambda: key in self._results or self._done)

    def join(self) -> None:
        """Wait for every answer and process; raise if a worker failed or an answer is missing."""
        self._reader.join()
        fatal = list(self._fatal)
        for proc in self.procs:
            if proc.wait() != 0 and not fatal:
                fatal.append(f"call worker exited with code {proc.returncode}")
        if fatal:
            raise ConfigError(fatal[0])
        lost = [r.key for r in self._missing if r.key not in self._results]
        if lost:
            raise GoldgateError(f"call workers returned no result for {len(lost)} calls")

    def kill(self) -> None:
        """End the processes now (not needed after all, or the run stops early); what they
        committed stays in the cache."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()  # the pool process takes its forked workers down with it
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _request_line(req: CallRequest, then: list[FollowUp] | None) -> dict[str, Any]:
    line: dict[str, Any] = {k: getattr(req, k) for k in _REQ_FIELDS}
    if then:
        line["then"] = [f.to_dict() for f in then]
    return line


def _read_requests(lines: Any) -> tuple[list[CallRequest], dict[str, list[FollowUp]]]:
    reqs, followups = [], {}
    for line in lines:
        if line.strip():
            d = json.loads(line)
            then = d.pop("then", None)
            req = CallRequest(**d)
            reqs.append(req)
            if then:
                followups[req.key] = [FollowUp.from_dict(f) for f in then]
    return reqs, followups


def prewarm(processes: int) -> None:
    """Start a pool now for a batch that will come later (e.g. after pytest's collection)."""
    global _prewarmed
    if _prewarmed is None and processes > 1:
        _prewarmed = CallPool(processes)


def take_prewarmed(processes: int) -> CallPool | None:
    """The prewarmed pool, if it has the number of processes wanted."""
    global _prewarmed
    pool, _prewarmed = _prewarmed, None
    if pool is not None and pool.processes != processes:
        pool.kill()
        return None
    return pool


def discard_prewarmed() -> None:
    global _prewarmed
    if _prewarmed is not None:
        _prewarmed.kill()
        _prewarmed = None


def _pool() -> int:
    """The pool process: import litellm once, read the settings and batch, fork a worker per share,
    relay their lines."""
    import gc

    from goldgate.calls.llm import LLMClient

    # Ctrl-C reaches the whole process group: the run that owns the pool reports it once and ends
    # the pool; the pool and its workers (which inherit this) must not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol gets a private copy of stdout; fd 1 becomes stderr, so a stray print from a
    # library lands in the log instead of corrupting the JSON lines.
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    LLMClient(timeout_s=1, max_retries=0)  # import litellm while the batch is being prepared
    first = sys.stdin.readline()
    if not first.strip():
        return 0  # discarded before it was needed
    conf = json.loads(first)
    reqs, followups = _read_requests(sys.stdin)
    forks = min(conf["forks"], len(reqs))
    if forks <= 1:
        return _work(conf, reqs, proto, followups)
    gc.freeze()  # the imported modules stay shared with the workers instead of being copied on write
    children: dict[int, int] = {}

    def stop(signum: int, _frame: Any) -> None:  # the run ends early: no worker may outlive the pool
        _kill_all(children)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    for i in range(forks):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # worker: no return into the pool's code, whatever happens
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.close(read_fd)
                proto.close()
                for fd in children.values():
                    os.close(fd)
                with os.fdopen(write_fd, "wb") as out:
                    code = _work(conf, reqs[i::forks], out, followups)
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
                try:
                    out.write(head + b"\n")
                    out.flush()
                except OSError:  # nobody reads the answers any more: stop making calls
                    _kill_all(children)
                    return 2
    code = 0
    for pid in children:
        status = os.waitpid(pid, 0)[1]
        code = code or os.waitstatus_to_exitcode(status)
    if code < 0:  # killed (e.g. by the OOM killer): say so, as a worker's own failure would
        why = f"a call worker was killed by {signal.Signals(-code).name}; answers it committed are cached, rerun for the rest"
        try:
            out.write(json.dumps({"fatal": why}).encode("utf-8") + b"\n")
            out.flush()
        except OSError:
            pass
    return 0 if code == 0 else 2


def _kill_all(children: dict[int, int]) -> None:
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _work(conf: dict, reqs: list[CallRequest], out: Any, followups: dict[str, list[FollowUp]]) -> int:
    """One worker's share of the calls, the results streamed to `out` as they land."""
    from goldgate.calls.cache import CallCache

    settings = RunnerSettings(cache_path=conf["cache_path"], concurrency=conf["concurrency"],
                              timeout_s=conf["timeout_s"], max_retries=conf["max_retries"], progress=False,
                              fresh=conf.get("fresh", False))
    if not reqs:
        return 0

    lines: list[bytes] = []
    timer: list[asyncio.TimerHandle] = []

    def flush() -> None:
        timer.clear()
        try:
            out.write(b"".join(lines))
            out.flush()
        except OSError:  # the reader is gone (the run was stopped): stop making calls
            os._exit(3)
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
            asyncio.run(fill(reqs, {}, cache, settings, stats, send_result, on_ready=lambda: send({"ready": 1}),
                             followups=followups))
        except GoldgateError as exc:
            send({"fatal": str(exc)})
            return 2
    send({"stats": asdict(stats)})
    return 0


if __name__ == "__main__":
    sys.exit(_pool())
