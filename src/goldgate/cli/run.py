"""`goldgate run` (pytest on the evals with the right flags) and `goldgate report DIR`."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the project's evals with pytest (other options go to pytest)",
                         usage="goldgate run [--out DIR] [--strict] [--candidate SLOT=CANDIDATE] [--shard I/N] [PYTEST ARGS ...]",
                         allow_abbrev=False)
    run.add_argument("--out", type=Path, help="run directory for summary.json / cases.jsonl")
    run.add_argument("--strict", action="store_true", help="every failed case fails the build")
    run.add_argument("--candidate", action="append", default=[], metavar="SLOT=CANDIDATE",
                     help="evaluate another candidate for a slot")
    run.add_argument("--shard", metavar="I/N", help="run shard I of N of every suite (combine with `goldgate merge`)")
    run.set_defaults(pytest_args=[])  # every option goldgate does not know goes to pytest, in order
    run.set_defaults(func=_run)

    rep = sub.add_parser("report", help="show a run's results (terminal, or markdown with --markdown)")
    rep.add_argument("run_dir", nargs="?", type=Path, help="run directory (default: the latest run)")
    rep.add_argument("--markdown", action="store_true", help="print markdown instead of the terminal table")
    rep.add_argument("--output", type=Path, help="also write the markdown report (or with --html, the page) here")
    rep.add_argument("--html", action="store_true",
                     help="write the self-contained HTML report (default: report.html in the run directory)")
    rep.add_argument("--compare", type=Path, metavar="BASE_RUN", help="with --html: base run to compare against")
    rep.add_argument("--decision", type=Path, metavar="DECISION_JSON", help="with --html: a `goldgate decide` result")
    rep.set_defaults(func=_report)


def pytest_command(evals_dir: Path, *, out: Path | None, strict: bool, candidates: list[str], extra: list[str],
                   shard: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", str(evals_dir), "-p", "no:cacheprovider"]
    if out is not None:
        cmd += ["--goldgate-out", str(out)]
    if strict:
        cmd.append("--goldgate-strict")
    for c in candidates:
        cmd += ["--goldgate-candidate", c]
    if shard:
        cmd += ["--goldgate-shard", shard]
    return cmd + [a for a in extra if a != "--"]


def _run(args: argparse.Namespace) -> int:
    from goldgate.config import load_config

    cfg = load_config()
    if args.shard:
        from goldgate.engine.shards import parse_shard

        parse_shard(args.shard)  # one line now, not a pytest usage error later
    cmd = pytest_command(cfg.path(cfg.evals), out=args.out, strict=args.strict, candidates=args.candidate,
                         extra=args.pytest_args, shard=args.shard)
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
    if args.html:
        path = write_report_html(run_dir, out=args.output, base=args.compare, decision=args.decision)
        print(f"report: {path}")
        return 0 if summary["status"] == "pass" else 1
    md = render_markdown(summary)
    if args.output:
        from goldgate.files import write_atomic

        write_atomic(args.output, md)
    width = shutil.get_terminal_size((120, 24)).columns
    print(md if args.markdown else render_terminal(summary, run_dir=run_dir, width=width), end="")
    return 0 if summary["status"] == "pass" else 1


def write_report_html(run_dir: Path, *, out: Path | None = None, base: Path | None = None,
                      decision: Path | None = None) -> Path:
    """report.html for a run, with the goldens' inputs when the project's config can be read."""
    from goldgate.errors import ConfigError
    from goldgate.report.html import case_inputs, write_html

    cmp = dec = None
    if base is not None:
        from goldgate.decide.compare import compare_runs

        cmp = compare_runs(base, run_dir)
    if decision is not None:
        from goldgate.errors import ResultsError
        from goldgate.files import read_versioned

        dec = read_versioned(decision, schema="goldgate.decision/v1", error=ResultsError,
                             missing="run `goldgate decide` first")
    try:
        from goldgate.config import load_config
        from goldgate.engine.results import load_run

        cfg = load_config()
        root = cfg.root
        inputs = case_inputs(load_run(run_dir), goldens_dir=cfg.path(cfg.goldens), root=root)
    except ConfigError:
        root, inputs = Path.cwd(), {}
    return write_html(run_dir, out, inputs=inputs, root=root, compare=cmp, decision=dec)
