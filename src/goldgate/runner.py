"""Run many model calls at once: cache first, then the misses concurrently, with progress.

This is the engine's only I/O loop. It knows nothing of pytest: the plugin, the CLI and
`load_model().predict` all hand it a list of CallRequests and get CallResults back.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from goldgate.cache import CallCache
from goldgate.calls import CallRequest, CallResult
from goldgate.errors import CacheError, GoldgateError

if TYPE_CHECKING:
    from goldgate.callpool import CallPool

__all__ = ["AdaptiveLimit", "Answers", "RunStats", "RunnerSettings", "run_calls", "start_calls"]


@dataclass(frozen=True)
class RunnerSettings:
    cache_path: Path
    concurrency: int = 32
    timeout_s: float = 60.0
    max_retries: int = 4
    progress: bool = True
    label: str = "model calls"
    processes: int = 0  # 0 = auto (see call_processes)


@dataclass
class RunStats:
    requested: int = 0
    unique: int = 0
    cache_hits: int = 0
    llm_calls: int = 0
    errors: int = 0
    waited_on_peers: int = 0
    throttled: int = 0
    min_concurrency: int = 0
    wall_s: float = 0.0


class AdaptiveLimit:
    """AIMD concurrency: halve on a 429 storm, creep back up by one per window of successes.

    Waiters queue in FIFO order and a release wakes exactly the ones that may now run, so a batch
    of thousands of pending calls costs O(1) per slot rather than waking every waiter each time.
    """

    def __init__(self, ceiling: int):
        self.ceiling = ceiling
        self.limit = ceiling
        self.floor = ceiling
        self.inflight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._last_cut = 0.0
        self._ok_since_cut = 0

    async def acquire(self) -> None:
        if self.inflight < self.limit and not self._waiters:
            self.inflight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # the slot was counted for us by _wake
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # granted, then cancelled: hand the slot on
                self.inflight -= 1
                self._wake()
            raise

    async def release(self, ok: bool) -> None:
        self.inflight -= 1
        if ok and self.limit < self.ceiling:
            self._ok_since_cut += 1
            if self._ok_since_cut >= self.limit:
                self.limit += 1
                self._ok_since_cut = 0
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.inflight < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.inflight += 1
                fut.set_result(None)

    def throttle(self) -> None:
        now = time.monotonic()
        if now - self._last_cut > 0.5:
            self.limit = max(1, self.limit // 2)
            self.floor = min(self.floor, self.limit)
            self._last_cut = now
            self._ok_since_cut = 0


def pool_processes(configured: int = 0) -> int:
    """How many processes a call pool spreads a big batch over: litellm costs ~3.5-5 ms CPU per
    call, so one process saturates a core near 200-250 calls/s. `configured` is `call_processes`
    (0 = auto: one per core, at most 4)."""
    if configured:
        return configured
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4)


def call_processes(settings: RunnerSettings, missing: int) -> int:
    """How many processes make this batch's calls: small batches stay in this process."""
    if settings.processes or missing >= 500:
        return pool_processes(settings.processes)
    return 1


def run_calls(requests: Sequence[CallRequest], settings: RunnerSettings) -> tuple[dict[str, CallResult], RunStats]:
    """Answer every request, from the cache or the model. Failed calls come back with `error` set."""
    return start_calls(requests, settings).finish()


_streaming: list[Answers] = []  # this process's pool batches whose answers are still coming in


class Answers:
    """One batch's answers. A batch made in this process is complete when it is returned; a call
    pool's answers stream in, so a caller can use the first ones while the last calls are still out."""

    def __init__(self, results: dict[str, CallResult], stats: RunStats, t0: float,
                 pool: CallPool | None = None, progress: _Progress | None = None,
                 coming: frozenset[str] = frozenset()):
        self.results = results
        self.stats = stats
        self.coming = coming  # the keys the pool is answering
        self._t0 = t0
        self._pool = pool
        self._progress = progress
        self._failed: GoldgateError | None = None  # why the pool ended early; raised on every use

    @property
    def streaming(self) -> bool:
        return self._pool is not None

    def get(self, key: str) -> CallResult:
        """This request's answer, waiting for it if it is still being made."""
        if key not in self.results and self._pool is not None:
            self._pool.wait_for(key)
        if key not in self.results:
            self.finish()  # the pool ended without it: raises why
        return self.results[key]

    def finish(self) -> tuple[dict[str, CallResult], RunStats]:
        """Every answer (waiting for the rest), with the batch's stats."""
        pool, self._pool = self._pool, None
        if self in _streaming:
            _streaming.remove(self)
        try:
            if pool is not None:
                pool.join()
        except GoldgateError as exc:
            self._failed = exc
        finally:
            if self._progress is not None:
                self._progress.close()
                self._progress = None
        if self._failed is not None:
            raise self._failed
        self.stats.errors = sum(1 for r in self.results.values() if not r.ok)
        self.stats.wall_s = time.perf_counter() - self._t0
        return self.results, self.stats

    def abort(self) -> None:
        """Stop the calls still out (the run is ending early); answers already in stay cached."""
        pool, self._pool = self._pool, None
        if self in _streaming:
            _streaming.remove(self)
        if pool is not None:
            pool.kill()
        if self._progress is not None:
            self._progress.close()
            self._progress = None


