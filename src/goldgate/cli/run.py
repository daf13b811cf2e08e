"""`goldgate run` (pytest on the evals with the right flags) and `goldgate report DIR`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the project's evals with pytest (extra args go to pytest)")
    run.add_argument("--out", type=Path, help="run directory for summary.json / cases.jsonl")
    run.add_argument("--strict", action="store_true", help="every failed case fails the build")
    run.add_argument("--candidate", action="append", default=[], metavar="SLOT=CANDIDATE",
                     help="evaluate another candidate for a slot")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments passed to pytest (after --)")
    run.set_defaults(func=_run)

    rep = sub.add_parser("report", help="show a run's results (terminal, or markdown with --markdown)")
    rep.add_argument("run_dir", nargs="?", type=Path, help="run directory (default: the latest run)")
    rep.add_argument("--markdown", action="store_true", help="print markdown instead of the terminal table")
    rep.add_argument("--output", type=Path, help="also write the markdown report to this file")
    rep.set_defaults(func=_report)


def pytest_command(evals_dir: Path, *, out: Path | None, strict: bool, candidates: list[str], extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", str(evals_dir), "-p", "no:cacheprovider"]
    if out is not None:
        cmd += ["--goldgate-out", str(out)]
    if strict:
        cmd.append("--goldgate-strict")
    for c in candidates:
        cmd += ["--goldgate-candidate", c]
    return cmd + [a for a in extra if a != "--"]


def _run(args: argparse.Namespace) -> int:
    from goldgate.config import load_config

    cfg = load_config()
    cmd = pytest_command(cfg.path(cfg.evals), out=args.out, strict=args.strict, candidates=args.candidate,
                         extra=args.pytest_args)
    env = {**os.environ, **{k: v for k, v in OFFLINE_ENV.items() if k not in os.environ}}
    return subprocess.call(cmd, cwd=cfg.root, env=env)


def latest_run(runs_dir: Path) -> Path:
    from goldgate.errors import ResultsError

    runs = sorted((p for p in runs_dir.glob("*/summary.json")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise ResultsError(f"no runs in {runs_dir} (run `goldgate run` first)")
    return runs[-1].parent


def _report(args: argparse.Namespace) -> int:
    from goldgate.engine.results import load_run
    from goldgate.report.terminal import render_markdown, render_terminal

    run_dir = args.run_dir
    if run_dir is None:
        from goldgate.config import load_config

        cfg = load_config()
        run_dir = latest_run(cfg.path(cfg.runs))
    summary = load_run(run_dir)
    md = render_markdown(summary)
    if args.output:
        from goldgate.files import write_atomic

        write_atomic(args.output, md)
    print(md if args.markdown else render_terminal(summary, run_dir=run_dir), end="")
    return 0 if summary["status"] == "pass" else 1
