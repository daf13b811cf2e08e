"""`goldgate sim serve`: run the offline OpenAI-compatible simulator (not a model) on a local port."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from goldgate.errors import ConfigError

_DESCRIPTION = (
    "Serve an offline, OpenAI-compatible LLM simulator for demos, tests and benchmarks. Its answers "
    "come from your golden files with injected, deterministic mistakes and faults: a simulator, "
    "not a model, so never report its numbers as model results. Flags override [tool.goldgate.sim]."
)

# Flags that map one-to-one onto SimSettings fields (dest == field name).
_SCALARS: tuple[tuple[str, type, str], ...] = (
    ("--host", str, "interface to bind (default 127.0.0.1)"),
    ("--port", int, "port to bind; 0 picks a free one (default 8765)"),
    (
        "--label-field",
        str,
        "key of `expected` holding the answer (default: its only key, else label)",
    ),
    ("--accuracy", float, "share of answers that match the key (default 0.85)"),
    ("--seed", int, "seed for every simulated decision (default 0)"),
    ("--latency-ms", float, "added latency per answer (default 0)"),
    ("--jitter-ms", float, "extra uniform latency, 0 to this many ms (default 0)"),
    ("--rate-429", float, "share of attempts answered 429 with Retry-After (default 0)"),
    ("--rate-500", float, "share of attempts answered 500 (default 0)"),
    ("--rate-hang", float, "share of attempts that hang for --hang-s (default 0)"),
    ("--hang-s", float, "how long a hang lasts before answering (default 600)"),
    ("--retry-after-s", float, "Retry-After sent with 429s; may be fractional (default 1)"),
    ("--max-inflight", int, "answer 429 above this many concurrent requests; 0 = no limit"),
    (
        "--format-noise",
        float,
        "share of answers wrapped in chatter like 'Intent: X' (default 0.03)",
    ),
    ("--judge-agreement", float, "judge agreement with the human truth (default 0.95)"),
    ("--judge-leniency", float, "share of judge disagreements that are false passes (default 0.7)"),
    (
        "--judge-garbage-rate",
        float,
        "share of judge answers that are unparseable prose (default 0)",
    ),
    ("--batch-delay-s", float, "seconds a batch (files + batches API) runs before it completes (default 0)"),
    ("--batch-fail-rate", float, "share of a batch's requests that fail to its error file (default 0)"),
)


def _name_value(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    try:
        if sep and name:
            return name, float(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `goldgate sim serve`."""
    sim = subparsers.add_parser(
        "sim", help="offline OpenAI-compatible simulator (not a model)", description=_DESCRIPTION
    )
    commands = sim.add_subparsers(dest="sim_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve", help="serve the simulator until interrupted", description=_DESCRIPTION
    )
    for flag, kind, text in _SCALARS:
        serve.add_argument(flag, type=kind, help=text)
    serve.add_argument(
        "--key",
        action="append",
        type=Path,
        metavar="FILE",
        help="golden JSONL file the answers come from (repeatable)",
    )
    serve.add_argument(
        "--model-accuracy",
        action="append",
        type=_name_value,
        metavar="NAME=ACC",
        help="accuracy for one request model name (repeatable)",
    )
    serve.add_argument(
        "--judge-model-agreement",
        action="append",
        type=_name_value,
        metavar="NAME=RATE",
        help="judge agreement for one model name (repeatable)",
    )
    serve.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="require `Authorization: Bearer` with the key held in this env variable",
    )
    serve.add_argument(
        "--port-file",
        type=Path,
        metavar="FILE",
        help="write the bound port here once the server accepts requests",
    )
    serve.add_argument(
        "--no-config", action="store_true", help="ignore [tool.goldgate.sim] in pyproject.toml"
    )
    serve.set_defaults(func=_serve)


def _config_table(no_config: bool) -> dict[str, Any]:
    """`[tool.goldgate.sim]` with key paths made absolute against the project root, or {}."""
    if no_config:
        return {}
    from goldgate.config import find_pyproject, load_config

    path = find_pyproject()
    if path is None:
        return {}
    config = load_config(pyproject=path)
    table = dict(config.sim)
    keys = table.get("keys")
    if isinstance(keys, list):
        table["keys"] = [config.root / k if isinstance(k, str) else k for k in keys]
    return table


def _serve(args: argparse.Namespace) -> int:
    from goldgate.sim.server import serve
    from goldgate.sim.settings import SimSettings

    table = _config_table(args.no_config)
    for flag, _, _ in _SCALARS:
        dest = flag[2:].replace("-", "_")
        if getattr(args, dest) is not None:
            table[dest] = getattr(args, dest)
    if args.key:
        table["keys"] = [path.resolve() for path in args.key]
    for dest in ("model_accuracy", "judge_model_agreement"):
        if getattr(args, dest):
            base = table.get(dest)
            table[dest] = {**(base if isinstance(base, dict) else {}), **dict(getattr(args, dest))}
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env: environment variable {args.api_key_env} is not set")
        table["api_key"] = key
    serve(SimSettings.model_validate(table), port_file=args.port_file)
    return 0
