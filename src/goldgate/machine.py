"""What this machine gives local models: how many compute threads to use."""

from __future__ import annotations

import os

__all__ = ["compute_threads"]


def compute_threads() -> int:
    """Compute threads for torch, ONNX Runtime and llama.cpp: `$GOLDGATE_THREADS`, else 1 on
    machines with two CPUs or fewer, else half the CPUs (at most 8).

    Deliberate: on the 2-CPU machines goldgate is developed on, with any other process busy, one
    compute thread was up to 10× faster than two (spinning threads fight for the one free core);
    on bigger machines half the cores leaves room for the request-handling side.
    """
    env = os.environ.get("GOLDGATE_THREADS")
    if env:
        return max(1, int(env))
    cpus = os.cpu_count() or 1
    return 1 if cpus <= 2 else min(8, cpus // 2)
