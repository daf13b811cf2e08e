"""`goldgate sim`: an offline OpenAI-compatible stand-in for an LLM, for demos, tests and benchmarks.

It is a simulator, not a model: answers come from an answer key built from golden files, with
deterministic, realistic mistakes (per-class accuracy, confusions toward similar labels, chatty
formatting), latency, and injected faults (429, 500, hangs, a concurrency limit). Every decision is
a hash of (seed, model, input) or (seed, request body, attempt), so runs repeat exactly.

Judge requests (``response_format`` json_schema named ``goldgate_verdict``, or a system message
with the line ``[goldgate-judge]``) get a JSON verdict. A disagreement with the human truth happens
with probability ``2(1-A)L`` on truth-fail items and ``2(1-A)(1-L)`` on truth-pass items (A =
agreement, L = leniency), so with a share p of truth-pass items the judge agrees at
``1 - 2(1-A)(p(1-L) + (1-p)L)`` and a share ``(1-p)L / (p(1-L) + (1-p)L)`` of its disagreements
are false passes: exactly A and L on a balanced set.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from goldgate.errors import ConfigError
from goldgate.sim.answers import AnswerKey, candidates, garble, is_text, norm, uniforms
from goldgate.sim.batches import BatchStore
from goldgate.sim.http import TOKEN, json_response
from goldgate.sim.settings import SimSettings

__all__ = ["build_app", "running", "serve"]

_SECTION = {
    tag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.DOTALL) for tag in ("input", "output", "reference")
}
_LABEL_WRAPS = ("Intent: {}", "The intent is {}.", "`{}`")
_TEXT_WRAPS = ("Sure! Here it is:\n{}",)
_PASS_REASONS = ("The output answers the input correctly.", "The output matches what was asked.")
_FAIL_REASONS = (
    "The output does not answer the input correctly.",
    "The output misses what was asked.",
)
_GARBAGE = "Overall the response seems reasonable, though it depends on what the user really meant."
_IMAGE_TOKENS = 85


def _text_of(content: Any) -> tuple[str, list[str]]:
    """Join a message's text parts; return image URLs separately (they are lookup candidates)."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    urls: list[str] = []
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                urls.append(url if isinstance(url, str) else "")
    return "\n".join(texts), urls


def _retry_after(seconds: float) -> dict[str, str]:
    return {
        "Retry-After": f"{seconds:.3f}".rstrip("0").rstrip("."),
        "retry-after-ms": str(round(seconds * 1000)),
    }




