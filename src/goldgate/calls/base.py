"""Model calls as plain data: what is asked, what came back, and the cache key that ties them.

These cross process boundaries (xdist workers, call processes), so they are dataclasses of
primitives, never live clients.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from goldgate.calls.labels import parse_label

__all__ = ["OUTPUT_SLOT", "SECRET_PARAM_KEYS", "TRANSPORT_PARAM_KEYS", "CallRequest", "CallResult", "FollowUp", "cache_key"]

CallKind = Literal["app", "judge"]

# Never part of a key or a stored entry: secrets, and settings that change how a call travels
# but not what the model answers.
SECRET_PARAM_KEYS = frozenset({"api_key", "api_token", "token", "authorization", "headers", "extra_headers"})
TRANSPORT_PARAM_KEYS = frozenset({"api_base", "base_url", "timeout", "num_retries", "max_retries", "stream"})


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in SECRET_PARAM_KEYS and k not in TRANSPORT_PARAM_KEYS}


def cache_key(kind: str, model: str, messages: list[dict[str, Any]], params: dict[str, Any], repeat: int) -> str:
    """Content address of a call: everything that changes the answer, nothing that identifies the caller."""
    blob = json.dumps(
        {"v": 1, "kind": kind, "model": model, "messages": messages, "params": _clean(params), "repeat": repeat},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One chat completion to make (or find in the cache). `api_key_env` names, never holds, the key."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    repeat: int = 0
    kind: CallKind = "app"
    api_base: str | None = None
    api_key_env: str | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    owner: str = ""  # whose config made it (e.g. `[tool.goldgate.candidates.x]`), for one-line errors
    max_in_flight: int | None = None  # this endpoint's own cap (a self-hosted server with one slot: 1)
    key: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", cache_key(self.kind, self.model, self.messages, self.params, self.repeat))


@dataclass(slots=True)
class CallResult:
    """The outcome of one call. `error` is set when it failed after retries; content is then empty."""

    key: str
    content: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 0
    cached: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallResult:
        return cls(**d)


# Where a follow-up call's messages take the answer they follow (a character no prompt contains).
OUTPUT_SLOT = "\x00goldgate:output\x00"


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A call made from another call's answer as soon as it lands (a judge reading the app's output),
    under the same concurrency limit, retries and cache. Plain data, so call workers can make it.

    `request`'s messages hold OUTPUT_SLOT where the answer goes; with `labels`, the answer is first
    parsed to one of them (no follow-up when it parses to none: that case is an error anyway)."""

    request: CallRequest
    labels: tuple[str, ...] | None = None

    def answer_text(self, content: str) -> str | None:
        if self.labels is None:
            return content
        return parse_label(content, self.labels)

    def made_from(self, answer: CallResult) -> CallRequest | None:
        """The call to make once `answer` is in, or None when there is nothing to follow up."""
        text = self.answer_text(answer.content) if answer.ok else None
        if text is None:
            return None
        messages = [_fill(m, text) for m in self.request.messages]
        return dataclasses.replace(self.request, messages=messages)

    def to_dict(self) -> dict[str, Any]:
        req = {f.name: getattr(self.request, f.name) for f in dataclasses.fields(CallRequest) if f.init}
        return {"request": req, "labels": list(self.labels) if self.labels is not None else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FollowUp:
        labels = d.get("labels")
        return cls(CallRequest(**d["request"]), tuple(labels) if labels is not None else None)


def _fill(message: dict[str, Any], text: str) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str) and OUTPUT_SLOT in content:
        return {**message, "content": content.replace(OUTPUT_SLOT, text)}
    return message
