"""The decision numbers the docs quote, computed rather than typed: the swap rule's exact operating
characteristic, its size with transport failures, the judge-calibration κ interval widths, and how
often `compare` calls unchanged runs worse.

Every figure is exact (a sum over all paired outcomes, `goldgate.decide.operating`) except the κ
intervals, which are the seeded bootstrap `goldgate judge calibrate` itself runs, on the 2×2 table
expected at κ = 0.70 with 30 % human fails. docs/distill.md, docs/judges.md and docs/ci.md hold these tables
between `<!-- bench_decision_oc:NAME -->` markers; tests/test_bench_docs.py checks they still agree.
Usage: python bench/bench_decision_oc.py [--write]   (--write refreshes the docs' tables)
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from goldgate.decide.noninferiority import CONTINUITY
from goldgate.decide.operating import (
    Cells,
    outcome_probability,
    swap_probability,
    swap_probability_with_losses,
)
from goldgate.decide.splitlog import MAX_DECISIONS, SPLIT_ALPHA, spent_alpha
from goldgate.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]
DELTA = 0.03
LLM_ACCURACY = 0.87
DISCORDANCE = 0.10
DIFFERENCES = (-0.05, -0.035, -0.03, 0.0, 0.01, 0.02)
SIZES = (300, 1000)
LOSS_RATES = (0.0, 0.01, 0.02, 0.05)
GRID = {"n": (100, 300, 1000, 2000), "delta": (0.02, 0.03, 0.05), "discordance": (0.06, 0.10, 0.20, 0.30, 0.45)}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _scenarios() -> dict[str, Callable[[float], Cells]]:
    return {f"{100 * DISCORDANCE:.0f} % discordant": lambda d: Cells.paired(d, DISCORDANCE),
            "independent errors": lambda d: Cells.independent(LLM_ACCURACY, LLM_ACCURACY + d)}


def oc_table() -> str:
    """P(swap) by check (b) against the true difference, per golden-set size and error structure."""
    scenarios = _scenarios()
    cols = [(name, n) for name in scenarios for n in SIZES]
    lines = ["| true Δ (student − LLM) | " + " | ".join(f"N = {n:,}, {name}" for name, n in cols) + " |",
             "|---:|" + "---:|" * len(cols)]
    for d in DIFFERENCES:
        cells = [_pct(swap_probability(n, scenarios[name](d), DELTA)) for name, n in cols]
        lines.append(f"| {d:+.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def transport_table() -> str:
    """False-swap rate at Δ = −δ when the LLM's calls fail at random, scored as wrong vs left out."""
    worse, n = Cells.paired(-DELTA, DISCORDANCE), 1000
    both_right = LLM_ACCURACY - worse.p01
    lines = [("| LLM transport failures | before: failed calls scored as wrong (α = 0.05, no correction) | "
             "now: left out of the pairing (first decision on the split) |"), "|---:|---:|---:|"]
    for r in LOSS_RATES:
        as_wrong = Cells(worse.p10 + r * both_right, (1 - r) * worse.p01)
        lines.append(f"| {_pct(r)} | {_pct(swap_probability(n, as_wrong, DELTA, alpha=0.05, correction=0))} | "
                     f"{_pct(swap_probability_with_losses(n, worse, DELTA, r))} |")
    return "\n".join(lines)


def worst_size(correction: float) -> tuple[float, int, float, float]:
    """The largest exact P(swap) at Δ = −δ over GRID, and where it occurs."""
    return max((swap_probability(n, Cells.paired(-d, disc), d, alpha=SPLIT_ALPHA, correction=correction), n, d, disc)
               for n in GRID["n"] for d in GRID["delta"] for disc in GRID["discordance"])


def size_table() -> str:
    lines = ["| observed difference | largest exact size at −δ, one-sided α = 0.05 | at |", "|---|---:|---|"]
    for label, corr in (("as observed (plain score test)", 0.0), (f"less {CONTINUITY:g} discordant pair (used)",
                                                                   CONTINUITY)):
        size, n, d, disc = worst_size(corr)
        lines.append(f"| {label} | {_pct(size)} | N = {n:,}, δ = {d}, {100 * disc:.0f} % discordant |")
    return "\n".join(lines)


