"""xdist scheduling that hands each worker whole contiguous chunks of a parametrised test.

goldgate fetches a chunk's model outputs concurrently the first time one of its cases runs, so a
worker must own the whole chunk. (xdist's own `loadgroup` would do this through `xdist_group`
marks, but it relabels node ids through a private attribute that pytest 9.2 no longer reads.)
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling

from goldgate.pytest_plugin.chunks import chunk_of, function_id

__all__ = ["ChunkScheduling"]


class ChunkScheduling(LoadScopeScheduling):
    """LoadScope where a scope is (test function, chunk index); plain tests are their own scope."""

    def __init__(self, config: Any, log: Any = None):
        super().__init__(config, log)
        self._scopes: dict[str, str] = {}

    def schedule(self) -> None:
        if self.collection is None and self.registered_collections:
            collection = next(iter(self.registered_collections.values()))
            by_func: dict[str, list[str]] = {}
            for nodeid in collection:
                if "[" in nodeid:
                    by_func.setdefault(function_id(nodeid), []).append(nodeid)
            workers = len(self.nodes)
            for func, ids in by_func.items():
                for i, nodeid in enumerate(ids):
                    self._scopes[nodeid] = f"{func}#{chunk_of(i, len(ids), workers)}"
        super().schedule()

    def _split_scope(self, nodeid: str) -> str:
        return self._scopes.get(nodeid, nodeid)