def _error(
    status: int,
    message: str,
    kind: str,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    err = {"message": message, "type": kind, "param": param, "code": code}
    return json_response(status, {"error": err}, headers)


class _Sim:
    """Request handling and counters for one server; all per-request work is lookups and hashes."""

    def __init__(self, settings: SimSettings) -> None:
        self.s = settings
        self.key = AnswerKey.load(settings.keys, settings.label_field, settings.seed)
        self._auth = (
            f"Bearer {settings.api_key.get_secret_value()}".encode() if settings.api_key else None
        )
        self._models = sorted({*settings.model_accuracy, *settings.judge_model_agreement})
        self._retry = _retry_after(settings.retry_after_s)
        self._inflight = 0
        self.batch_store: Any = None  # the files and batches endpoints (sim/batches.py)
        self.reset()

    def reset(self) -> None:
        self.attempts: dict[bytes, int] = {}
        self.by_status: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.peak = self._inflight
        if getattr(self, "batch_store", None) is not None:
            self.batch_store.counts = dict.fromkeys(self.batch_store.counts, 0)

    def stats(self) -> dict[str, Any]:
        """Counters over chat requests: `requests` counts arrivals, `by_status` answers sent (a hang
        the client abandoned is in `hangs` only), `max_inflight` the peak concurrency seen,
        including requests then refused for exceeding the limit."""
        names = ("requests", "completions", "hangs", "image_parts", "judge_requests")
        return {
            **{name: self.counts[name] for name in names},
            "by_status": dict(self.by_status),
            "by_model": dict(self.by_model),
            "max_inflight": self.peak,
            **(self.batch_store.counts if self.batch_store is not None else {}),
        }

    def _authorized(self, request: web.Request) -> bool:
        if self._auth is None:
            return True
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), self._auth)

    def _reply(self, response: web.Response) -> web.Response:
        self.by_status[str(response.status)] += 1
        return response

    async def chat(self, request: web.Request) -> web.Response:
        self.counts["requests"] += 1
        self._inflight += 1
        self.peak = max(self.peak, self._inflight)
        try:
            return self._reply(await self._chat(request))
        finally:
            self._inflight -= 1

    async def _chat(self, request: web.Request) -> web.Response:
        s = self.s
        if not self._authorized(request):
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key"
            )
        if s.max_inflight and self._inflight > s.max_inflight:
            message = f"Rate limit reached: more than {s.max_inflight} requests in flight."
            return _error(429, message, "requests", None, "rate_limit_exceeded", self._retry)
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        problem = _invalid(body)
        if problem:
            return _error(400, problem[1], "invalid_request_error", problem[0])
        model: str = body["model"]
        self.by_model[model] += 1
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        attempt = self.attempts.get(digest, 0) + 1
        self.attempts[digest] = attempt
        fault, jitter, _, _ = uniforms(s.seed, "fault", digest.hex(), attempt)
        if fault < s.rate_429:
            message = "Rate limit reached for requests (simulated by goldgate sim)."
            return _error(429, message, "requests", None, "rate_limit_exceeded", self._retry)
        delay = (s.latency_ms + jitter * s.jitter_ms) / 1000
        if fault < s.rate_429 + s.rate_500:
            if delay:
                await asyncio.sleep(delay)
            message = "The server had an error while processing your request."
            return json_response(500, {"error": {"message": message, "type": "server_error"}})
        if fault < s.rate_429 + s.rate_500 + s.rate_hang:
            self.counts["hangs"] += 1
            delay += s.hang_s
        content, prompt_tokens = self._answer(body, model)
        if delay:
            await asyncio.sleep(delay)
        self.counts["completions"] += 1
        completion_tokens = len(TOKEN.findall(content))
        return json_response(
            200,
            {
                "id": f"chatcmpl-{digest.hex()[:24]}{attempt}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _answer(self, body: dict[str, Any], model: str) -> tuple[str, int]:
        """The assistant's content for this request, and its prompt token count."""
        prompt_tokens = 0
        judge = _is_judge_format(body.get("response_format"))
        text, urls = "", []
        for msg in body["messages"]:
            msg_text, msg_urls = _text_of(msg.get("content"))
            prompt_tokens += 3 + len(TOKEN.findall(msg_text)) + _IMAGE_TOKENS * len(msg_urls)
            if msg.get("role") == "user":
                text, urls = msg_text, msg_urls
            elif msg.get("role") == "system" and not judge:
                judge = "[goldgate-judge]" in (line.strip() for line in msg_text.splitlines())
        self.counts["image_parts"] += len(urls)
        if judge:
            self.counts["judge_requests"] += 1
            return self._verdict(text, model), prompt_tokens
        return self._predict(text, urls, model), prompt_tokens

    def _predict(self, text: str, urls: list[str], model: str) -> str:
        s = self.s
        hit = self.key.lookup(candidates(text, urls))
        if hit is None:
            u_pick, u_fmt, u_wrap, _ = uniforms(s.seed, "unknown", model, norm(text), *urls)
            labels = self.key.labels
            answer = labels[int(u_pick * len(labels))] if labels else "unknown"
        else:
            key, truth = hit
            u_ok, u_fmt, u_wrap, u_wrong = uniforms(s.seed, "answer", model, key)
            accuracy = s.model_accuracy.get(model, s.accuracy)
            if u_ok < self.key.class_accuracy(truth, accuracy):
                answer = truth
            elif is_text(truth):
                answer = garble(truth, u_wrong)
            else:
                near = self.key.neighbours(truth)
                answer = near[int(u_wrong * len(near))] if near else "unknown"
        if u_fmt < s.format_noise:
            wraps = _TEXT_WRAPS if is_text(answer) else _LABEL_WRAPS
            answer = wraps[int(u_wrap * len(wraps))].format(answer)
        return answer

    def _verdict(self, text: str, model: str) -> str:
        s = self.s
        inp, out = _section(text, "input") or "", _section(text, "output") or ""
        ref = _section(text, "reference")
        hit = self.key.lookup(candidates(inp, ()))
        if hit is not None and (ref is None or is_text(hit[1])):
            truth = self.key.right(hit[0], hit[1], out)
        elif ref is not None:
            truth = norm(out) == norm(ref)
        else:
            truth = False
        u_garbage, u_agree, u_reason, _ = uniforms(s.seed, "judge", model, norm(inp), norm(out))
        if u_garbage < s.judge_garbage_rate:
            return _GARBAGE
        miss = 2 * (1 - s.judge_model_agreement.get(model, s.judge_agreement))
        miss *= (1 - s.judge_leniency) if truth else s.judge_leniency
        verdict = truth if u_agree >= miss else not truth
        reasons = _PASS_REASONS if verdict else _FAIL_REASONS
        rationale = reasons[int(u_reason * len(reasons))]
        return json.dumps({"verdict": "pass" if verdict else "fail", "rationale": rationale})

    async def models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key"
            )
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "goldgate-sim"}
            for m in self._models
        ]
        return json_response(200, {"object": "list", "data": data})

    async def health(self, request: web.Request) -> web.Response:
        return json_response(200, {"status": "ok", "simulator": True})

    async def get_stats(self, request: web.Request) -> web.Response:
        return json_response(200, self.stats())

    async def post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response(200, {"status": "reset"})


