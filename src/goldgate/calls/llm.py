"""The one place that talks to LLM providers, through litellm, with bounded retries.

litellm is imported here and only when a call must really be made, because importing it costs
seconds and a fully cached run should not pay that.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol

from goldgate.calls.base import SECRET_PARAM_KEYS, TRANSPORT_PARAM_KEYS, CallRequest, CallResult
from goldgate.errors import ConfigError

__all__ = ["LLMClient", "Pricing", "redact", "resolve_pricing"]

_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|ghp_[A-Za-z0-9]{6,}|hf_[A-Za-z0-9]{6,}|Bearer\s+\S+)")

Pricing = tuple[float, float]


class Limiter(Protocol):
    async def acquire(self) -> None: ...

    async def release(self, ok: bool) -> None: ...


class _Unlimited:
    async def acquire(self) -> None:
        return None

    async def release(self, ok: bool) -> None:
        return None


def redact(text: str, secrets: list[str]) -> str:
    """Remove API keys from provider error messages before anyone stores or prints them."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return _KEYLIKE.sub("***", text)


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if "litellm" not in sys.modules:
        # The import builds a large object graph that is never garbage; collecting while it grows
        # costs ~0.8 s of its ~3.5 s here. Frozen afterwards, later collections skip it too: the
        # first call (litellm imports more on it) drops from ~430 to ~120 ms of CPU, later ones ~5%.
        enabled = gc.isenabled()
        gc.disable()
        try:
            import litellm
        finally:
            gc.freeze()
            if enabled:
                gc.enable()
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    # Message logging stays on: no callbacks are registered, so nothing is logged anywhere, and
    # turning it off makes litellm deep-copy and redact every request (~6% of its per-call CPU).
    return litellm


# Providers whose request building (litellm's synchronous `completion()`) is pure CPU: safe to run
# on the event loop. Verified against the OpenAI-compatible sim; others keep litellm's threads.
_INLINE_PROVIDERS = frozenset({"openai"})


class _Builds(ThreadPoolExecutor):
    """The loop's default executor while calls run.

    `litellm.acompletion` builds each request with its synchronous `completion()` on the loop's
    default executor. That thread hop per call (GIL handoffs, a self-pipe wake-up) made a 1,000-call
    batch ~15% slower here (5.4 s → 4.6 s in one process, same CPU). Builds for `inline` models run
    on the loop instead; everything else (other providers' builds, which may fetch credentials or
    images; aiohttp's DNS lookups) still goes to threads.
    """

    def __init__(self, completion: Any, inline: set[str]):
        super().__init__(thread_name_prefix="goldgate-llm")
        self._completion = completion
        self._inline = inline
        self.inlined = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        # litellm submits partial(context.run, partial(completion, model=..., ...)).
        build = fn.args[0] if isinstance(fn, partial) and fn.args else None
        if not (isinstance(build, partial) and build.func is self._completion
                and build.keywords.get("model") in self._inline):
            return super().submit(fn, *args, **kwargs)
        self.inlined += 1
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting call, as a thread would
            fut.set_exception(exc)
        return fut


def resolve_pricing(req: CallRequest) -> Pricing:
    """$/token (input, output) from config, else from litellm's price map; unknown → ConfigError."""
    if req.input_cost_per_token is not None or req.output_cost_per_token is not None:
        return (req.input_cost_per_token or 0.0, req.output_cost_per_token or 0.0)
    litellm = _litellm()
    try:
        inp, out = litellm.cost_per_token(model=req.model, prompt_tokens=1_000_000, completion_tokens=1_000_000)
    except Exception:  # noqa: BLE001 - litellm raises several types for an unknown model
        raise ConfigError(
            f"model '{req.model}' has no price in litellm's price map; set input_cost_per_token and "
            f"output_cost_per_token on its candidate"
        ) from None
    return (inp / 1_000_000, out / 1_000_000)


