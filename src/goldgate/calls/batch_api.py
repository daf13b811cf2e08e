"""Calls through a provider's batch API (OpenAI files + batches, through litellm): about half the
price of live calls, answered within hours instead of seconds.

Each submitted batch is recorded in a state file (batch id + the cache keys it answers) before
anything waits on it, so a command that is interrupted and run again polls the same batch
instead of paying for the requests twice. Answers land in the same call cache as live calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from goldgate.calls.base import SECRET_PARAM_KEYS, TRANSPORT_PARAM_KEYS, CallRequest, CallResult
from goldgate.calls.cache import CallCache
from goldgate.errors import ConfigError, GoldgateError, ModelCallError
from goldgate.files import write_atomic

__all__ = ["BatchSettings", "BatchStats", "batch_pricing", "run_batch"]

MAX_REQUESTS_PER_BATCH = 50_000  # OpenAI's limit per batch file
_PROVIDERS = frozenset({"openai", "azure", "hosted_vllm", "litellm_proxy", "mistral", "xai"})
_DONE = frozenset({"completed", "failed", "expired", "cancelled"})
Pricing = tuple[float, float]


@dataclass
class BatchSettings:
    cache_path: Path
    state_dir: Path
    pricing: Pricing  # $/token (input, output) at the batch rate
    poll_s: float = 30.0
    max_requests: int = MAX_REQUESTS_PER_BATCH
    progress: bool = True
    timeout_s: float = 25 * 3600  # a 24 h completion window, plus downloading


@dataclass
class BatchStats:
    cache_hits: int = 0
    submitted: int = 0  # requests sent in new batches by this command
    resumed: int = 0  # requests answered by batches an earlier command submitted
    failed: int = 0
    batch_ids: list[str] = field(default_factory=list)


@dataclass
class _Job:
    """What is on disk for one submitted batch."""

    batch_id: str
    input_file_id: str
    provider: str
    api_base: str | None
    api_key_env: str | None
    keys: list[str]
    submitted_at: float

    def path(self, state_dir: Path) -> Path:
        return state_dir / f"{self.batch_id}.json"


def batch_pricing(req: CallRequest, configured: tuple[float | None, float | None]) -> Pricing:
    """The batch rate: configured on the candidate, else litellm's price map (`*_batches`)."""
    if configured[0] is not None or configured[1] is not None:
        return (configured[0] or 0.0, configured[1] or 0.0)
    from goldgate.calls.llm import _litellm

    litellm = _litellm()
    try:
        info = litellm.get_model_info(req.model)
    except Exception:  # noqa: BLE001 - litellm raises several types for an unknown model
        info = {}
    inp, out = info.get("input_cost_per_token_batches"), info.get("output_cost_per_token_batches")
    if inp is None or out is None:
        raise ConfigError(f"model '{req.model}' has no batch price in litellm's price map; set "
                          "batch_input_cost_per_token and batch_output_cost_per_token on its candidate")
    return (float(inp), float(out))


def _provider(req: CallRequest) -> tuple[str, str]:
    from goldgate.calls.llm import _litellm

    model, provider, _, _ = _litellm().get_llm_provider(model=req.model, api_base=req.api_base)
    if provider not in _PROVIDERS:
        raise ConfigError(f"model '{req.model}': provider '{provider}' has no batch API through litellm "
                          f"(supported: {', '.join(sorted(_PROVIDERS))}); label without --batch")
    return str(model), str(provider)


def _auth(req: CallRequest) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if req.api_base:
        kw["api_base"] = req.api_base
    if req.api_key_env:
        key = os.environ.get(req.api_key_env)
        if not key:
            raise ConfigError(f"environment variable {req.api_key_env} is not set")
        kw["api_key"] = key
    elif req.api_base:
        kw["api_key"] = "goldgate-no-key"
    return kw


