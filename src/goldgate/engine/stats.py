"""Small, dependency-free statistics for gates: intervals on pass rates and percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["clustered_wilson_interval", "percentile", "wilson_interval"]

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval: honest at small N and near 0/1, unlike the normal approximation."""
    if n == 0:
        return (0.0, 1.0)
    return _wilson_p(successes / n, n, z)


def clustered_wilson_interval(clusters: Sequence[tuple[int, int]], z: float = Z95) -> tuple[float, float]:
    """Wilson interval for a pass rate whose records come in clusters (passes, records), e.g. the
    repeats of one case: repeats of a case are not independent evidence, so the interval uses the
    effective sample size p(1 − p) / Var̂(p̂), with the cluster-robust (ratio-estimator) variance
    G/(G − 1) · Σ (y_i − p̂ m_i)² / (Σ m_i)². Identical repeats count as one case each."""
    groups = [(y, m) for y, m in clusters if m > 0]
    total = sum(m for _, m in groups)
    if not groups:
        return (0.0, 1.0)
    passed = sum(y for y, _ in groups)
    p, g = passed / total, len(groups)
    if g == 1 or p in (0.0, 1.0):
        return wilson_interval(round(p * g), g)  # no spread to measure: count cases, not records
    var = g / (g - 1) * sum((y - p * m) ** 2 for y, m in groups) / total**2
    n_eff = total if var <= 0 else min(total, p * (1 - p) / var)
    return _wilson_p(p, n_eff, z)


def _wilson_p(p: float, n: float, z: float) -> tuple[float, float]:
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
