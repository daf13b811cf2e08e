"""`goldgate compare BASE_DIR HEAD_DIR`: paired head-vs-base comparison as markdown or JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two runs case by case (paired score test, Holm across suites, flips)")
    p.add_argument("base_dir", type=Path, help="the base run directory")
    p.add_argument("head_dir", type=Path, help="the head run directory")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="print markdown (the default)")
    fmt.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--output", type=Path, help="also write the printed report to this file")
    p.add_argument("--fail-on-worse", action="store_true",
                   help="exit 1 when any suite is significantly worse on head")
    p.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from goldgate.decide.compare import compare_runs, render_markdown

    cmp = compare_runs(args.base_dir, args.head_dir)
    if args.fail_on_worse and not cmp.suites and cmp.suites_removed:
        from goldgate.errors import ResultsError

        # A gate that compares nothing must not pass: these are runs of different projects or suites.
        raise ResultsError(
            f"{args.base_dir} and {args.head_dir} share no suite (base: {', '.join(cmp.suites_removed)}; "
            f"head: {', '.join(cmp.suites_added) or 'none'}); nothing to compare"
        )
    text = (json.dumps(cmp.to_json(), indent=2, ensure_ascii=False) + "\n" if args.json
            else render_markdown(cmp))
    if args.output:
        from goldgate.files import write_atomic

        write_atomic(args.output, text)
    print(text, end="")
    return 1 if args.fail_on_worse and cmp.verdict == "worse" else 0
