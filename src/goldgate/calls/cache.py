"""goldgate's own call cache: SQLite, content-addressed, shared safely by processes.

Finished calls are committed in small batches (within ~20 ms of landing), so a run killed at any
moment leaves all but its last few answers readable, and the next run makes only the missing ones.
Concurrent processes (xdist workers) claim a key before calling the model; a process that finds a
key claimed by a live peer waits for the peer's answer instead of paying for the call twice.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from goldgate.calls.base import CallResult
from goldgate.errors import CacheError
from goldgate.processes import pid_alive

__all__ = ["CallCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires REAL NOT NULL
);
"""
_STORED = ("content", "model", "prompt_tokens", "completion_tokens", "cost_usd", "latency_s", "attempts")
_BATCH = 500


class CallCache:
    """A handle on one cache file; open one per process (connections are not shared)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.owner = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._pid = os.getpid()
        deadline = time.monotonic() + 60
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL needs a moment alone; xdist workers open it together.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise CacheError(f"{self.path}: cannot open call cache: {exc}") from None
                time.sleep(0.05)
            except sqlite3.Error as exc:
                raise CacheError(f"{self.path}: cannot open call cache: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, keys: Iterable[str]) -> dict[str, CallResult]:
        """Cached results for the keys that have one, marked `cached=True`."""
        out: dict[str, CallResult] = {}
        keys = list(keys)
        for i in range(0, len(keys), _BATCH):
            chunk = keys[i : i + _BATCH]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, value FROM calls WHERE key IN ({marks})", chunk)
            for key, value in rows:
                data = json.loads(value)
                out[key] = CallResult(key=key, cached=True, **{k: data[k] for k in _STORED if k in data})
        return out

    def put_many(self, items: Iterable[tuple[str, CallResult]]) -> None:
        """Store the successful calls (kind, result) and release every claim, in one transaction."""
        now = time.time()
        rows, released = [], []
        for kind, result in items:
            released.append((result.key, self.owner))
            if result.ok:
                value = json.dumps({k: getattr(result, k) for k in _STORED}, ensure_ascii=False)
                rows.append((result.key, kind, value, now))
        try:
            with self._tx():
                self._db.executemany(
                    "INSERT OR REPLACE INTO calls(key, kind, value, created) VALUES (?, ?, ?, ?)", rows)
                self._db.executemany("DELETE FROM claims WHERE key = ? AND owner = ?", released)
        except sqlite3.Error as exc:
            raise CacheError(f"{self.path}: cannot write call cache: {exc}") from None

    def claim(self, keys: Iterable[str], ttl_s: float, *, fresh: bool = False) -> set[str]:
        """Claim keys for this process; returns the ones we own (new or taken over from dead owners).

        A key already answered in the cache is never ours: a peer finished it (and dropped its
        claim) after we last looked, and calling again would pay twice for one key. With `fresh`
        (a run that must not trust stored answers) it may be ours again."""
        keys = list(keys)
        now = time.time()
        mine: set[str] = set()
        with self._tx():
            for i in range(0, len(keys), _BATCH):
                chunk = keys[i : i + _BATCH]
                marks = ",".join("?" * len(chunk))
                done = {k for (k,) in self._db.execute(f"SELECT key FROM calls WHERE key IN ({marks})", chunk)}
                held = {
                    k: (owner, host, pid, exp)
                    for k, owner, host, pid, exp in self._db.execute(
                        f"SELECT key, owner, host, pid, expires FROM claims WHERE key IN ({marks})", chunk
                    )
                }
                for k in chunk:
                    h = held.get(k)
                    if (fresh or k not in done) and (h is None or h[0] == self.owner or h[3] < now
                                          or not self._alive(h[1], h[2])):
                        mine.add(k)
                self._db.executemany(
                    "INSERT OR REPLACE INTO claims(key, owner, host, pid, expires) VALUES (?, ?, ?, ?, ?)",
                    [(k, self.owner, self._host, self._pid, now + ttl_s) for k in chunk if k in mine],
                )
        return mine

    def release(self, keys: Iterable[str]) -> None:
        with self._tx():
            self._db.executemany(
                "DELETE FROM claims WHERE key = ? AND owner = ?", [(k, self.owner) for k in keys]
            )

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM calls WHERE kind = ?", (kind,)).fetchone()[0]

    def _alive(self, host: str, pid: int) -> bool:
        return host != self._host or pid_alive(pid)

    def _tx(self) -> _Tx:
        return _Tx(self._db)


class _Tx:
    """BEGIN IMMEDIATE … COMMIT, so claim checks and writes are atomic across processes."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
