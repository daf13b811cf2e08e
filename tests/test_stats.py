"""Suite intervals: a case's repeats are one cluster, not independent cases."""

from __future__ import annotations

import random

import pytest

from goldgate.engine.results import build_summary
from goldgate.engine.stats import clustered_wilson_interval, wilson_interval


def _suite(outcomes: dict[str, list[bool]]) -> dict:
    records = [{"suite": "s", "case_id": cid, "repeat": k, "status": "passed" if ok else "failed"}
               for cid, runs in outcomes.items() for k, ok in enumerate(runs)]
    meta = {"s": {"name": "s", "repeats": max(len(v) for v in outcomes.values()), "gates": {}}}
    return build_summary(meta, records, run_id="r", call_stats={}, wall_s=0.0)["suites"][0]


def test_identical_repeats_give_the_interval_of_the_cases_not_of_the_records() -> None:
    suite = _suite({f"c{i}": [i % 5 != 0] * 5 for i in range(100)})
    assert suite["n"] == 500 and suite["pass_rate"] == 0.8
    lo, hi = suite["pass_rate_ci"]
    assert (lo, hi) == pytest.approx(wilson_interval(80, 100), abs=0.003)  # effective N = 99 cases
    assert hi - lo > 2 * (wilson_interval(400, 500)[1] - wilson_interval(400, 500)[0])
    single = _suite({f"c{i}": [i % 5 != 0] for i in range(100)})
    assert single["pass_rate_ci"] == list(wilson_interval(80, 100))


@pytest.mark.parametrize("flaky", [False, True])
def test_clustered_interval_covers_the_true_pass_rate(flaky: bool) -> None:
    """2,000 suites of 100 cases × 5 repeats. Identical repeats (the naive Wilson on 500 records
    covered 59 %), or flaky cases: 70 % pass with probability 0.95, 30 % with 0.3."""
    rng = random.Random(5)
    truth = 0.7 * 0.95 + 0.3 * 0.3 if flaky else 0.8
    covered = naive = 0
    for _ in range(2000):
        clusters = []
        for _ in range(100):
            if flaky:
                p = 0.95 if rng.random() < 0.7 else 0.3
                clusters.append((sum(rng.random() < p for _ in range(5)), 5))
            else:
                clusters.append((5 * (rng.random() < truth), 5))
        lo, hi = clustered_wilson_interval(clusters)
        covered += lo <= truth <= hi
        nlo, nhi = wilson_interval(sum(y for y, _ in clusters), 500)
        naive += nlo <= truth <= nhi
    assert covered / 2000 >= 0.93, covered
    assert naive / 2000 < (0.85 if flaky else 0.65)
