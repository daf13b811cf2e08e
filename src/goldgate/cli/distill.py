"""`goldgate distill` (train a student from the validation pipeline's data) and `goldgate decide`
(swap or keep, with the evidence). Both are thin: the work is in goldgate.students.train and goldgate.decide.

Without arguments both follow the config, as CI runs them: each slot's `students` are trained, and each
slot with students gets one decision (`<out>/<slot>/decision.json`). Flags override the config."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("distill", help="train the students the config lists per slot (or one named student)")
    d.add_argument("--slot", help="model slot the student will serve (default: every slot with `students`)")
    d.add_argument("--candidate", help="the student candidate to train (default: the slot's `students`)")
    d.add_argument("--goldens", help="golden dataset name or path (default: the candidate's `train.goldens`)")
    d.add_argument("--kind", choices=("sklearn", "encoder", "lora", "causal-lora"),
                   help="sklearn TF-IDF + linear SVM, frozen encoder + logistic regression (served by ONNX "
                        "Runtime), LoRA sequence classification, or causal-LM LoRA")
    d.add_argument("--base", help="base model: minilm (pinned PyPI package, checksum-verified), a local "
                                  "directory or a Hub id (encoder and LoRA kinds)")
    d.add_argument("--out", type=Path, help="artifact directory (default: the candidate's artifact, else "
                                            "artifacts/<candidate>)")
    d.add_argument("--input-field")
    d.add_argument("--train-split", action="append", help="split(s) to train on (default: train)")
    d.add_argument("--test-split", help="split held out for the decision (leakage guard; default: test)")
    d.add_argument("--human-size", type=int, help="use a seeded sample of N human/llm-corrected records")
    d.add_argument("--pool-split", help="label this split with the teacher LLM, ignoring its labels")
    d.add_argument("--pool-size", type=int, help="seeded sample of N pool records (default: all)")
    d.add_argument("--teacher", help="candidate that labels the pool (default: the slot's `use`)")
    d.add_argument("--batch", action="store_true",
                   help="label the pool through the provider's batch API: ~half the price, done within hours; "
                        "rerun after an interruption to resume the same batch")
    d.add_argument("--llm-weight", type=float, help="training weight of pure LLM labels (default 1)")
    d.add_argument("--strict-leakage", action="store_true", default=None,
                   help="overlap with the test split is an error instead of being dropped")
    d.add_argument("--seed", type=int)
    d.add_argument("--epochs", type=int, help="LoRA epochs (at most: early stopping)")
    d.add_argument("--lr", type=float, help="LoRA learning rate")
    d.add_argument("--batch-size", type=int, help="LoRA batch size")
    d.add_argument("--max-length", type=int, help="encoder / LoRA: max tokens per input")
    d.add_argument("--lora-r", type=int, help="LoRA rank")
    d.add_argument("--head-lr", type=float, help="LoRA: learning rate of the classification head (default: --lr)")
    d.add_argument("--val-fraction", type=float,
                   help="LoRA: seeded share of the training set held out for early stopping (default 0.1; 0: none)")
    d.add_argument("--patience", type=int, help="LoRA: epochs without validation gain before stopping (default 2)")
    d.add_argument("--target-modules", help="comma-separated LoRA target modules (default: peft's for the model)")
    d.add_argument("--C", type=float, help="sklearn / encoder / lora: inverse regularisation of the linear model (lora: its initial head)")
    d.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the artifact (default: [tool.goldgate.distill])")
    d.set_defaults(func=_distill)

    c = sub.add_parser("decide", help="swap each slot's LLM for a student, or keep it: evidence and decision.json")
    c.add_argument("--slot", help="the slot to decide (default: every slot with `students`)")
    c.add_argument("--suite", help="the eval suite to judge by, when several use the slot (default: the slot's "
                                   "`suite`)")
    c.add_argument("--student", action="append",
                   help="a student to propose; repeat for several, tried in order, the first that passes the swap "
                        "rule wins (default: the slot's `students`)")
    c.add_argument("--llm", help="the current candidate (default: the slot's `use`)")
    c.add_argument("--llm-run", type=Path, help="run directory of the evals with the LLM (default: run them)")
    c.add_argument("--student-run", type=Path, help="run directory of the evals with the student (default: run them)")
    c.add_argument("--compare", action="append", default=[], metavar="CANDIDATE=RUN_DIR",
                   help="another evaluated candidate to show on the chart")
    c.add_argument("--out", type=Path, help="where decisions go: <out>/<slot>/decision.json, or <out>/decision.json "
                                            "with --student (default: .goldgate/decisions/<time>)")
    c.add_argument("--delta", type=float, help="non-inferiority margin δ (default 0.03)")
    c.add_argument("--max-cost-ratio", type=float, help="student cost must be ≤ this × LLM cost (default 0.7)")
    c.add_argument("--min-class-cases", type=int, help="classes with at least this many cases are guarded (30)")
    c.add_argument("--alpha", type=float, help="family-wise level of the per-class guard (0.10)")
    c.add_argument("--max-error-rate", type=float,
                   help="refuse to decide above this transport-error rate per side (default: the suite's gate)")
    c.add_argument("--decision-log-dir", type=Path,
                   help="where the per-test-split decision logs live (default: <evals>/decisions, to be committed); "
                        "a scratch folder for trial decisions that must not spend the split's α")
    c.add_argument("--no-forecast", action="store_true",
                   help="on KEEP, skip the learning-curve forecast of the human labels still needed")
    c.set_defaults(func=_decide)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as `spec_for` overrides (None = not given, so the config decides)."""
    names = {"epochs": "epochs", "lr": "lr", "batch_size": "batch_size", "max_length": "max_length", "lora_r": "r",
             "C": "C", "head_lr": "head_lr", "val_fraction": "val_fraction", "patience": "patience"}
    hyper = {key: getattr(args, flag) for flag, key in names.items() if getattr(args, flag) is not None}
    if args.target_modules:
        hyper["target_modules"] = [m.strip() for m in args.target_modules.split(",") if m.strip()]
    keys = ("goldens", "kind", "base", "out", "input_field", "test_split", "human_size", "pool_split", "pool_size",
            "teacher", "llm_weight", "strict_leakage", "seed", "push_to_hub", "batch")
    return {**{k: getattr(args, k) for k in keys}, "train_splits": args.train_split, "hyper": hyper,
            "progress": sys.stderr.isatty()}


