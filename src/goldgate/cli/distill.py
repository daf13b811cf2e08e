"""`goldgate distill` (train a student from the validation pipeline's data) and `goldgate decide`
(swap or keep, with the evidence). Both are thin: the work is in goldgate.distill and goldgate.decide.decision."""

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
    d = sub.add_parser("distill", help="train a small student model for a slot from goldens (+ LLM labels)")
    d.add_argument("--slot", required=True, help="model slot the student will serve")
    d.add_argument("--candidate", required=True, help="name of the student candidate (artifact dir name)")
    d.add_argument("--goldens", required=True, help="golden dataset name or path (e.g. banking77)")
    d.add_argument("--kind", choices=("sklearn", "lora", "causal-lora"), default="sklearn",
                   help="sklearn TF-IDF + linear SVM, LoRA sequence classification, or causal-LM LoRA")
    d.add_argument("--base", help="base model directory or Hub id (LoRA kinds)")
    d.add_argument("--out", type=Path, help="artifact directory (default: artifacts/<candidate>)")
    d.add_argument("--input-field", default="text")
    d.add_argument("--train-split", action="append", help="split(s) to train on (default: train)")
    d.add_argument("--test-split", default="test", help="split held out for the decision (leakage guard)")
    d.add_argument("--human-size", type=int, help="use a seeded sample of N human/llm-corrected records")
    d.add_argument("--pool-split", help="label this split with the teacher LLM, ignoring its labels")
    d.add_argument("--pool-size", type=int, help="seeded sample of N pool records (default: all)")
    d.add_argument("--teacher", help="candidate that labels the pool (default: the slot's `use`)")
    d.add_argument("--llm-weight", type=float, default=1.0, help="training weight of pure LLM labels")
    d.add_argument("--strict-leakage", action="store_true",
                   help="overlap with the test split is an error instead of being dropped")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--epochs", type=int, help="LoRA epochs")
    d.add_argument("--lr", type=float, help="LoRA learning rate")
    d.add_argument("--batch-size", type=int, help="LoRA batch size")
    d.add_argument("--max-length", type=int, help="LoRA max tokens per input")
    d.add_argument("--lora-r", type=int, help="LoRA rank")
    d.add_argument("--target-modules", help="comma-separated LoRA target modules (default: peft's for the model)")
    d.add_argument("--C", type=float, help="sklearn: inverse regularisation of the linear SVM")
    d.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the artifact (default: [tool.goldgate.distill])")
    d.set_defaults(func=_distill)

    c = sub.add_parser("decide", help="swap the slot's LLM for a student, or keep it: evidence and decision.json")
    c.add_argument("--slot", required=True)
    c.add_argument("--suite", help="the eval suite to judge by, when several use the slot")
    c.add_argument("--student", required=True, help="the student candidate proposed for the slot")
    c.add_argument("--llm", help="the current candidate (default: the slot's `use`)")
    c.add_argument("--llm-run", type=Path, help="run directory of the evals with the LLM (default: run them)")
    c.add_argument("--student-run", type=Path, help="run directory of the evals with the student (default: run them)")
    c.add_argument("--compare", action="append", default=[], metavar="CANDIDATE=RUN_DIR",
                   help="another evaluated candidate to show on the chart")
    c.add_argument("--out", type=Path, help="where decision.json/.md/.png go (default: .goldgate/decisions/<time>)")
    c.add_argument("--delta", type=float, help="non-inferiority margin δ (default 0.03)")
    c.add_argument("--max-cost-ratio", type=float, help="student cost must be ≤ this × LLM cost (default 0.7)")
    c.add_argument("--min-class-cases", type=int, help="classes with at least this many cases are guarded (30)")
    c.add_argument("--alpha", type=float, help="family-wise level of the per-class guard (0.05)")
    c.set_defaults(func=_decide)


