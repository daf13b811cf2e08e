"""Run many model calls at once: cache first, then the misses concurrently, with progress.

This is the engine's only I/O loop. It knows nothing of pytest: the plugin, the CLI and
`load_model().predict` all hand it a list of CallRequests and get CallResults back.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from goldgate.calls.base import CallRequest, CallResult, FollowUp
from goldgate.calls.batch import RunnerSettings, RunStats, fill
from goldgate.calls.cache import CallCache
from goldgate.errors import GoldgateError

if TYPE_CHECKING:
    from goldgate.calls.pool import CallPool

__all__ = ["Answers", "run_calls", "start_calls"]


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

    def wait(self, key: str) -> CallResult | None:
        """A follow-up's answer, waiting while it may still come; None when none was made."""
        if key not in self.results and self._pool is not None:
            self._pool.wait_for(key)
        return self.results.get(key)

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


def _preflight(missing: list[CallRequest], followups: dict[str, list[FollowUp]]) -> None:
    """Before the first call that is not cached: each endpoint those calls (and the judge calls that
    follow them) need has its key variable set and answers; answers all from the cache need neither."""
    from goldgate.calls.preflight import check_endpoint

    needed = [*missing, *(f.request for r in missing for f in followups.get(r.key, ()))]
    for owner, api_base, api_key_env in dict.fromkeys((r.owner or r.model, r.api_base, r.api_key_env) for r in needed):
        check_endpoint(owner, api_base=api_base, api_key_env=api_key_env)


def start_calls(requests: Sequence[CallRequest], settings: RunnerSettings, *, stream: bool = False,
                followups: dict[str, list[FollowUp]] | None = None) -> Answers:
    """Start answering `requests`: cache hits at once, the misses concurrently.

    Batches made in this process are complete on return. With `stream`, a batch given to a call
    pool returns as soon as the pool is making calls (config errors such as an unknown price are
    raised first), and each answer is taken with `Answers.get` as it lands; the caller's own
    progress (e.g. pytest's) then stands in for the progress bar. `followups` (by request key) are
    made from each answer as it lands, in the same batch: their answers join `results`."""
    t0 = time.perf_counter()
    followups = followups or {}
    unique: dict[str, CallRequest] = {}
    for r in requests:
        unique.setdefault(r.key, r)
    stats = RunStats(requested=len(requests), unique=len(unique))
    if settings.fresh or not settings.cache_path.exists():  # every call will be made: fail before writing anything
        _preflight(list(unique.values()), followups)
    cache = CallCache(settings.cache_path)
    try:
        results = {} if settings.fresh else cache.get_many(unique)
        # Answers already in (e.g. cached generations after a rubric edit): their follow-ups are
        # ordinary requests of this batch.
        for key in [k for k in results if k in followups]:
            for f in followups[key]:
                child = f.made_from(results[key])
                if child is not None:
                    unique.setdefault(child.key, child)
        if len(unique) > len(results) and not settings.fresh:
            results.update(cache.get_many([k for k in unique if k not in results]))
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
            _preflight(missing, followups)
            from goldgate.calls.pool import CallPool, take_prewarmed

            pool = take_prewarmed(pool_processes(settings.processes))  # already importing litellm
            procs = call_processes(settings, len(missing))
            if pool is None and procs > 1:
                pool = CallPool(procs)
            total = len(missing) + sum(len(followups.get(r.key, ())) for r in missing)
            if pool is None:
                progress = _Progress(settings.label, total, settings.progress)
                try:
                    asyncio.run(fill(missing, results, cache, settings, stats, progress.advance, followups=followups))
                finally:
                    progress.close()
    finally:
        cache.close()
    if pool is None:
        answers = Answers(results, stats, t0)
        answers.finish()
        return answers
    progress = _Progress(settings.label, total, settings.progress and not stream)
    answers = Answers(results, stats, t0, pool, progress, frozenset(r.key for r in missing))
    try:
        pool.start(settings, missing, results, stats, progress.advance, followups)
        pool.wait_ready()
        if stream:
            _streaming.append(answers)
        else:
            answers.finish()
    except BaseException:
        answers.abort()
        raise
    return answers


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
