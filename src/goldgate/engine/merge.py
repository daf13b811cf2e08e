"""`goldgate merge`: shard runs combined into one run, as if it had run on one machine.

Everything is recomputed from the per-case records (counts, Wilson intervals, costs, latency
percentiles, gates, repeat statistics), never averaged from the shard summaries; only call
counters, which are not per case, are summed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from goldgate.engine.results import build_summary, load_cases, load_run, new_run_id
from goldgate.errors import ResultsError

__all__ = ["MergedRun", "merge_runs"]

_COUNTERS = ("llm_calls", "cache_hits", "throttled")


class MergedRun:
    """The merged summary and case records, ready for `write_run`."""

    def __init__(self, summary: dict[str, Any], records: list[dict[str, Any]]) -> None:
        self.summary = summary
        self.records = records


def _shards(runs: list[tuple[Path, dict[str, Any]]]) -> int:
    """Check the shard numbers: one count, every index once. Returns the count."""
    for path, s in runs:
        if not isinstance(s.get("shard"), dict):
            raise ResultsError(f"{path}: not a shard run (run it with `goldgate run --shard i/n`)")
    counts = {s["shard"]["count"] for _, s in runs}
    if len(counts) > 1:
        given = ", ".join(f"{p} is {s['shard']['index']}/{s['shard']['count']}" for p, s in runs)
        raise ResultsError(f"shards of different counts cannot be merged: {given}")
    count = counts.pop()
    seen: dict[int, Path] = {}
    for path, s in runs:
        i = s["shard"]["index"]
        if i in seen:
            raise ResultsError(f"shard {i}/{count} given twice: {seen[i]} and {path}")
        seen[i] = path
    missing = [str(i) for i in range(1, count + 1) if i not in seen]
    if missing:
        raise ResultsError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} of {count} missing")
    return count


def _same(runs: list[tuple[Path, dict[str, Any]]], what: str, get: Callable[[dict[str, Any]], Any]) -> None:
    first_path, first = runs[0]
    for path, s in runs[1:]:
        if get(s) != get(first):
            raise ResultsError(f"cannot merge shards of different {what}: {first_path} has {get(first)!r}, "
                               f"{path} has {get(s)!r}")


def _suites_meta(runs: list[tuple[Path, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each suite's declaration as `build_summary` wants it, the same in every shard that ran it."""
    meta: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path, s in runs:
        for suite in s["suites"]:
            m = {
                "name": suite["name"],
                "dataset": suite.get("dataset"),
                "split": suite.get("split"),
                "slot": suite.get("slot"),
                "candidate": suite.get("candidate"),
                "fingerprints": suite.get("fingerprints", {}),
                "gates": suite.get("gates", {}),
                "repeats": (suite.get("repeats") or {}).get("k", 1),
            }
            if suite["name"] in meta:
                other_path, other = meta[suite["name"]]
                for key in ("fingerprints", "gates", "split", "repeats"):
                    if m[key] != other[key]:
                        what = "goldens" if key == "fingerprints" and (
                            m[key].get("dataset_sha256") != other[key].get("dataset_sha256")) else key
                        raise ResultsError(f"cannot merge shards of different {what} in suite '{suite['name']}': "
                                           f"{other_path} and {path} differ")
            else:
                meta[suite["name"]] = (path, m)
    return {name: m for name, (_, m) in meta.items()}


def merge_runs(run_dirs: Sequence[str | os.PathLike[str]], *,
               judge_gates: Callable[[list[str]], list[dict[str, Any]]] | None = None) -> MergedRun:
    """Merge every shard of one run. `judge_gates(judges)` checks the judges the cases used, once
    for the merged run (the CLI passes the project's calibration check)."""
    if not run_dirs:
        raise ResultsError("no run directories to merge")
    runs = [(Path(d), load_run(d)) for d in run_dirs]
    count = _shards(runs)
    _same(runs, "commits", lambda s: (s.get("provenance") or {}).get("commit"))
    _same(runs, "configs", lambda s: (s.get("provenance") or {}).get("config_sha256"))
    _same(runs, "strictness", lambda s: bool(s.get("strict")))
    meta = _suites_meta(runs)

    records: dict[tuple[str, str, int], dict[str, Any]] = {}
    where: dict[tuple[str, str, int], Path] = {}
    for path, _ in runs:
        for rec in load_cases(path):
            key = (rec["suite"], rec["case_id"], rec.get("repeat", 0))
            if key in records:
                raise ResultsError(f"case {key[1]} of suite '{key[0]}' is in two shards ({where[key]} and {path}); "
                                   "were they run with different goldens?")
            if rec["suite"] not in meta:
                raise ResultsError(f"{path}/cases.jsonl: case {key[1]} names suite '{rec['suite']}', "
                                   "which its summary does not list")
            records[key] = rec
            where[key] = path

    stats: dict[str, float] = {k: sum(s["totals"].get(k, 0) for _, s in runs) for k in _COUNTERS}
    floors = [s["totals"]["min_concurrency"] for _, s in runs if s["totals"].get("min_concurrency")]
    if floors:
        stats["min_concurrency"] = min(floors)
    by_index = sorted(runs, key=lambda r: r[1]["shard"]["index"])
    first = by_index[0][1]
    extra: dict[str, Any] = {
        "strict": bool(first.get("strict")),
        "provenance": first.get("provenance"),
        "merged": {
            "count": count,
            "shards": [{"index": s["shard"]["index"], "run_id": s["run_id"], "dir": str(p),
                        "cases": s["totals"]["cases"], "wall_s": s["totals"]["wall_s"]} for p, s in by_index],
        },
    }
    # Shards run side by side: the run took as long as its slowest shard.
    wall = max(s["totals"]["wall_s"] for _, s in runs)
    summary = build_summary(meta, records.values(), run_id=new_run_id(), call_stats=stats, wall_s=wall, extra=extra)
    judges = sorted({v["judge"] for r in records.values() for v in r.get("judges", [])})
    if judges and judge_gates is not None:
        summary["judge_gates"] = judge_gates(judges)
        if any(g["status"] != "pass" for g in summary["judge_gates"]):
            summary["status"] = "fail"
    return MergedRun(summary, list(records.values()))