class LLMClient:
    """Makes calls with retries on 429/5xx/timeouts, honouring Retry-After; never raises for a call."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_retries: int,
        on_throttle: Callable[[], None] | None = None,
        limit: Limiter | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ):
        self.limit: Limiter = limit or _Unlimited()
        self.litellm = _litellm()
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.on_throttle = on_throttle or (lambda: None)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._pricing: dict[str, Pricing] = {}
        self._fatal: dict[str, str] = {}
        self._endpoint_caps: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._inline: set[str] = set()
        # The function acompletion hands to the executor (the public `litellm.completion` wraps it).
        self.builds = _Builds(sys.modules["litellm.main"].completion, self._inline)
        ex = self.litellm
        self._retryable = (
            ex.RateLimitError,
            ex.Timeout,
            ex.APIConnectionError,
            ex.InternalServerError,
            ex.ServiceUnavailableError,
        )
        self._fatal_types = (ex.AuthenticationError, ex.PermissionDeniedError, ex.NotFoundError)

    def pricing(self, req: CallRequest) -> Pricing:
        tag = f"{req.model}|{req.input_cost_per_token}|{req.output_cost_per_token}"
        if tag not in self._pricing:
            self._pricing[tag] = resolve_pricing(req)
            if self._provider(req) in _INLINE_PROVIDERS:
                self._inline.add(req.model)
        return self._pricing[tag]

    def _provider(self, req: CallRequest) -> str:
        try:
            return str(self.litellm.get_llm_provider(model=req.model, api_base=req.api_base)[1])
        except Exception:  # noqa: BLE001 - an unknown provider fails on the call itself, as an error
            return ""

    async def complete(self, req: CallRequest) -> CallResult:
        key = req.key
        secret = os.environ.get(req.api_key_env, "") if req.api_key_env else ""
        fatal = self._fatal.get(self._endpoint(req))
        if fatal:
            return CallResult(key=key, error=fatal)
        kwargs: dict[str, Any] = {
            k: v for k, v in req.params.items() if k not in SECRET_PARAM_KEYS and k not in TRANSPORT_PARAM_KEYS
        }
        if req.api_base:
            kwargs["api_base"] = req.api_base
        if req.api_key_env:
            if not secret:
                return CallResult(key=key, error=f"environment variable {req.api_key_env} is not set")
            kwargs["api_key"] = secret
        elif req.api_base:
            kwargs["api_key"] = "goldgate-no-key"
        price_in, price_out = self.pricing(req)
        if req.input_cost_per_token is not None or req.output_cost_per_token is not None:
            # litellm prices every response itself; given the price it skips a failing lookup (~10% of
            # its per-call CPU for a model missing from its map) and reports the same cost as we do.
            kwargs["input_cost_per_token"] = price_in
            kwargs["output_cost_per_token"] = price_out
        attempts = 0
        last_error = ""
        while True:
            attempts += 1
            # Each attempt, not each call, holds a slot: a request waiting out a Retry-After must not
            # count against the concurrency the limiter is trying to lower. An endpoint's own cap is
            # taken first, so calls queued for a one-slot server hold no slot of the shared limit
            # (and their latency is the server's, not the time spent in its queue).
            cap = self._cap(req)
            if cap is not None:
                await cap.acquire()
            await self.limit.acquire()
            fatal = self._fatal.get(self._endpoint(req))
            if fatal:  # e.g. a bad key seen by another call while this one waited for a slot
                await self.limit.release(False)
                if cap is not None:
                    cap.release()
                return CallResult(key=key, error=fatal, attempts=attempts - 1)
            answered = False
            start = time.perf_counter()
            try:
                resp = await asyncio.wait_for(
                    self.litellm.acompletion(
                        model=req.model,
                        messages=req.messages,
                        timeout=self.timeout_s,
                        max_retries=0,
                        num_retries=0,
                        **kwargs,
                    ),
                    timeout=self.timeout_s + 5,
                )
                answered = True
            except TimeoutError:
                last_error = f"timed out after {self.timeout_s:g}s"
                delay = self._backoff(attempts)
            except self._fatal_types as exc:
                msg = redact(f"{type(exc).__name__}: {_first_line(exc)}", [secret])
                self._fatal[self._endpoint(req)] = msg
                return CallResult(key=key, error=msg, attempts=attempts)
            except self._retryable as exc:
                last_error = redact(f"{type(exc).__name__}: {_first_line(exc)}", [secret])
                retry_after = _retry_after(exc)
                if isinstance(exc, self.litellm.RateLimitError):
                    self.on_throttle()
                delay = retry_after if retry_after is not None else self._backoff(attempts)
            except Exception as exc:  # noqa: BLE001 - any other provider failure is this case's error
                msg = redact(f"{type(exc).__name__}: {_first_line(exc)}", [secret])
                return CallResult(key=key, error=msg, attempts=attempts)
            finally:
                await self.limit.release(answered)
                if cap is not None:
                    cap.release()
            if answered:
                latency = time.perf_counter() - start
                usage = getattr(resp, "usage", None)
                pt = int(getattr(usage, "prompt_tokens", 0) or 0)
                ct = int(getattr(usage, "completion_tokens", 0) or 0)
                content = resp.choices[0].message.content or ""
                return CallResult(
                    key=key,
                    content=content,
                    model=str(getattr(resp, "model", "") or req.model),
                    prompt_tokens=pt,
                    completion_tokens=ct,
                    cost_usd=pt * price_in + ct * price_out,
                    latency_s=latency,
                    attempts=attempts,
                )
            if attempts > self.max_retries:
                return CallResult(
                    key=key, error=f"{last_error} (gave up after {attempts} attempts)", attempts=attempts
                )
            await asyncio.sleep(min(delay, self.backoff_max_s))

    def _cap(self, req: CallRequest) -> asyncio.Semaphore | None:
        """The endpoint's own in-flight cap, one per event loop (a semaphore belongs to its loop)."""
        if req.max_in_flight is None:
            return None
        key = (self._endpoint(req), id(asyncio.get_running_loop()))
        if key not in self._endpoint_caps:
            self._endpoint_caps[key] = asyncio.Semaphore(req.max_in_flight)
        return self._endpoint_caps[key]

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))

    @staticmethod
    def _endpoint(req: CallRequest) -> str:
        return f"{req.model}@{req.api_base}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:300]


def _retry_after(exc: BaseException) -> float | None:
    headers = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    headers = headers or getattr(exc, "litellm_response_headers", None)
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
