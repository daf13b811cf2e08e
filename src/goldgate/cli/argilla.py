"""`goldgate argilla up | down | status | push | pull | push-candidates`: human validation in Argilla.

`up` / `down` run the local stack (no Docker); `status` without a golden reports that stack, with a
golden it reports the sync state (local-only, remote-only, conflicts). Argilla's SDK is imported
only by the sync commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from goldgate.argilla.settings import ArgillaSettings
    from goldgate.argilla.stack import ArgillaStack
    from goldgate.config import Config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("argilla", help="run a local Argilla and sync goldens with it")
    gs = p.add_subparsers(dest="argilla_command", metavar="ACTION", required=True)

    up = gs.add_parser("up", help="start the local Argilla stack (server, osmem, redis)")
    _stack_options(up)
    up.add_argument("--workers", type=int, help="argilla-server processes (default: one per core, at most 4)")
    up.set_defaults(func=_up)
    down = gs.add_parser("down", help="stop the local Argilla stack started by `up`")
    _stack_options(down)
    down.set_defaults(func=_down)

    st = gs.add_parser("status", help="the local stack's state, or a golden's sync state when one is named")
    st.add_argument("golden", nargs="?", help="golden name or path (omit for the local stack)")
    _stack_options(st)
    st.set_defaults(func=_status)

    push = gs.add_parser("push", help="create or update the Argilla dataset from a golden set")
    push.add_argument("golden", help="golden name or path")
    push.add_argument("--suggestions", type=Path, metavar="RUN_DIR",
                      help="attach the outputs of this run as suggestions (agent = model id)")
    push.add_argument("--hide-suggestions", action="append", default=[], metavar="SPLIT",
                      help="send no suggestions for records of this split (e.g. test); repeatable")
    push.add_argument("--slot", help="model slot whose label set defines the label question")
    _sync_options(push)
    push.set_defaults(func=_push)

    pull = gs.add_parser("pull", help="bring submitted Argilla responses back into the golden JSONL")
    pull.add_argument("golden", help="golden name or path")
    pull.add_argument("--rule", choices=["majority", "unanimous"],
                      help="how several annotators' answers combine (default: config or majority)")
    pull.add_argument("--min-submitted", type=int, help="annotators needed before a record is taken")
    pull.add_argument("--full", action="store_true", help="re-read every record, not only those updated")
    _sync_options(pull)
    pull.set_defaults(func=_pull)

    cand = gs.add_parser("push-candidates", help="send a run's LLM outputs for unlabelled pool records as suggestions")
    cand.add_argument("golden", help="golden name or path")
    cand.add_argument("run_dir", type=Path, help="run directory (.goldgate/runs/<id>)")
    cand.add_argument("--split", default="pool", help="split of the unlabelled records (default: pool)")
    cand.add_argument("--slot", help="model slot whose label set defines the label question")
    _sync_options(cand)
    cand.set_defaults(func=_push_candidates)


def _stack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, help="stack folder (default: [tool.goldgate.argilla] state_dir "
                                                  "or .goldgate/argilla)")
    p.add_argument("--port", type=int, default=6900, help="Argilla port (default 6900)")
    p.add_argument("--search-port", type=int, default=9200, help="osmem port (default 9200)")
    p.add_argument("--redis-port", type=int, default=6379, help="redis port (default 6379)")


def _sync_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="Argilla dataset name (default: the golden's name)")
    p.add_argument("--prefer", choices=["local", "remote"], help="resolve records changed on both sides")
    p.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)


def _config() -> Config | None:
    from goldgate.config import find_pyproject, load_config

    return load_config() if find_pyproject() else None


def _settings(cfg: Config | None) -> ArgillaSettings:
    from goldgate.argilla.settings import ArgillaSettings

    return ArgillaSettings.from_config(cfg)


def _stack(args: argparse.Namespace, cfg: Config | None) -> ArgillaStack:
    from goldgate.argilla.stack import ArgillaStack, StackSettings

    state_dir = args.state_dir or _settings(cfg).state_path(cfg)
    workers = {"workers": args.workers} if getattr(args, "workers", None) else {}
    return ArgillaStack(
        StackSettings(state_dir=state_dir.resolve(), port=args.port, search_port=args.search_port,
                      redis_port=args.redis_port, **workers),
        say=lambda msg: print(f"goldgate: {msg}", file=sys.stderr),
    )


def _up(args: argparse.Namespace) -> int:
    stack = _stack(args, _config())
    creds = stack.up()
    print(f"Argilla is up at {stack.settings.url}")
    print(f"  username: {creds.username}")
    print(f"  password: {creds.password}")
    print(f"  (API key stored in {stack.credentials_file}; stop with `goldgate argilla down`)")
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = _stack(args, _config())
    stopped = stack.down()
    print(f"stopped {', '.join(stopped)}" if stopped else "no local Argilla stack was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    cfg = _config()
    if args.golden:
        return _sync_status(args, cfg)
    st = _stack(args, cfg).status()
    if not st.processes:
        print("local Argilla stack: not running")
        return 1
    procs = ", ".join(f"{p.name} {p.pid} ({'up' if p.alive else 'dead'})" for p in st.processes)
    state = "running" if st.running else "degraded (run `goldgate argilla up` to restart it)"
    print(f"local Argilla stack: {state} at {st.url}; {procs}")
    return 0 if st.running else 1


def _session(args: argparse.Namespace, cfg: Config | None):
    from goldgate.argilla.sync import SyncSession

    return SyncSession.open(_settings(cfg), cfg, golden=args.golden, dataset=args.dataset,
                            state_dir=args.state_dir)


def _sync_status(args: argparse.Namespace, cfg: Config | None) -> int:
    from goldgate.argilla.sync import SyncSession

    report = SyncSession.open(_settings(cfg), cfg, golden=args.golden, dataset=None,
                              state_dir=args.state_dir).status()
    print(report.render())
    return 1 if report.conflicts else 0


def _push(args: argparse.Namespace) -> int:
    cfg = _config()
    result = _session(args, cfg).push(suggestions=args.suggestions, hide_suggestions=args.hide_suggestions,
                                      slot=args.slot, prefer=args.prefer)
    print(result.render())
    return 1 if result.conflicts else 0


def _pull(args: argparse.Namespace) -> int:
    cfg = _config()
    result = _session(args, cfg).pull(rule=args.rule, min_submitted=args.min_submitted, prefer=args.prefer,
                                      full=args.full)
    print(result.render())
    return 1 if result.conflicts else 0


def _push_candidates(args: argparse.Namespace) -> int:
    cfg = _config()
    result = _session(args, cfg).push_candidates(args.run_dir, split=args.split, slot=args.slot)
    print(result.render())
    return 0
