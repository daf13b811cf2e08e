"""`goldgate merge RUN_DIR… --out DIR`: shard runs combined into one run, gates applied once."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="combine the shard runs of `goldgate run --shard i/n` into one run and gate it")
    p.add_argument("run_dirs", nargs="+", type=Path, help="the shards' run directories (every shard once)")
    p.add_argument("--out", type=Path, required=True, help="directory for the merged summary.json / cases.jsonl")
    p.set_defaults(func=_merge)


def _merge(args: argparse.Namespace) -> int:
    from goldgate.engine.merge import merge_runs
    from goldgate.engine.results import write_run
    from goldgate.report.terminal import render_terminal

    def judge_gates(judges: list[str]) -> list[dict]:
        # Only runs that used judges need the project: their calibration records live in it.
        from goldgate.config import load_config
        from goldgate.judges.calibration import check_judges

        return check_judges(load_config(), judges)

    merged = merge_runs(args.run_dirs, judge_gates=judge_gates)
    write_run(args.out, merged.summary, merged.records)
    print(render_terminal(merged.summary, run_dir=args.out), end="")
    totals = merged.summary["totals"]
    case_failures = totals["failed"] + totals["errors"]
    if merged.summary["status"] != "pass" or (merged.summary["strict"] and case_failures):
        return 1
    return 0
