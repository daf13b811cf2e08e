"""`goldgate judge`: calibrate a judge against human verdicts, read its gate, re-judge a saved run,
and send the judge's disagreements with humans to Argilla for review."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from goldgate.errors import ConfigError, GoldgateError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge", help="LLM judges: calibrate, check the calibration gate, rerun, review"
    )
    cmds = p.add_subparsers(dest="judge_command", metavar="COMMAND", required=True)

    cal = cmds.add_parser(
        "calibrate", help="run a judge on its calibration set and write its record"
    )
    cal.add_argument("name", help="judge name in [tool.goldgate.judges]")
    cal.add_argument(
        "--rebaseline",
        action="store_true",
        help="accept this calibration as the new baseline (no Δκ comparison)",
    )
    cal.add_argument(
        "--fresh",
        action="store_true",
        help="ask the judge model again instead of reading cached verdicts (catches a provider "
        "changing the model behind its name); the new answers replace the cached ones",
    )
    cal.add_argument("--no-progress", action="store_true", help="no progress bar")
    cal.set_defaults(func=_calibrate)

    chk = cmds.add_parser(
        "check", help="the calibration gate from the stored records (no model calls)"
    )
    chk.add_argument("names", nargs="*", help="judges to check (default: all configured)")
    chk.add_argument("--json", action="store_true", help="print the gate results as JSON")
    chk.set_defaults(func=_check)

    rer = cmds.add_parser(
        "rerun", help="re-judge a run's saved outputs (judge calls only, no app calls)"
    )
    rer.add_argument("run_dir", type=Path, help="run directory with cases.jsonl")
    rer.add_argument(
        "--judge",
        action="append",
        default=[],
        metavar="NAME",
        help="only these judges (default: every judge the run used)",
    )
    rer.add_argument(
        "--out", type=Path, help="where to write the re-judged run (default: RUN_DIR-rejudged)"
    )
    rer.set_defaults(func=_rerun)

    push = cmds.add_parser(
        "push-disagreements", help="send calibration items where judge and human differ to Argilla"
    )
    push.add_argument("name", help="judge name")
    push.add_argument(
        "--dataset", help="Argilla dataset name (default: goldgate-<name>-disagreements)"
    )
    push.add_argument("--workspace", help="Argilla workspace (default: [tool.goldgate.argilla])")
    push.add_argument(
        "--dry-run", action="store_true", help="print what would be sent, send nothing"
    )
    push.set_defaults(func=_push)


def _print_gate(g: dict[str, Any]) -> None:
    status = g["status"].upper()
    mark = "" if g["calibrated"] else " (uncalibrated)"
    print(f"calibration gate {status}{mark}")
    for reason in g["reasons"]:
        print(f"  {reason}")


def _calibrate(args: argparse.Namespace) -> int:
    from goldgate.config import load_config
    from goldgate.judges.calibration import calibrate, check_judges

    cfg = load_config()
    record, path = calibrate(
        cfg, args.name, rebaseline=args.rebaseline, progress=not args.no_progress, fresh=args.fresh
    )
    r = record
    lo, hi = r["kappa_ci"]
    print(f"judge '{args.name}' on {r['n']} human-verdicted items ({r['calibration_set']['path']})")
    print(
        f"  κ = {r['kappa']:.3f} [95% CI {lo:.3f}, {hi:.3f}] · agreement {r['agreement']:.1%} "
        f"· fail recall {r['fail_recall'] or 0:.3f}"
    )
    print(
        f"  pass rate: judge {r['pass_rate_judge']:.1%} vs human {r['pass_rate_human']:.1%} "
        f"(gap {100 * r['pass_rate_gap']:+.1f} pts) · minority class {r['minority']} "
        f"· judge errors {r['judge_errors']}"
    )
    print(
        "  confusion (rows human, columns judge pass/fail/error): "
        + "; ".join(
            f"{h}: {row['judge_pass']}/{row['judge_fail']}/{row['judge_error']}"
            for h, row in r["confusion"].items()
        )
    )
    base = record["baseline"]
    if base:
        dlo, dhi = base["delta_kappa_ci"]
        print(
            f"  vs baseline {base['fingerprint']['id'][:19]} (κ {base['kappa']:.3f}): "
            f"Δκ {base['delta_kappa']:+.3f} [95% CI {dlo:+.3f}, {dhi:+.3f}] "
            f"on {base['paired_n']} paired items"
        )
    print(f"  record: {_rel(path, cfg.root)}")
    gate = check_judges(cfg, [args.name])[0]
    _print_gate(gate)
    return 0 if gate["status"] == "pass" else 1


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _check(args: argparse.Namespace) -> int:
    from goldgate.config import load_config
    from goldgate.judges.calibration import check_judges

    cfg = load_config()
    names = args.names or sorted(cfg.judges)
    if not names:
        raise ConfigError(f"{cfg.pyproject}: no judges in [tool.goldgate.judges]")
    gates = check_judges(cfg, names)
    if args.json:
        print(json.dumps(gates, indent=2, ensure_ascii=False))
    else:
        for g in gates:
            print(f"judge '{g['judge']}': ", end="")
            _print_gate(g)
    return 0 if all(g["status"] == "pass" for g in gates) else 1


def _rerun(args: argparse.Namespace) -> int:
    from goldgate.config import load_config
    from goldgate.engine.results import load_cases, load_run, write_run
    from goldgate.judges.calibration import check_judges
    from goldgate.judges.judge import Judge, JudgeItem

    cfg = load_config()
    summary = load_run(args.run_dir)
    cases = load_cases(args.run_dir)
    notes = [
        (c, n)
        for c in cases
        for n in c.get("judges", [])
        if not args.judge or n["judge"] in args.judge
    ]
    if not notes:
        raise GoldgateError(f"{args.run_dir / 'cases.jsonl'}: no judge verdicts to re-judge")
    names = sorted({n["judge"] for _, n in notes})
    judges = {name: Judge(name, cfg) for name in names}
    flips: dict[str, list[str]] = {name: [] for name in names}
    for name, j in judges.items():
        mine = [(c, n) for c, n in notes if n["judge"] == name]
        items = [JudgeItem(n["input"], n["output"], n.get("reference")) for _, n in mine]
        for (case, note), item, v in zip(mine, items, j.check_many(items)):
            if v.verdict != note["verdict"]:
                flips[name].append(
                    f"{case['suite']}::{case['case_id']} {note['verdict']} → {v.verdict}"
                )
            note.update(v.annotation(item))
    out = args.out or args.run_dir.with_name(args.run_dir.name + "-rejudged")
    gates = check_judges(cfg, names)
    summary = {**summary, "judge_gates": gates, "rejudged_from": str(args.run_dir)}
    if any(g["status"] != "pass" for g in gates):
        summary["status"] = "fail"
    write_run(out, summary, cases)
    for name in names:
        verdicts = [n["verdict"] for _, n in notes if n["judge"] == name]
        counts = ", ".join(f"{verdicts.count(k)} {k}" for k in ("pass", "fail", "error"))
        print(f"judge '{name}': {len(verdicts)} verdicts ({counts}); {len(flips[name])} changed")
        for line in flips[name][:20]:
            print(f"  {line}")
    for g in gates:
        print(f"judge '{g['judge']}': ", end="")
        _print_gate(g)
    print(f"results: {out}")
    return 0 if all(g["status"] == "pass" for g in gates) else 1


def _push(args: argparse.Namespace) -> int:
    from goldgate.config import load_config
    from goldgate.judges.calibration import load_calibration_set
    from goldgate.judges.record import read_record, record_path

    cfg = load_config()
    record = read_record(record_path(cfg, args.name))
    if record is None:
        raise GoldgateError(
            f"judge '{args.name}' has no calibration record "
            f"(run `goldgate judge calibrate {args.name}`)"
        )
    _, _, items = load_calibration_set(cfg, args.name)
    by_id = {it.id: it for it in items}
    differ = [it for it in record["items"] if it["judge"] != it["human"] and it["id"] in by_id]
    name = args.dataset or f"goldgate-{args.name}-disagreements"
    if args.dry_run:
        for it in differ:
            print(
                json.dumps(
                    {
                        "id": it["id"],
                        "human": it["human"],
                        "judge": it["judge"],
                        "rationale": it["rationale"],
                    },
                    ensure_ascii=False,
                )
            )
        print(f"{len(differ)} disagreements would go to Argilla dataset '{name}'")
        return 0
    from goldgate.argilla.settings import ArgillaSettings, resolve_target

    target = resolve_target(ArgillaSettings.from_config(cfg), cfg)
    rubric = cfg.path(record["fingerprint"]["rubric"]).read_text(encoding="utf-8")
    workspace = args.workspace or target.workspace
    from goldgate.argilla.disagreements import push_disagreements

    push_disagreements(target.url, target.api_key, name, workspace, rubric, record, differ, by_id)
    print(f"{len(differ)} disagreements sent to Argilla dataset '{name}' at {target.url}")
    return 0
