"""`goldgate plan`: how many more human labels the student needs to clear the swap rule, and (with
`--select N`) which records people should label next, optionally pushed to Argilla with the LLM's
answers pre-filled. `goldgate decide` adds the same forecast to a KEEP. The work is in goldgate.decide.plan."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="forecast the human labels the student needs; pick the next records to label")
    p.add_argument("--slot", required=True, help="model slot (its `use` is the LLM to beat)")
    p.add_argument("--goldens", required=True, help="golden dataset name or path")
    p.add_argument("--llm", help="the LLM candidate (default: the slot's `use`)")
    p.add_argument("--llm-run", type=Path, help="eval run of the LLM on the test split (default: predict, cached)")
    p.add_argument("--suite", help="the suite to read from --llm-run, when several use the slot")
    p.add_argument("--input-field", default="text")
    p.add_argument("--train-split", action="append", help="split(s) holding the human labels (default: train)")
    p.add_argument("--test-split", default="test")
    p.add_argument("--delta", type=float, help="non-inferiority margin δ of the swap rule (default 0.03)")
    p.add_argument("--repeats", type=int, default=2, help="seeded shuffles per subset size (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--select", type=int, metavar="N", help="pick the N unlabelled records to label next")
    p.add_argument("--pool-split", action="append", help="split(s) of unlabelled records (default: pool)")
    p.add_argument("--diversity", type=float, default=0.5, help="weight of the diversity term (default 0.5)")
    p.add_argument("--disagreement", type=float, default=0.0,
                   help="bonus for records where the LLM disagrees with the student (labels a shortlist of 4N)")
    p.add_argument("--push", action="store_true", help="send the batch to Argilla, the LLM's answers as suggestions")
    p.add_argument("--dataset", help="Argilla dataset (default: the golden's)")
    p.add_argument("--out", type=Path, help="where plan.json/.md, the chart and the batch go "
                                            "(default: .goldgate/plans/<time>)")
    p.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    from goldgate.config import load_config
    from goldgate.decide.plan import (
        CHART,
        batch_records,
        llm_answers,
        llm_correct_from_model,
        llm_correct_from_run,
        plan_forecast,
        plan_selection,
        write_batch,
        write_forecast_section,
    )
    from goldgate.files import write_atomic
    from goldgate.goldens.records import load_goldens, resolve_golden_path

    if args.select is not None and args.select <= 0:
        raise GoldgateError(f"--select {args.select}: expected a positive number of records")
    if args.push and not args.select:
        raise GoldgateError("--push sends the selected batch: give --select N too")
    cfg = load_config()
    slot = cfg.slot(args.slot)
    llm = args.llm or slot.use
    golden = load_goldens(resolve_golden_path(args.goldens, goldens_dir=cfg.path(cfg.goldens), root=cfg.root),
                          splits=cfg.splits)
    target = slot.output_field
    if args.llm_run:
        correct = llm_correct_from_run(args.llm_run, args.slot, llm, args.suite)
    else:
        tests = [c for c in golden.split(args.test_split) if target in c.expected]
        print(f"scoring {llm} on {len(tests)} '{args.test_split}' cases (cached calls cost nothing)", flush=True)
        correct = llm_correct_from_model(cfg, args.slot, llm, tests, target)
    delta = args.delta if args.delta is not None else (cfg.distill.delta if cfg.distill.delta is not None else 0.03)
    plan = plan_forecast(golden, correct, input_field=args.input_field, target_field=target,
                         train_splits=tuple(args.train_split or ("train",)), test_split=args.test_split,
                         delta=delta, repeats=args.repeats, seed=args.seed)
    fc = plan.forecast
    out = args.out or cfg.path(cfg.runs).parent / "plans" / time.strftime("%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"schema": "goldgate.plan/v1", "slot": args.slot, "llm": llm,
                           "goldens": str(golden.path), "forecast": fc.to_dict(), "chart": CHART}
    batch_line = None
    if args.select:
        pool_splits = tuple(args.pool_split or ("pool",))
        shortlist = None
        if args.disagreement > 0:
            pre = plan_selection(plan, golden, args.select * 4, pool_splits=pool_splits,
                                 input_field=args.input_field, test_split=args.test_split, diversity=0.0)
            shortlist = {k: v for k, v in llm_answers(cfg, args.slot, llm, [golden.get(p.id) for p in pre]).items()
                         if v is not None}
        picks = plan_selection(plan, golden, args.select, pool_splits=pool_splits, input_field=args.input_field,
                               test_split=args.test_split, diversity=args.diversity, llm_labels=shortlist,
                               disagreement=args.disagreement)
        answers = llm_answers(cfg, args.slot, llm, [golden.get(p.id) for p in picks])
        model_id = cfg.candidate(llm).model or llm
        records = batch_records(golden, picks, answers, target_field=target, model=model_id)
        batch = out / f"next-{len(records)}.jsonl"
        write_batch(batch, records)
        doc["batch"] = {"path": str(batch), "n": len(records), "pool_splits": list(pool_splits),
                        "ids": [p.id for p in picks]}
        batch_line = f"the next {len(records)} to label are in {batch}"
        if args.push:
            dataset = _push(cfg, args, golden.path, records, target)
            doc["batch"]["argilla_dataset"] = dataset
            batch_line = f"the next {len(records)} to label are in Argilla dataset {dataset}"
    doc["headline"] = fc.headline(batch_line)
    write_atomic(out / "plan.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    write_atomic(out / "plan.md", f"# goldgate plan: {args.slot}\n")
    write_forecast_section(out, "plan.md", doc["forecast"], doc["headline"])
    _print(doc)
    print(f"\nplan: {out / 'plan.json'}  report: {out / 'plan.md'}  chart: {out / CHART}")
    return 0


def _push(cfg: Any, args: argparse.Namespace, golden_path: Path, records: list[dict[str, Any]], target: str) -> str:
    from goldgate.argilla.settings import ArgillaSettings
    from goldgate.argilla.sync import SyncSession

    session = SyncSession.open(ArgillaSettings.from_config(cfg), cfg, golden=str(golden_path), dataset=args.dataset)
    outputs = {}
    for r in records:
        suggested = r["provenance"].get("llm", {}).get(target)
        if suggested:
            outputs[r["id"]] = {target: suggested["suggested"], "label": suggested["suggested"],
                                "text": suggested["suggested"], "agent": suggested["model"], "score": None}
    result = session.push_selected(outputs, [r["id"] for r in records], slot=args.slot)
    print(result.render())
    return session.dataset_name


def _print(doc: dict[str, Any]) -> None:
    fc = doc["forecast"]
    print(doc["headline"])
    print("  learning curve: " + ", ".join(f"{p['n']:,} → {p['accuracy']:.3f}" for p in fc["points"]))
    fit = fc["fit"]
    target = "—" if fc["target_accuracy"] is None else f"{fc['target_accuracy']:.3f}"
    print(f"  fit a − b·n^(−c): a = {fit['a']:.3f}, b = {fit['b']:.3f}, c = {fit['c']:.2f}; LLM "
          f"{fc['accuracy_llm']:.3f}, rule (b) needs {target}")


def forecast_for_keep(cfg: Any, dec: dict[str, Any], pairs: list[Any], *, seed: int = 0) -> None:
    """On KEEP, `goldgate decide` forecasts from the student's own goldens and the paired LLM results."""
    from goldgate.decide.plan import plan_forecast
    from goldgate.goldens.records import load_goldens
    from goldgate.models.card import read_card

    card = read_card(cfg.path(cfg.candidate(dec["proposed"]).artifact or ""))
    data = card["data"]
    golden = load_goldens(cfg.path(data["goldens"]), splits=cfg.splits)
    try:
        plan = plan_forecast(golden, {p.case_id: p.llm_ok for p in pairs},
                             input_field=card.get("input_field", "text"),
                             target_field=cfg.slot(dec["slot"]).output_field,
                             train_splits=tuple(data.get("train_splits") or ("train",)),
                             test_split=data.get("test_split", "test"),
                             delta=dec["checks"]["b_noninferiority"]["delta"], seed=seed,
                             C=float(card.get("params", {}).get("C", 0.5)))
    except GoldgateError as exc:  # the decision stands without a forecast; say why there is none
        dec["forecast_unavailable"] = str(exc)
        print(f"goldgate: no label forecast: {exc}", file=sys.stderr)
        return
    headline = plan.forecast.headline(f"pick the next batch with `goldgate plan --slot {dec['slot']} --goldens "
                                      f"{golden.path.stem} --select 500 --push`")
    dec["forecast"] = {**plan.forecast.to_dict(), "headline": headline, "chart": "learning_curve.png"}
    dec["reasons"] = [*dec["reasons"], headline]