def _distill(args: argparse.Namespace) -> int:
    from goldgate.config import load_config
    from goldgate.students.train import spec_for, students_to_train

    cfg = load_config()
    pairs = students_to_train(cfg, args.slot, args.candidate)
    if args.out and len(pairs) > 1:
        raise GoldgateError(f"--out names one artifact directory, but {len(pairs)} students would be trained; "
                            f"pass --candidate")
    specs = [spec_for(cfg, slot, candidate, _overrides(args)) for slot, candidate in pairs]  # all checked first
    for i, (spec, goldens) in enumerate(specs):
        if len(specs) > 1:
            print(f"{chr(10) if i else ''}== {spec.slot}: {spec.candidate} ({spec.kind}, goldens {goldens})", flush=True)
        _distill_one(cfg, spec, goldens)
    return 0


def _distill_one(cfg: Any, spec: Any, goldens: str) -> None:
    from goldgate.goldens.records import load_goldens, resolve_golden_path
    from goldgate.students.train import LEAKAGE_FILE, distill

    golden = load_goldens(resolve_golden_path(goldens, goldens_dir=cfg.path(cfg.goldens), root=cfg.root),
                          splits=cfg.splits)
    res = distill(cfg, golden, spec)
    card, data = res.card, res.card["data"]
    print(f"training set: {data['n']} examples {data['counts']} (sha256 {data['training_sha256'][:12]}…)")
    if res.pool is not None:
        print(f"LLM-labelled pool: {len(res.pool.examples)} labelled, {len(res.pool.errors)} unusable, "
              f"${res.pool.cost_usd:.4f}" + (" at the batch price" if res.pool.batch is not None else ""))
        field = cfg.slot(spec.slot).output_field
        known = {c.id: (c.expected or {}).get(field) for c in golden}
        agree = [e.target == known[e.id] for e in res.pool.examples if known.get(e.id) is not None]
        if agree:  # the pool split carries goldens' labels: the teacher's label quality is measured, free
            print(f"  the teacher agrees with the goldens' labels on {sum(agree)}/{len(agree)} pool texts "
                  f"({sum(agree) / len(agree):.1%})")
        if res.pool.batch is not None:
            b = res.pool.batch
            print(f"batch API: {b['submitted']} submitted, {b['resumed']} resumed from an earlier run, "
                  f"{b['cache_hits']} from the cache, {b['failed']} failed; batches: {', '.join(b['batch_ids']) or '-'}")
        if res.pool.errors:
            shown = ", ".join(res.pool.errors[:10])
            print(f"unlabelled pool records ({len(res.pool.errors)}): {shown}{' …' if len(res.pool.errors) > 10 else ''}")
    rel = res.artifact.relative_to(cfg.root) if res.artifact.is_relative_to(cfg.root) else res.artifact
    excluded = res.training.excluded
    if excluded:
        print(f"leakage guard: dropped {len(excluded)} training record(s) whose normalised text is in "
              f"split '{spec.test_split}'" + (", the first five:" if len(excluded) > 5 else ":"))
        for o in excluded[:5]:
            print(f"  {o.train_id}  ~  {o.test_id}")
        print(f"  full list: {rel / LEAKAGE_FILE}")
    sp = card["speed"]
    print(f"trained {card['kind']} in {card['train_s']:.1f} s; {sp['throughput_rps']:.0f} req/s, "
          f"p95 {sp['latency_p95_ms']:.2f} ms ({sp['hardware']})")
    if card.get("val_history"):  # early stopping: where it started, which epoch was kept, what serving keeps
        v, best = card["val_history"], card["best_epoch"]
        served = card.get("val_accuracy_served")
        print(f"validation ({card['params']['val_size']} held out): accuracy {v[0]['accuracy']:.4f} before "
              f"fine-tuning, {v[best]['accuracy']:.4f} at epoch {best} of {len(v) - 1} (kept)"
              + (f", {served:.4f} as served ({str(card['params'].get('weights')).split(' (')[0]})"
                 if served is not None else ""))
    print(f"artifact: {rel}/ (model_card.md, card.json)")
    if spec.candidate not in cfg.candidates:
        from goldgate.students.train import KIND_TYPES

        print(f"\nadd to pyproject.toml to evaluate it:\n\n[tool.goldgate.candidates.{spec.candidate}]\n"
              f'type = "{KIND_TYPES[spec.kind]}"\nartifact = "{rel}"\n'
              f'description = "{card["kind"]} student distilled by goldgate"')


