"""`goldgate plan` as functions: the label forecast for a slot, and the next batch for people to label.

Both start from the goldens (trusted labels of the training splits, the human-validated test split)
and the LLM's per-case correctness on that test split (from an eval run, or predicted through the
cached runner), so `goldgate decide` can add the same forecast to a KEEP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from goldgate.config import Config
from goldgate.decide.decision import DecisionError
from goldgate.decide.forecast import Forecast, forecast, plot_forecast, render_forecast
from goldgate.errors import GoldgateError
from goldgate.files import write_atomic
from goldgate.goldens.records import Case, GoldenSet
from goldgate.students.curve import Curve, learning_curve
from goldgate.students.dataset import (
    TRUSTED_SOURCES,
    Example,
    build_training_set,
    golden_examples,
    input_text,
)
from goldgate.students.select import Pick, eligible_pool, select_batch

__all__ = ["CHART", "LabelPlan", "batch_records", "llm_answers", "llm_correct_from_model",
           "llm_correct_from_run", "plan_forecast", "plan_selection", "write_forecast_section"]

CHART = "learning_curve.png"


@dataclass
class LabelPlan:
    forecast: Forecast
    curve: Curve
    examples: list[Example]
    test_cases: list[Case]


def trusted_examples(golden: GoldenSet, *, input_field: str, target_field: str, train_splits: Sequence[str],
                     test_split: str) -> list[Example]:
    """The human and corrected labels of the training splits, leak-free against the test split."""
    trusted = [e for e in golden_examples(golden, input_field=input_field, target_field=target_field,
                                          train_splits=train_splits) if e.source in TRUSTED_SOURCES]
    if not trusted:
        raise GoldgateError(f"{golden.path}: no human-labelled records in split(s) {', '.join(train_splits)} "
                            f"to draw a learning curve from")
    return build_training_set(golden, trusted, input_field=input_field, test_split=test_split).examples


def llm_correct_from_run(run_dir: Path, slot: str, candidate: str, suite: str | None) -> dict[str, bool]:
    """Case id → did the LLM pass, from an eval run of the slot's suite."""
    from goldgate.decide.evidence import Side

    side = Side(run_dir, slot, candidate, suite)
    return {cid: rec["status"] == "passed" for (_, cid), rec in side.records.items()}


def llm_answers(config: Config, slot: str, candidate: str, cases: Sequence[Case]) -> dict[str, str | None]:
    """Case id → the LLM's label (None when it gave no usable answer), through the cached runner."""
    from goldgate.models.load import model_for_candidate

    preds = model_for_candidate(config, slot, candidate).predict_many([c.inputs for c in cases])
    return {c.id: (p.label if p.label is not None else p.text.strip()) if p.ok else None for c, p in zip(cases, preds)}


def llm_correct_from_model(config: Config, slot: str, candidate: str, cases: Sequence[Case],
                           target_field: str) -> dict[str, bool]:
    answers = llm_answers(config, slot, candidate, cases)
    return {c.id: answers[c.id] is not None and answers[c.id] == str(c.expected.get(target_field)) for c in cases}


def plan_forecast(golden: GoldenSet, llm_correct: Mapping[str, bool], *, input_field: str, target_field: str,
                  train_splits: Sequence[str] = ("train",), test_split: str = "test", delta: float = 0.03,
                  repeats: int = 2, seed: int = 0, C: float = 0.5, boot: int = 400) -> LabelPlan:
    """Learning curve on the trusted labels, scored on the test cases the LLM was scored on, and the forecast."""
    examples = trusted_examples(golden, input_field=input_field, target_field=target_field,
                                train_splits=train_splits, test_split=test_split)
    test_cases = [c for c in golden.split(test_split) if c.id in llm_correct and target_field in c.expected]
    if len(test_cases) < 10:
        raise DecisionError(f"{golden.path}: only {len(test_cases)} test case(s) with an LLM result; a forecast "
                            f"needs the LLM scored on the '{test_split}' split")
    curve = learning_curve(examples, [input_text(c.inputs, input_field) for c in test_cases],
                           [str(c.expected[target_field]) for c in test_cases], repeats=repeats, seed=seed, C=C)
    llm = np.array([llm_correct[c.id] for c in test_cases], dtype=bool)
    fc = forecast(curve.sizes, curve.correct, llm, labels_now=len(examples), delta=delta, boot=boot, seed=seed)
    return LabelPlan(fc, curve, examples, test_cases)


def plan_selection(plan: LabelPlan, golden: GoldenSet, n: int, *, pool_splits: Sequence[str], input_field: str,
                   test_split: str = "test", diversity: float = 0.5,
                   llm_labels: Mapping[str, str] | None = None, disagreement: float = 0.0) -> list[Pick]:
    pool = eligible_pool(golden, pool_splits, input_field=input_field, test_split=test_split,
                         labelled=(e.id for e in plan.examples))
    if not pool:
        raise GoldgateError(f"{golden.path}: no unlabelled records in split(s) {', '.join(pool_splits)} to select "
                            f"from (records with an expected label, test-split texts and labelled texts are skipped)")
    return select_batch(plan.curve.model, [(c.id, input_text(c.inputs, input_field)) for c in pool], n,
                        diversity=diversity, llm_labels=llm_labels, disagreement=disagreement)


def batch_records(golden: GoldenSet, picks: Sequence[Pick], answers: Mapping[str, str | None], *,
                  target_field: str, model: str) -> list[dict[str, Any]]:
    """The picks as golden records (unlabelled), the LLM's answer kept as the suggestion to confirm."""
    out = []
    for rank, p in enumerate(picks, 1):
        rec = golden.get(p.id).to_record()
        rec["metadata"] = {**rec["metadata"], "plan": {"rank": rank, "score": round(p.score, 4),
                                                       "student": p.predicted, "runner_up": p.runner_up}}
        prov = {k: v for k, v in rec["provenance"].items() if k != "llm"}
        prov["source"] = "unlabelled"
        if answers.get(p.id) is not None:
            prov["llm"] = {target_field: {"model": model, "suggested": answers[p.id]}}
        rec["provenance"] = prov
        out.append(rec)
    return out


def write_batch(path: Path, records: Sequence[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))


def write_forecast_section(out_dir: Path, report: str, fc: dict[str, Any], headline: str) -> None:
    """The chart next to the report, and the "Annotate more" section appended to it."""
    plot_forecast(fc, out_dir / CHART)
    path = out_dir / report
    body = path.read_text(encoding="utf-8") if path.exists() else ""
    write_atomic(path, body.rstrip("\n") + "\n\n" + render_forecast(fc, headline, CHART))

