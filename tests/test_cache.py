"""The call cache's claims: one key is paid for once, whoever asks and whenever."""

from __future__ import annotations

from pathlib import Path

from goldgate.calls.base import CallResult
from goldgate.calls.cache import CallCache


def test_a_key_answered_since_we_looked_is_not_claimed_again(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with CallCache(path) as first, CallCache(path) as late:
        assert first.claim(["k1", "k2"], ttl_s=60) == {"k1", "k2"}
        assert late.claim(["k1", "k2"], ttl_s=60) == set()  # held by a live peer
        first.put_many([("app", CallResult(key="k1", content="A", attempts=1))])  # k1 done, claim dropped
        assert late.claim(["k1", "k2", "k3"], ttl_s=60) == {"k3"}  # k1 is answered, k2 still held
        assert late.get_many(["k1"])["k1"].content == "A"
