"""One process's share of a batch: the calls it makes concurrently under an AIMD limit, claiming
keys so peers never repeat them, with answers written to the cache in ~20 ms batches.

Used by `runner` (small batches, in this process) and by the call pool's workers.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from goldgate.calls.base import CallRequest, CallResult, FollowUp
from goldgate.calls.cache import CallCache
from goldgate.errors import CacheError

__all__ = ["AdaptiveLimit", "RunStats", "RunnerSettings", "fill"]

_FOLLOW_UP: ContextVar[bool] = ContextVar("goldgate_follow_up", default=False)


@dataclass(frozen=True)
class RunnerSettings:
    cache_path: Path
    concurrency: int = 32
    timeout_s: float = 60.0
    max_retries: int = 4
    progress: bool = True
    label: str = "model calls"
    processes: int = 0  # 0 = auto (see call_processes)
    fresh: bool = False  # read no cached answers (new ones are still written)


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

    A storm is a share of 429s among the latest answers, not any 429: a provider that throttles one
    request in twenty at random would otherwise halve the limit every half second and pin it at its
    floor (4,500 calls at concurrency 2 instead of 32: an 11× slower run for a 5% fault rate).

    Waiters queue in FIFO order and a release wakes exactly the ones that may now run, so a batch
    of thousands of pending calls costs O(1) per slot rather than waking every waiter each time.
    """

    WINDOW = 32  # latest answers (200s and 429s) the storm share is measured over
    MIN_SEEN = 16  # answers needed since the last cut before another cut is considered
    STORM_SHARE = 0.25  # 429s at or above this share of the window are a storm

    def __init__(self, ceiling: int):
        self.ceiling = ceiling
        self.limit = ceiling
        self.floor = ceiling
        self.inflight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._last_cut = 0.0
        self._ok_since_cut = 0
        self._recent: deque[bool] = deque(maxlen=self.WINDOW)  # True = throttled

    async def acquire(self) -> None:
        if self.inflight < self.limit and not self._waiters:
            self.inflight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if _FOLLOW_UP.get():  # it completes a case whose answer is in: ahead of new generations
            self._waiters.appendleft(fut)
        else:
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
        if ok:
            self._recent.append(False)
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
        self._recent.append(True)
        now = time.monotonic()
        seen = len(self._recent)
        if (now - self._last_cut > 0.5 and seen >= self.MIN_SEEN
                and sum(self._recent) >= self.STORM_SHARE * seen):
            self.limit = max(1, self.limit // 2)
            self.floor = min(self.floor, self.limit)
            self._last_cut = now
            self._ok_since_cut = 0
            self._recent.clear()  # the next cut is judged on answers under the new limit


async def fill(
    missing: list[CallRequest],
    results: dict[str, CallResult],
    cache: CallCache,
    settings: RunnerSettings,
    stats: RunStats,
    on_result: Callable[[CallResult], None],
    on_ready: Callable[[], None] | None = None,
    followups: dict[str, list[FollowUp]] | None = None,
) -> None:
    """Make the missing calls in this process (claiming keys so peers don't repeat them).
    `on_ready` is told once the batch passed its checks (prices known) and calls are about to go out.
    `followups` (by request key) are made as soon as the answer they follow lands, under the same
    limit, so a judge reads each output while other outputs are still being generated."""
    followups = followups or {}
    from goldgate.calls.llm import LLMClient

    limit = AdaptiveLimit(settings.concurrency)

    def throttled() -> None:
        stats.throttled += 1
        limit.throttle()

    client = LLMClient(timeout_s=settings.timeout_s, max_retries=settings.max_retries, on_throttle=throttled,
                       limit=limit)
    priced = [*missing, *(f.request for fs in followups.values() for f in fs)]
    for req in {r.model + str(r.input_cost_per_token): r for r in priced}.values():
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
        async def one(req: CallRequest) -> None:
            res = await client.complete(req)
            stats.llm_calls += res.attempts
            writer.add(req.kind, res)
            results[req.key] = res
            on_result(res)
            for f in followups.get(req.key, ()):
                child = f.made_from(res)
                if child is not None and child.key not in results:
                    await follow(child)

        async def follow(req: CallRequest) -> None:
            """A follow-up: from the cache, from a peer making it, or made here."""
            while True:
                hit = None if settings.fresh else cache.get_many([req.key]).get(req.key)
                if hit is not None:
                    stats.cache_hits += 1
                    results[req.key] = hit
                    on_result(hit)
                    return
                if cache.claim([req.key], ttl, fresh=settings.fresh):
                    _FOLLOW_UP.set(True)  # this task only: it holds nothing but this follow-up now
                    return await one(req)
                await asyncio.sleep(0.05)

        while pending:
            mine = cache.claim(pending, ttl, fresh=settings.fresh)
            owned = [pending.pop(k) for k in list(pending) if k in mine]

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