def _hyper(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "sklearn":
        return {"C": args.C} if args.C is not None else {}
    names = {"epochs": "epochs", "lr": "lr", "batch_size": "batch_size", "max_length": "max_length", "lora_r": "r"}
    hyper = {key: getattr(args, flag) for flag, key in names.items() if getattr(args, flag) is not None}
    if args.target_modules:
        hyper["target_modules"] = [m.strip() for m in args.target_modules.split(",") if m.strip()]
    return hyper


def _distill(args: argparse.Namespace) -> int:
    from goldgate.config import load_config
    from goldgate.goldens.records import load_goldens, resolve_golden_path
    from goldgate.students.train import DistillSpec, distill

    cfg = load_config()
    golden = load_goldens(resolve_golden_path(args.goldens, goldens_dir=cfg.path(cfg.goldens), root=cfg.root),
                          splits=cfg.splits)
    spec = DistillSpec(
        slot=args.slot, candidate=args.candidate, kind=args.kind, out=args.out, base=args.base,
        input_field=args.input_field, train_splits=tuple(args.train_split or ("train",)), test_split=args.test_split,
        human_size=args.human_size, pool_split=args.pool_split, pool_size=args.pool_size, teacher=args.teacher,
        llm_weight=args.llm_weight, strict_leakage=args.strict_leakage, seed=args.seed, hyper=_hyper(args),
        push_to_hub=args.push_to_hub, progress=sys.stderr.isatty(),
    )
    res = distill(cfg, golden, spec)
    card, data = res.card, res.card["data"]
    print(f"training set: {data['n']} examples {data['counts']} (sha256 {data['training_sha256'][:12]}…)")
    if res.pool is not None:
        print(f"LLM-labelled pool: {len(res.pool.examples)} labelled, {len(res.pool.errors)} unusable, "
              f"${res.pool.cost_usd:.4f}")
    if res.training.excluded:
        print(f"leakage guard: dropped {len(res.training.excluded)} training record(s) whose normalised text is in "
              f"split '{spec.test_split}':")
        for o in res.training.excluded:
            print(f"  {o.train_id}  ~  {o.test_id}")
    sp = card["speed"]
    print(f"trained {card['kind']} in {card['train_s']:.1f} s; {sp['throughput_rps']:.0f} req/s, "
          f"p95 {sp['latency_p95_ms']:.2f} ms ({sp['hardware']})")
    rel = res.artifact.relative_to(cfg.root) if res.artifact.is_relative_to(cfg.root) else res.artifact
    print(f"artifact: {rel}/ (model_card.md, card.json)")
    if args.candidate not in cfg.candidates:
        from goldgate.students.train import KIND_TYPES

        print(f"\nadd to pyproject.toml to evaluate it:\n\n[tool.goldgate.candidates.{args.candidate}]\n"
              f'type = "{KIND_TYPES[args.kind]}"\nartifact = "{rel}"\n'
              f'description = "{card["kind"]} student distilled by goldgate"')
    return 0


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


def _setting(args: argparse.Namespace, cfg: Any, name: str, default: float) -> Any:
    value = getattr(args, name)
    return value if value is not None else cfg.distill.get(name, default)


def _decide(args: argparse.Namespace) -> int:
    from goldgate.config import check_distill, load_config
    from goldgate.decide.decision import decide, write_decision
    from goldgate.decide.evidence import gather

    cfg = load_config()
    check_distill({k: getattr(args, k) for k in ("delta", "max_cost_ratio", "min_class_cases", "alpha")
                   if getattr(args, k) is not None}, "--{flag}")
    current = args.llm or cfg.slot(args.slot).use
    out = args.out or cfg.path(cfg.runs).parent / "decisions" / time.strftime("%Y%m%dT%H%M%S")
    llm_run = args.llm_run or _run_evals(cfg.root, args.slot, current, out / "runs" / current)
    student_run = args.student_run or _run_evals(cfg.root, args.slot, args.student, out / "runs" / args.student)
    others = {}
    for item in args.compare:
        name, sep, run = item.partition("=")
        if not sep:
            raise GoldgateError(f"--compare {item!r}: expected CANDIDATE=RUN_DIR")
        others[name] = Path(run)
    inputs = gather(cfg, slot=args.slot, suite=args.suite, current=current, proposed=args.student, llm_run=llm_run,
                    student_run=student_run, others=others,
                    delta=float(_setting(args, cfg, "delta", 0.03)),
                    max_cost_ratio=float(_setting(args, cfg, "max_cost_ratio", 0.7)),
                    min_class_cases=int(_setting(args, cfg, "min_class_cases", 30)),
                    alpha=float(_setting(args, cfg, "alpha", 0.05)))
    dec = decide(inputs)
    path = write_decision(out, dec)
    print(_summary(dec))
    print(f"\ndecision: {path}  report: {out / dec['report']}  chart: {out / dec['chart']}")
    return 0


def _summary(dec: dict[str, Any]) -> str:
    b, c = dec["checks"]["b_noninferiority"], dec["checks"]["c_cost"]
    lines = [f"DECISION: {dec['decision'].upper()}  slot {dec['slot']}: {dec['current']} → {dec['proposed']}"
             if dec["decision"] == "swap" else
             f"DECISION: KEEP {dec['current']} for slot {dec['slot']} (not swapping to {dec['proposed']})"]
    lines.append(f"  accuracy: student {b['accuracy_student']:.4f} vs LLM {b['accuracy_llm']:.4f} "
                 f"(Δ {b['difference']:+.4f}, one-sided 95% lower bound {b['lower_95']:+.4f}, δ = {b['delta']}, "
                 f"N = {b['n']})")
    if "ratio" in c:
        be = c["break_even_volume"]
        lines.append(f"  cost/request: student ${c['student']['per_request']:.7f} vs LLM ${c['llm']['per_request']:.7f} "
                     f"({c['ratio']:.2f}×); break-even {'never' if be == float('inf') else f'{be:,.0f}'} requests, "
                     f"projected {c['projected_volume']:,.0f}")
    lines += [f"  - {r}" for r in dec["reasons"]]
    return "\n".join(lines)