def _line(req: CallRequest, model: str) -> str:
    params = {k: v for k, v in req.params.items() if k not in SECRET_PARAM_KEYS and k not in TRANSPORT_PARAM_KEYS}
    body = {"model": model, "messages": req.messages, **params}
    return json.dumps({"custom_id": req.key, "method": "POST", "url": "/v1/chat/completions", "body": body},
                      ensure_ascii=False, separators=(",", ":"))


def _load_jobs(state_dir: Path) -> list[_Job]:
    jobs = []
    for path in sorted(state_dir.glob("batch_*.json")) if state_dir.exists() else []:
        try:
            jobs.append(_Job(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue  # a foreign or broken file is not ours to poll
    return jobs


class _Client:
    """The four litellm calls a batch needs, with auth and provider filled in."""

    def __init__(self, provider: str, auth: dict[str, Any]) -> None:
        from goldgate.calls.llm import _litellm

        self.litellm = _litellm()
        self.kw = {"custom_llm_provider": provider, **auth}

    async def upload(self, data: bytes) -> str:
        f = await self.litellm.acreate_file(file=("goldgate-batch.jsonl", data, "application/jsonl"),
                                            purpose="batch", **self.kw)
        return str(f.id)

    async def create(self, file_id: str) -> Any:
        return await self.litellm.acreate_batch(completion_window="24h", endpoint="/v1/chat/completions",
                                                input_file_id=file_id, metadata={"created_by": "goldgate"},
                                                **self.kw)

    async def retrieve(self, batch_id: str) -> Any:
        return await self.litellm.aretrieve_batch(batch_id=batch_id, **self.kw)

    async def content(self, file_id: str) -> bytes:
        resp = await self.litellm.afile_content(file_id=file_id, **self.kw)
        return bytes(resp.content)


def _results(data: bytes, pricing: Pricing, batch_id: str) -> dict[str, CallResult]:
    """Output and error file lines, keyed by custom_id (the cache key)."""
    out: dict[str, CallResult] = {}
    for raw in data.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        key = line.get("custom_id", "")
        resp = line.get("response") or {}
        body = resp.get("body") or {}
        if line.get("error") or resp.get("status_code") != 200:
            err = line.get("error") or body.get("error") or {}
            msg = err.get("message") if isinstance(err, dict) else str(err)
            out[key] = CallResult(key=key, error=f"batch {batch_id}: HTTP {resp.get('status_code')}: {msg}"[:300],
                                  attempts=1)
            continue
        usage = body.get("usage") or {}
        pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        content = ((body.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
        out[key] = CallResult(key=key, content=content, model=str(body.get("model", "")), prompt_tokens=pt,
                              completion_tokens=ct, cost_usd=pt * pricing[0] + ct * pricing[1], attempts=1)
    return out


class _Progress:
    """A bar on a terminal; otherwise one line whenever the counts move."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.last = enabled, total, None
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(TextColumn("goldgate batch labelling"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.description}"), TimeElapsedColumn(), transient=False)
            self.task = self.bar.add_task("", total=total)
            self.bar.start()

    def update(self, done: int, failed: int, status: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=done + failed, description=f"{status}, {failed} failed")
        elif (done, failed, status) != self.last:
            print(f"goldgate batch: {status} {done + failed:,}/{self.total:,} ({failed:,} failed)",
                  file=sys.stderr, flush=True)
        self.last = (done, failed, status)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


async def _run(reqs: dict[str, CallRequest], settings: BatchSettings, stats: BatchStats,
               cache: CallCache) -> dict[str, CallResult]:
    first = next(iter(reqs.values()))
    model, provider = _provider(first)
    client = _Client(provider, _auth(first))
    state = settings.state_dir
    jobs: list[_Job] = []
    waiting = set(reqs)
    for job in _load_jobs(state):
        mine = waiting.intersection(job.keys)
        if mine and job.provider == provider and job.api_base == first.api_base:
            jobs.append(job)
            waiting -= set(job.keys)
            stats.resumed += len(mine)
    todo = sorted(waiting)
    for start in range(0, len(todo), settings.max_requests):
        chunk = todo[start:start + settings.max_requests]
        data = ("\n".join(_line(reqs[k], model) for k in chunk) + "\n").encode()
        file_id = await client.upload(data)
        batch = await client.create(file_id)
        job = _Job(str(batch.id), file_id, provider, first.api_base, first.api_key_env, chunk, time.time())
        write_atomic(job.path(state), json.dumps(asdict(job)))  # before waiting: a rerun resumes it
        jobs.append(job)
        stats.submitted += len(chunk)
    stats.batch_ids = [j.batch_id for j in jobs]

    results: dict[str, CallResult] = {}
    total = sum(len(j.keys) for j in jobs)
    progress = _Progress(settings.progress, total)
    deadline = time.monotonic() + settings.timeout_s
    pending = list(jobs)
    counts: dict[str, tuple[int, int, str]] = {}
    try:
        while pending:
            for job in list(pending):
                batch = await client.retrieve(job.batch_id)
                rc = getattr(batch, "request_counts", None)
                counts[job.batch_id] = (int(getattr(rc, "completed", 0) or 0), int(getattr(rc, "failed", 0) or 0),
                                        str(batch.status))
                if batch.status in _DONE:
                    got: dict[str, CallResult] = {}
                    for fid in (batch.output_file_id, batch.error_file_id):
                        if fid:
                            got.update(_results(await client.content(fid), settings.pricing, job.batch_id))
                    for key in job.keys:  # requests the provider never answered (expired, cancelled)
                        got.setdefault(key, CallResult(key=key, error=f"batch {job.batch_id} {batch.status} "
                                                                      "without an answer for this request"))
                    cache.put_many((k, r) for k, r in got.items() if r.ok and k in reqs)
                    results.update({k: r for k, r in got.items() if k in reqs})
                    job.path(state).unlink(missing_ok=True)  # answered: the cache holds it now
                    pending.remove(job)
            done = sum(c[0] for c in counts.values())
            failed = sum(c[1] for c in counts.values())
            statuses = sorted({c[2] for c in counts.values()})
            progress.update(done, failed, "/".join(statuses))
            if pending:
                if time.monotonic() > deadline:
                    raise ModelCallError(f"batches {', '.join(j.batch_id for j in pending)} not done after "
                                         f"{settings.timeout_s / 3600:.1f} h; run again to keep polling them")
                await asyncio.sleep(settings.poll_s)
    finally:
        progress.close()
    return results


def run_batch(requests: list[CallRequest], settings: BatchSettings) -> tuple[dict[str, CallResult], BatchStats]:
    """Answer `requests` from the cache, then through the provider's batch API (resuming batches a
    killed command left running). Failed requests come back as errors and are not cached."""
    stats = BatchStats()
    reqs = {r.key: r for r in requests}
    with CallCache(settings.cache_path) as cache:
        results = cache.get_many(reqs)
        stats.cache_hits = len(results)
        misses = {k: r for k, r in reqs.items() if k not in results}
        if misses:
            if len({(r.model, r.api_base) for r in misses.values()}) > 1:
                raise ConfigError("one batch run serves one model and endpoint")
            try:
                results.update(asyncio.run(_run(misses, settings, stats, cache)))
            except GoldgateError:
                raise
            except Exception as exc:  # noqa: BLE001 - a provider failure is one line, not a traceback
                from goldgate.calls.llm import _first_line, redact

                secret = os.environ.get(first.api_key_env, "") if (first := next(iter(misses.values()))).api_key_env else ""
                raise ModelCallError(redact(f"batch API: {type(exc).__name__}: {_first_line(exc)} (batches already "
                                            "submitted are resumed when you run the command again)", [secret])) from None
    stats.failed = sum(not r.ok for r in results.values())
    return results, stats
