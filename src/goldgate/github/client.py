"""Connecting to GitHub with a token from the environment, and turning API failures into one-line
`GitHubError`s built from GitHub's status and message; the token never appears in output.
PyGithub is imported only inside `connect`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from goldgate.errors import GoldgateError

if TYPE_CHECKING:
    from github import Github

__all__ = ["TOKEN_ENVS", "GitHubError", "connect", "github_errors", "message_of", "status_of", "token_from_env"]

TOKEN_ENVS = ("GOLDGATE_GITHUB_TOKEN", "GITHUB_TOKEN")


class GitHubError(GoldgateError):
    """A GitHub API call failed, or the environment lacks what the call needs (token, repo, PR)."""


def token_from_env(env: Mapping[str, str] = os.environ) -> str:
    for name in TOKEN_ENVS:
        if env.get(name):
            return env[name]
    raise GitHubError(f"no GitHub token: set {' or '.join(TOKEN_ENVS)}")


def connect(token: str, api_url: str | None = None, *, retry: Any = "default") -> Github:
    """A PyGithub client without request spacing: goldgate makes a handful of writes per run, and
    PyGithub's default retry still backs off on GitHub's rate-limit answers."""
    from github import Auth, Github

    kwargs: dict[str, Any] = {} if retry == "default" else {"retry": retry}
    return Github(auth=Auth.Token(token), base_url=(api_url or "https://api.github.com").rstrip("/"),
                  seconds_between_requests=0, seconds_between_writes=0, **kwargs)


_HINTS = {
    401: "check GOLDGATE_GITHUB_TOKEN / GITHUB_TOKEN",
    403: "the token lacks a permission (see docs/ci.md: contents, pull-requests and issues: write)",
    404: "check the repository name and that the token can see it",
    409: "someone else changed it meanwhile; re-run",
}


@contextmanager
def github_errors(action: str, token: str | None = None) -> Iterator[None]:
    """Turn PyGithub and connection failures into one line naming what goldgate was doing."""
    from github import GithubException
    from requests.exceptions import RequestException

    try:
        yield
    except GithubException as exc:
        data = exc.data if isinstance(exc.data, dict) else {}
        msg = str(data.get("message") or exc.message or "")
        details = [str(e.get("message") or e.get("code") or "") if isinstance(e, dict) else str(e)
                   for e in data.get("errors") or []]
        text = "; ".join([msg, *[d for d in details if d]])
        hint = _HINTS.get(exc.status)
        line = f"{action}: GitHub answered {exc.status} {text}" + (f" ({hint})" if hint else "")
        raise GitHubError(_scrub(line, token)) from None
    except RequestException as exc:
        raise GitHubError(_scrub(f"{action}: cannot reach GitHub: {type(exc).__name__}", token)) from None


def _scrub(text: str, token: str | None) -> str:
    text = " ".join(text.split())
    return text.replace(token, "***") if token else text


def status_of(exc: Exception) -> int:
    return int(getattr(exc, "status", 0) or 0)


def message_of(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    parts = [str(data.get("message", ""))] if isinstance(data, dict) else []
    if isinstance(data, dict):
        parts += [str(e.get("message", "")) for e in data.get("errors") or [] if isinstance(e, dict)]
    return " ".join(parts)
