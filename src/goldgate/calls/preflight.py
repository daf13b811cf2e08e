"""Checks made once per candidate or judge before its first call: its API key variable is set and
its api_base is an http(s) URL that accepts a connection. A configuration mistake then stops the
run with one line, instead of failing every call with the same error after its retries."""

from __future__ import annotations

import os
import socket
import urllib.request
from urllib.parse import urlsplit

from goldgate.errors import ConfigError

__all__ = ["check_endpoint"]

CONNECT_TIMEOUT_S = 5.0
_reached: dict[str, str | None] = {}  # api_base -> why it cannot be reached (None: it can)


def check_endpoint(owner: str, *, api_base: str | None, api_key_env: str | None) -> None:
    """Raise ConfigError naming `owner` (e.g. `[tool.goldgate.candidates.x]`) when its key
    variable is unset or its api_base is not a reachable http(s) URL; each api_base is tried once
    per process."""
    if api_key_env and not os.environ.get(api_key_env):
        raise ConfigError(f"{owner} api_key_env: environment variable {api_key_env} is not set")
    if not api_base:
        return
    if api_base not in _reached:
        _reached[api_base] = _why_unreachable(api_base)
    why = _reached[api_base]
    if why is not None:
        raise ConfigError(f"{owner} api_base: {why}")


def _why_unreachable(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL (e.g. http://localhost:8000/v1)"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"{url!r} has an invalid port"
    if urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname):
        return None  # reached through a proxy: a direct connection proves nothing
    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"cannot connect to {url} ({reason})"