def start_calls(requests: Sequence[CallRequest], settings: RunnerSettings, *, stream: bool = False) -> Answers:
    """Start answering `requests`: cache hits at once, the misses concurrently.

    Batches made in this process are complete on return. With `stream`, a batch given to a call
    pool returns as soon as the pool is making calls (config errors such as an unknown price are
    raised first), and each answer is taken with `Answers.get` as it lands; the caller's own
    progress (e.g. pytest's) then stands in for the progress bar."""
    t0 = time.perf_counter()
    unique: dict[str, CallRequest] = {}
    for r in requests:
        unique.setdefault(r.key, r)
    stats = RunStats(requested=len(requests), unique=len(unique))
    cache = CallCache(settings.cache_path)
    try:
        results = cache.get_many(unique)
        stats.cache_hits = len(results)
        missing = [r for k, r in unique.items() if k not in results]
        for batch in _streaming.copy():  # get() may finish a batch, which leaves the list
            # Already on its way in this process (e.g. a fixture asks for the outputs the test
            # loop is streaming in): wait for that answer rather than make the call again.
            for r in [r for r in missing if r.key in batch.coming]:
                results[r.key] = batch.get(r.key)
                stats.waited_on_peers += 1
            missing = [r for r in missing if r.key not in results]
        pool = None
        if missing:
            from goldgate.callpool import CallPool, take_prewarmed

            pool = take_prewarmed(pool_processes(settings.processes))  # already importing litellm
            procs = call_processes(settings, len(missing))
            if pool is None and procs > 1:
                pool = CallPool(procs)
            if pool is None:
                progress = _Progress(settings.label, len(missing), settings.progress)
                try:
                    asyncio.run(fill(missing, results, cache, settings, stats, progress.advance))
                finally:
                    progress.close()
    finally:
        cache.close()
    if pool is None:
        answers = Answers(results, stats, t0)
        answers.finish()
        return answers
    progress = _Progress(settings.label, len(missing), settings.progress and not stream)
    answers = Answers(results, stats, t0, pool, progress, frozenset(r.key for r in missing))
    try:
        pool.start(settings, missing, results, stats, progress.advance)
        pool.wait_ready()
        if stream:
            _streaming.append(answers)
        else:
            answers.finish()
    except BaseException:
        answers.abort()
        raise
    return answers


async def fill(
    missing: list[CallRequest],
    results: dict[str, CallResult],
    cache: CallCache,
    settings: RunnerSettings,
    stats: RunStats,
    on_result: Callable[[CallResult], None],
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Make the missing calls in this process (claiming keys so peers don't repeat them).
    `on_ready` is told once the batch passed its checks (prices known) and calls are about to go out."""
    from goldgate.llm import LLMClient

    limit = AdaptiveLimit(settings.concurrency)

    def throttled() -> None:
        stats.throttled += 1
        limit.throttle()

    client = LLMClient(timeout_s=settings.timeout_s, max_retries=settings.max_retries, on_throttle=throttled,
                       limit=limit)
    for req in {r.model + str(r.input_cost_per_token): r for r in missing}.values():
        client.pricing(req)  # unknown prices fail here, before any call
    asyncio.get_running_loop().set_default_executor(client.builds)
    if on_ready is not None:
        on_ready()
    ttl = (settings.timeout_s + 35.0) * (settings.max_retries + 1)
    pending = {r.key: r for r in missing}
    writer = _BatchedWrites(cache)
    # Where litellm still builds requests on a thread-pool thread (providers other than OpenAI,
    # see llm._Builds), handing the GIL over every 1 ms rather than 5 ms cut the median call
    # latency by ~10 ms under load here.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        while pending:
            mine = cache.claim(pending, ttl)
            owned = [pending.pop(k) for k in list(pending) if k in mine]

            async def one(req: CallRequest) -> None:
                res = await client.complete(req)
                stats.llm_calls += res.attempts
                writer.add(req.kind, res)
                results[req.key] = res
                on_result(res)

            try:
                await asyncio.gather(*(one(r) for r in owned))
            finally:
                writer.flush()
            if pending:
                # Peers are making these calls; take their answers as they land.
                await asyncio.sleep(0.05)
                got = cache.get_many(pending)
                for k, res in got.items():
                    res.cached = True
                    results[k] = res
                    stats.waited_on_peers += 1
                    pending.pop(k)
                    on_result(res)
    finally:
        sys.setswitchinterval(switch)
        stats.min_concurrency = limit.floor


class _BatchedWrites:
    """Cache writes gathered for ~20 ms and committed together: one SQLite transaction per answer
    costs ~0.5 ms in the event loop and makes processes queue on the write lock."""

    def __init__(self, cache: CallCache, delay_s: float = 0.02):
        self.cache = cache
        self.delay_s = delay_s
        self.items: list[tuple[str, CallResult]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._failed: CacheError | None = None

    def add(self, kind: str, res: CallResult) -> None:
        self.items.append((kind, res))
        if self._timer is None and self._failed is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.flush()
        except CacheError as exc:  # raised from flush() at the end of the batch, not lost in the loop
            self._failed = exc

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._failed is not None:
            raise self._failed
        items, self.items = self.items, []
        if items:
            self.cache.put_many(items)


class _Progress:
    """A rich progress bar on the real stderr (pytest's capture must not swallow it)."""

    def __init__(self, label: str, total: int, enabled: bool):
        self._bar = None
        self.errors = 0
        if not enabled or total == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(file=sys.__stderr__, stderr=True)
        self._bar = Progress(
            TextColumn("[bold]goldgate[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("errors {task.fields[errors]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._bar.add_task(label, total=total, errors=0)
        self._bar.start()

    def advance(self, res: CallResult) -> None:
        if not res.ok:
            self.errors += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, errors=self.errors)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
