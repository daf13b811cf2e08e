"""Latency and throughput of a student on this machine: the inputs the cost model needs."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

from goldgate.engine.stats import percentile

__all__ = ["hardware", "measure_speed"]


def hardware() -> str:
    return f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} CPUs"


def measure_speed(predict: Callable[[list[str]], Any], texts: Sequence[str], *, batch_size: int,
                  single: int = 100) -> dict[str, Any]:
    """Single-request latency over `single` calls, and throughput and CPU time over `texts` in batches."""
    predict(list(texts[:batch_size]))  # warm-up: first calls pay lazy initialisation
    lat = []
    for t in texts[:single]:
        t0 = time.perf_counter()
        predict([t])
        lat.append((time.perf_counter() - t0) * 1000)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch_size):
        predict(list(texts[i : i + batch_size]))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "throughput_rps": len(texts) / wall if wall > 0 else 0.0,
        "cpu_s_per_request": cpu / len(texts) if texts else 0.0,  # all threads: what shared hosting pays for
        "batch_size": batch_size,
        "latency_p50_ms": percentile(lat, 50),
        "latency_p95_ms": percentile(lat, 95),
        "measured_on": len(texts),
        "hardware": hardware(),
    }