def _section(text: str, tag: str) -> str | None:
    """The text inside `<tag>…</tag>` of a judge prompt; None when the section is absent."""
    found = _SECTION[tag].search(text)
    return found.group(1).strip() if found else None


def _is_judge_format(response_format: Any) -> bool:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return False
    schema = response_format.get("json_schema")
    return isinstance(schema, dict) and schema.get("name") == "goldgate_verdict"


def _invalid(body: Any) -> tuple[str | None, str] | None:
    """(param, message) for a body the OpenAI API would reject, or None."""
    if not isinstance(body, dict):
        return None, "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model", "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages", "'messages' must be a non-empty array."
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return "messages", "Each message must be an object with a 'role'."
    if body.get("stream"):
        return "stream", "goldgate sim does not support stream=true."
    return None


def build_app(settings: SimSettings) -> web.Application:
    """The simulator as an aiohttp app; loads the answer key now so requests only do lookups."""
    sim = _Sim(settings)
    app = web.Application(client_max_size=256 * 2**20)  # batch input files: OpenAI takes up to 200 MB
    app.router.add_post("/v1/chat/completions", sim.chat)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_get("/_sim/health", sim.health)
    app.router.add_get("/_sim/stats", sim.get_stats)
    app.router.add_post("/_sim/reset", sim.post_reset)
    sim.batch_store = BatchStore(sim)
    sim.batch_store.register(app)
    return app


@asynccontextmanager
async def running(settings: SimSettings) -> AsyncIterator[str]:
    """Serve in the current event loop for the block's duration; yields the base URL (`…/v1`)."""
    runner = web.AppRunner(
        build_app(settings), access_log=None, shutdown_timeout=0.5, handler_cancellation=True
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=2048)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"sim: cannot listen on {settings.host}:{settings.port} "
                f"({os.strerror(exc.errno).lower() if exc.errno else exc}); "
                "pick another --port, or 0 for a free one"
            ) from None
        port = runner.addresses[0][1]
        yield f"http://{settings.host}:{port}/v1"
    finally:
        await runner.cleanup()


def serve(settings: SimSettings, *, port_file: Path | None = None) -> None:
    """Serve until SIGINT or SIGTERM; writes the bound port to `port_file` once it accepts requests."""
    asyncio.run(_serve_until_signal(settings, port_file))


async def _serve_until_signal(settings: SimSettings, port_file: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings) as url:
        print(
            f"goldgate sim: serving {url} — a simulator, not a model", file=sys.stderr, flush=True
        )
        if port_file is not None:
            tmp = port_file.with_name(port_file.name + ".tmp")
            tmp.write_text(str(urlsplit(url).port), encoding="utf-8")
            tmp.replace(port_file)
        await stop.wait()