def _run_evals(root: Path, slot: str, candidate: str, out: Path) -> Path:
    """Run the project's evals with `candidate` in `slot`; a failing gate still leaves a usable run."""
    from goldgate.cli.run import OFFLINE_ENV

    cmd = [sys.executable, "-m", "goldgate", "run", "--candidate", f"{slot}={candidate}", "--out", str(out),
           "--", "-q", "--tb=no", "--no-header", "-p", "no:randomly"]
    print(f"running the evals with {slot}={candidate} → {out}", flush=True)
    subprocess.call(cmd, cwd=root, env={**OFFLINE_ENV, **os.environ}, stdout=subprocess.DEVNULL)
    if not (out / "summary.json").is_file():
        raise GoldgateError(f"the evals with {slot}={candidate} wrote no {out}/summary.json (run `goldgate run "
                            f"--candidate {slot}={candidate}` to see why)")
    return out


def _setting(args: argparse.Namespace, cfg: Any, name: str, default: float | None) -> Any:
    for value in (getattr(args, name), getattr(cfg.distill, name)):
        if value is not None:
            return value
    return default


def _decide(args: argparse.Namespace) -> int:
    from goldgate.config import check_distill, load_config
    from goldgate.errors import ConfigError
    from goldgate.students.train import students_to_train

    cfg = load_config()
    check_distill({k: getattr(args, k) for k in ("delta", "max_cost_ratio", "min_class_cases", "alpha", "max_error_rate")
                   if getattr(args, k) is not None}, "--{flag}")
    out = args.out or cfg.path(cfg.runs).parent / "decisions" / time.strftime("%Y%m%dT%H%M%S")
    compare = {}
    for item in args.compare:
        name, sep, run = item.partition("=")
        if not sep:
            raise GoldgateError(f"--compare {item!r}: expected CANDIDATE=RUN_DIR")
        compare[name] = Path(run)
    if args.student_run and len(args.student or []) != 1:
        raise ConfigError("--student-run is the run of one student: pass exactly one --student")
    if args.student:
        slot = args.slot or students_to_train(cfg, None, args.student[0])[0][0]
        _decide_slot(args, cfg, slot, args.student, out, compare)
        return 0
    slots: dict[str, list[str]] = {}
    for slot, student in students_to_train(cfg, args.slot, None):
        slots.setdefault(slot, []).append(student)
    if args.llm_run and len(slots) > 1:
        raise ConfigError(f"--llm-run is the run of one slot's LLM, but {len(slots)} slots have students: pass --slot")
    for slot, students in slots.items():
        _decide_slot(args, cfg, slot, students, out / slot, compare)
    return 0