def split_table() -> str:
    """The level of the k-th decision on one test split, and what it does to size and power."""
    lines = ["| decision on the split | one-sided α | P(swap), Δ = −0.03 | P(swap), Δ = 0 | P(swap), Δ = +0.02 |",
             "|---:|---:|---:|---:|---:|"]
    for k in range(1, MAX_DECISIONS + 1):
        a = spent_alpha(SPLIT_ALPHA, k)
        rates = [_pct(swap_probability(1000, Cells.paired(d, DISCORDANCE), DELTA, alpha=a)) for d in (-0.03, 0, 0.02)]
        lines.append(f"| {k} | {a:.4f} | " + " | ".join(rates) + " |")
    return "\n".join(lines)


def kappa_table() -> str:
    """κ and its 95% interval as `judge calibrate` reports them, on the expected table at κ = 0.70."""
    from goldgate.judges.calibration import kappa_interval

    lines = ["| N | κ | 95% interval |", "|---:|---:|---|"]
    for n in (100, 400):
        # human fails 30 %, judge with the same margins: agreement 0.874 → κ = (0.874 − 0.58) / 0.42 = 0.70
        off = round(0.063 * n)
        counts = [round(0.7 * n) - off, off, off, round(0.3 * n) - off]  # pass/pass, pass/fail, fail/pass, fail/fail
        cells = [i for i, k in enumerate(counts) for _ in range(k)]
        lo, hi = kappa_interval(cells)
        po, h = (counts[0] + counts[3]) / n, (counts[0] + counts[1]) / n
        pe = h * h + (1 - h) * (1 - h)
        lines.append(f"| {n} | {(po - pe) / (1 - pe):.2f} | [{lo:.2f}, {hi:.2f}] |")
    return "\n".join(lines)


def _exact_mcnemar(b: int, c: int) -> float:
    k = b + c
    return 1.0 if k == 0 else min(1.0, 2 * sum(math.comb(k, i) for i in range(min(b, c) + 1)) / 2**k)


def compare_table() -> str:
    """How often `compare` calls a run "worse" when no suite changed (200 cases a suite, 10 %
    discordant), before (exact McNemar per suite, any suite worse) and now (Holm; an upper bound)."""
    from goldgate.decide.compare import paired_test

    n, same = 200, Cells.paired(0.0, DISCORDANCE)
    lines = ["| unchanged suites | called worse before (per-suite exact McNemar) | now (Holm, at most) |",
             "|---:|---:|---:|"]
    before = outcome_probability(n, same, lambda b, c: c > b and _exact_mcnemar(b, c) < 0.05)
    for k in (1, 5, 10):
        now = outcome_probability(n, same, lambda b, c, k=k: c > b and paired_test(b, c, n)[0] <= 0.05 / k)
        lines.append(f"| {k} | {_pct(1 - (1 - before) ** k)} | {_pct(1 - (1 - now) ** k)} |")
    return "\n".join(lines)


TABLES: dict[str, tuple[str, Callable[[], str]]] = {
    "oc": ("docs/distill.md", oc_table),
    "transport": ("docs/distill.md", transport_table),
    "size": ("docs/distill.md", size_table),
    "split": ("docs/distill.md", split_table),
    "kappa": ("docs/judges.md", kappa_table),
    "compare": ("docs/ci.md", compare_table),
}


def block(name: str) -> re.Pattern[str]:
    tag = f"bench_decision_oc:{name}"
    return re.compile(rf"(<!-- {tag} -->)\n(.*?)\n?(<!-- /{tag} -->)", re.DOTALL)


def quoted(name: str) -> str:
    """The table as the docs currently quote it."""
    doc, _ = TABLES[name]
    found = block(name).search((ROOT / doc).read_text(encoding="utf-8"))
    if found is None:
        raise SystemExit(f"{doc}: no <!-- bench_decision_oc:{name} --> block")
    return found.group(2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="refresh the tables in docs/")
    args = ap.parse_args()
    for name, (doc, make) in TABLES.items():
        table = make()
        print(f"## {name} ({doc})\n\n{table}\n")
        if args.write:
            path = ROOT / doc
            text = path.read_text(encoding="utf-8")
            found = block(name).search(text)
            if found is None:
                raise SystemExit(f"{doc}: no <!-- bench_decision_oc:{name} --> block to refresh")
            text = text[:found.start(2)] + table + "\n" + text[found.start(3):]
            write_atomic(path, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
