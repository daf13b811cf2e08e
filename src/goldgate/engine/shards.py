"""Sharded runs: which slice of a suite's cases shard i of n runs, and what a shard's summary must
record (commit, config hash) so `goldgate merge` can refuse shards that do not belong together.

Cases are ranked by a stable hash of their id and dealt out round-robin, so every case lands in
exactly one shard and shard sizes differ by at most one per suite; a hash modulo n alone would
leave shards of a 100k-case suite a few hundred cases apart.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from goldgate.errors import ConfigError

if TYPE_CHECKING:
    from goldgate.config import Config

__all__ = ["Shard", "parse_shard", "run_provenance"]

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
T = TypeVar("T")


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def select(self, items: Sequence[T], ids: Sequence[str], suite: str) -> list[T]:
        """This shard's items, in their original order. The round-robin start rotates by suite, so
        the extra cases of many small suites do not all pile onto shard 1."""
        if self.count == 1:
            return list(items)
        ranked = sorted(range(len(ids)), key=lambda i: (_h(ids[i]), ids[i]))
        offset = _h(suite) % self.count
        mine = {i for rank, i in enumerate(ranked) if (rank + offset) % self.count == self.index - 1}
        return [x for i, x in enumerate(items) if i in mine]

    def to_dict(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`i/n` with 1 <= i <= n, or ConfigError naming what was given."""
    m = _SPEC.match(text or "")
    if not m:
        raise ConfigError(f"--shard {text!r}: expected i/n, e.g. 1/4")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise ConfigError(f"--shard {text!r}: i must be between 1 and n (shards are numbered from 1)")
    return Shard(i, n)


def config_sha256(config: Config) -> str:
    """The project's settings, minus where the checkout happens to live on this machine."""
    dumped = config.model_dump_json(exclude={"root", "pyproject"})
    return hashlib.sha256(dumped.encode()).hexdigest()


def _git_commit(root: os.PathLike[str] | str) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_provenance(config: Config) -> dict[str, Any]:
    """Which code and settings produced a run: the checkout's commit (GITHUB_SHA outside a git
    checkout) and the config hash."""
    return {"commit": _git_commit(config.root) or os.environ.get("GITHUB_SHA") or None,
            "config_sha256": config_sha256(config)}