def _decide_slot(args: argparse.Namespace, cfg: Any, slot: str, students: list[str], out: Path,
                 compare: dict[str, Path]) -> None:
    """Evaluate the slot's current candidate and each student once; the first student (in config order)
    that passes the swap rule is proposed, else the first one's keep decision is written."""
    from goldgate.decide.decision import decide, write_decision
    from goldgate.decide.evidence import gather
    from goldgate.decide.splitlog import SplitLog

    current = args.llm or cfg.slot(slot).use
    students = [s for s in students if s != current]
    if not students:
        print(f"slot {slot}: already uses {current}; no other student to decide on")
        return
    llm_run = args.llm_run or _run_evals(cfg.root, slot, current, out / "runs" / current)
    runs = {s: args.student_run or _run_evals(cfg.root, slot, s, out / "runs" / s) for s in students}
    decisions = []
    for student in students:
        others = {**{s: r for s, r in runs.items() if s != student}, **compare}
        inputs = gather(cfg, slot=slot, suite=args.suite or cfg.slot(slot).suite, current=current, proposed=student,
                        llm_run=llm_run, student_run=runs[student], others=others,
                        delta=float(_setting(args, cfg, "delta", 0.03)),
                        max_cost_ratio=float(_setting(args, cfg, "max_cost_ratio", 0.7)),
                        min_class_cases=int(_setting(args, cfg, "min_class_cases", 30)),
                        alpha=float(_setting(args, cfg, "alpha", 0.10)),
                        max_error_rate=_setting(args, cfg, "max_error_rate", None), log_dir=args.decision_log_dir)
        dec = decide(inputs)
        # Every decision on this test split spends α, in order: the next student is tested at the
        # level the log leaves, so k students a week cannot multiply the false-swap rate.
        if inputs.split_log_path is not None and not dec["refused"]:
            SplitLog(inputs.split_log_path).record(dec)
        decisions.append((inputs, dec))
        if dec["decision"] == "swap":
            break
    inputs, dec = next(((i, d) for i, d in decisions if d["decision"] == "swap"), decisions[0])
    if dec["decision"] == "keep" and not args.no_forecast:
        from goldgate.cli.plan import forecast_for_keep

        forecast_for_keep(cfg, dec, inputs.pairs)
    path = write_decision(out, dec)
    if "forecast" in dec:
        from goldgate.decide.plan import write_forecast_section

        write_forecast_section(out, dec["report"], dec["forecast"], dec["forecast"]["headline"])
    from goldgate.cli.run import write_report_html

    page = write_report_html(runs[dec["proposed"]], out=out / "report.html", base=llm_run, decision=path)
    print(_summary(dec))
    print(f"\ndecision: {path}  report: {out / dec['report']}  chart: {out / dec['chart']}  page: {page}", flush=True)


def _summary(dec: dict[str, Any]) -> str:
    from goldgate.decide.decision import break_even_text
    from goldgate.models.cost import COST_TABLE_EXAMPLE

    b, c = dec["checks"]["b_noninferiority"], dec["checks"]["c_cost"]
    lines = [f"DECISION: {dec['decision'].upper()}  slot {dec['slot']}: {dec['current']} → {dec['proposed']}"
             if dec["decision"] == "swap" else
             f"DECISION: KEEP {dec['current']} for slot {dec['slot']} (not swapping to {dec['proposed']})"]
    lines.append(f"  accuracy: student {b['accuracy_student']:.4f} vs LLM {b['accuracy_llm']:.4f} "
                 f"(Δ {b['difference']:+.4f}, one-sided lower bound {b['lower_bound']:+.4f} at α = {b['alpha']:.4f}, "
                 f"decision {b['decision_number']} on this test split, δ = {b['delta']}, "
                 f"N = {b['n']})")
    e = dec["checks"]["errors"]
    lines.append("  transport / output errors: " + ", ".join(
        f"{side} {e[key]['transport']} / {e[key]['output']} of {e[key]['n']}" for side, key in
        (("LLM", "llm"), ("student", "student"))) + f" ({e['excluded_cases']} case(s) left out of the pairing)")
    if "ratio" in c:
        lines.append(f"  cost/request: student ${c['student']['per_request']:.7f} vs LLM ${c['llm']['per_request']:.7f} "
                     f"({c['ratio']:.2f}×); break-even {break_even_text(c['break_even_volume'])}, "
                     f"projected {c['projected_volume']:,.0f} requests")
    lines += [f"  - {r}" for r in dec["reasons"]]
    if "ratio" not in c:
        lines += ["", ("the cost check (c) needs your traffic and hardware assumptions; paste this into "
                  "pyproject.toml and adjust it:"), "", COST_TABLE_EXAMPLE.rstrip()]
    return "\n".join(lines)
