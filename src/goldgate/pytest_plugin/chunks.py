"""How a parametrised eval is cut into chunks: the unit a worker prefetches, and so the unit xdist
must hand out whole. Shared by the plugin and the xdist scheduler."""

from __future__ import annotations

import math

__all__ = ["chunk_of", "function_id"]


def function_id(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def chunk_of(position: int, size: int, workers: int) -> int:
    """The chunk a test's position falls in when `size` tests are split over `workers`."""
    return position // max(1, math.ceil(size / max(1, workers)))
