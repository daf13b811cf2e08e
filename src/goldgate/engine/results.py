"""Run results as plain, versioned JSON: `summary.json` + `cases.jsonl` in a run directory.

Every later step (report, compare, comment, decide, swap PR) reads these files and nothing else,
so the schema is the contract: see docs/results-schema.md.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from goldgate.engine.gates import Gates, evaluate_gates
from goldgate.engine.stats import clustered_wilson_interval, percentile, wilson_interval
from goldgate.errors import ResultsError
from goldgate.files import check_output_dir, read_versioned, write_atomic

__all__ = [
    "SCHEMA",
    "build_summary",
    "error_kind",
    "load_cases",
    "load_run",
    "new_run_id",
    "summarize_suite",
    "write_run",
]

SCHEMA = "goldgate.run/v1"
STATUSES = ("passed", "failed", "error", "skipped")


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def error_kind(rec: dict[str, Any]) -> str | None:
    """"transport" (no answer came back: says nothing about the model), "output" (an unusable answer:
    a mistake) or None for a case that is not an error. Records written before `error_kind` existed
    are told apart by the message every unparseable answer carries."""
    if rec.get("status") != "error":
        return None
    kind = rec.get("error_kind")
    if kind in ("transport", "output"):
        return str(kind)
    return "output" if str(rec.get("error") or "").startswith("unparseable output") else "transport"


def summarize_suite(meta: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate one suite's case records; errors stay in the denominator."""
    counted = [r for r in records if r["status"] != "skipped"]
    n = len(counted)
    passed = sum(r["status"] == "passed" for r in counted)
    failed = sum(r["status"] == "failed" for r in counted)
    errors = sum(r["status"] == "error" for r in counted)
    transport = sum(error_kind(r) == "transport" for r in counted)
    judge_notes = [v for r in counted for v in r.get("judges", [])]
    judge_cost = math.fsum(v.get("cost_usd", 0.0) for v in judge_notes)
    # fsum: exact, so the total does not depend on record order (a merge of shards equals the whole run)
    cost = math.fsum([*(r.get("cost_usd", 0.0) for r in counted), judge_cost])
    latencies = [r["latency_s"] for r in counted if r.get("latency_s") and not r.get("cached")]
    all_latencies = [r["latency_s"] for r in counted if r.get("latency_s")]
    lo, hi = _pass_rate_interval(counted)
    gates = Gates(**meta.get("gates", {}))
    suite: dict[str, Any] = {
        "name": meta["name"],
        "nodeid": meta.get("nodeid") or meta["name"],
        "dataset": meta.get("dataset"),
        "split": meta.get("split"),
        "slot": meta.get("slot"),
        "candidate": meta.get("candidate"),
        "fingerprints": meta.get("fingerprints", {}),
        "n": n,
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "skipped": len(records) - n,
        "pass_rate": passed / n if n else 0.0,
        "pass_rate_ci": [lo, hi],
        "error_rate": errors / n if n else 0.0,
        "transport_errors": transport,
        "output_errors": errors - transport,
        "cost_usd": cost,
        "judge_cost_usd": judge_cost,
        "judge_errors": sum(v.get("verdict") == "error" for v in judge_notes),
        "cost_per_case": cost / n if n else 0.0,
        "latency_p50_s": percentile(latencies or all_latencies, 50),
        "latency_p95_s": percentile(latencies or all_latencies, 95),
        "prompt_tokens": sum(r.get("prompt_tokens", 0) for r in counted),
        "completion_tokens": sum(r.get("completion_tokens", 0) for r in counted),
        "cache_hits": sum(bool(r.get("cached")) for r in counted),
        "gate": evaluate_gates(gates, n=n, passed=passed, errors=errors, cost_usd=cost),
        "gates": gates.to_dict(),
    }
    repeats = meta.get("repeats", 1)
    if repeats > 1:
        suite["repeats"] = _repeat_stats(counted, repeats)
    return suite


def _pass_rate_interval(records: list[dict[str, Any]]) -> tuple[float, float]:
    """Wilson 95%; with repeats, clustered by case (a case's repeats are not independent cases)."""
    by_case: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_case[r["case_id"]].append(r["status"] == "passed")
    if all(len(v) == 1 for v in by_case.values()):
        return wilson_interval(sum(r["status"] == "passed" for r in records), len(records))
    return clustered_wilson_interval([(sum(v), len(v)) for v in by_case.values()])


def _repeat_stats(records: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """pass@k, k-of-k and flakiness measured from the repeats, per case and overall."""
    by_case: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_case[r["case_id"]].append(r["status"] == "passed")
    per_case = {cid: sum(v) / len(v) for cid, v in by_case.items()}
    cases = len(by_case) or 1
    flaky = sorted(cid for cid, v in by_case.items() if 0 < sum(v) < len(v))
    return {
        "k": k,
        "pass_at_k": sum(any(v) for v in by_case.values()) / cases,
        "pass_all_k": sum(all(v) for v in by_case.values()) / cases,
        "flaky_cases": len(flaky),
        "flakiness": len(flaky) / cases,
        "flaky_ids": flaky[:200],
        "per_case_pass_rate": per_case,
    }


def build_summary(
    suites_meta: dict[str, dict[str, Any]],
    records: Iterable[dict[str, Any]],
    *,
    run_id: str,
    call_stats: dict[str, Any],
    wall_s: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        grouped[r["suite"]].append(r)
    suites = [summarize_suite(suites_meta[name], grouped.get(name, [])) for name in sorted(suites_meta)]
    totals = {
        "cases": sum(s["n"] for s in suites),
        "passed": sum(s["passed"] for s in suites),
        "failed": sum(s["failed"] for s in suites),
        "errors": sum(s["errors"] for s in suites),
        "cost_usd": sum(s["cost_usd"] for s in suites),
        "judge_cost_usd": sum(s["judge_cost_usd"] for s in suites),
        "judge_errors": sum(s["judge_errors"] for s in suites),
        "llm_calls": int(call_stats.get("llm_calls", 0)),
        "cache_hits": int(call_stats.get("cache_hits", 0)),
        "throttled": int(call_stats.get("throttled", 0)),
        "min_concurrency": int(call_stats.get("min_concurrency", 0)),
        "wall_s": wall_s,
    }
    from goldgate.version import __version__

    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goldgate_version": __version__,
        "status": "fail" if any(s["gate"]["status"] == "fail" for s in suites) else "pass",
        "suites": suites,
        "totals": totals,
        **(extra or {}),
    }


def write_run(out_dir: Path, summary: dict[str, Any], records: Iterable[dict[str, Any]]) -> Path:
    check_output_dir(out_dir)
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in sorted(
        records, key=lambda r: (r["suite"], r["case_id"], r.get("repeat", 0)))]
    write_atomic(out_dir / "cases.jsonl", "\n".join(lines) + ("\n" if lines else ""))
    write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return out_dir


def load_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a run's summary; ResultsError names the file when it isn't a goldgate run."""
    path = Path(run_dir) / "summary.json"
    data = read_versioned(path, schema=SCHEMA, error=ResultsError, missing=f"is {run_dir} a goldgate run directory?")
    for key in ("suites", "totals"):
        if key not in data:
            raise ResultsError(f"{path}: missing '{key}'")
    return data


def load_cases(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(run_dir) / "cases.jsonl"
    out = []
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    out.append(json.loads(line))
                except ValueError as exc:
                    raise ResultsError(f"{path}:{n}: invalid JSON: {exc}") from None
    except FileNotFoundError:
        raise ResultsError(f"{path}: not found") from None
    return out
