"""The `goldgate` command: one entry point, one sub-module per command group.

Each group module exposes `register(subparsers)`, which adds its parser and sets `func` to a
callable taking the parsed namespace and returning an exit code. Group modules stay light; heavy
imports happen inside the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from goldgate.errors import GoldgateError

# Optional dependencies by top-level module → the extra that installs them (pyproject.toml).
_EXTRAS = {"argilla": "argilla", "requests": "argilla", "github": "github", "torch": "distill",
           "transformers": "distill", "peft": "distill", "tokenizers": "distill"}

_GROUPS = (
    "goldgate.cli.argilla",
    "goldgate.cli.compare",
    "goldgate.cli.goldens",
    "goldgate.cli.github",
    "goldgate.cli.run",
    "goldgate.cli.merge",
    "goldgate.cli.judge",
    "goldgate.cli.demo",
    "goldgate.cli.distill",
    "goldgate.cli.llm",
    "goldgate.cli.plan",
    "goldgate.cli.sim",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="goldgate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _GROUPS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # `goldgate run -x -q` passes pytest's own options through, as `pytest -x -q` takes them.
        if not hasattr(args, "pytest_args"):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.pytest_args = unknown
    try:
        return int(args.func(args) or 0)
    except GoldgateError as exc:
        print(f"goldgate: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"goldgate: error: `goldgate {args.command}` needs the optional package {exc.name!r}: "
              f"pip install 'goldgate[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("goldgate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
