"""Gather what `goldgate decide` judges, from files only: two run directories (same evals, two
candidates), the student's card, the goldens the runs used, and `[tool.goldgate.cost]`."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from goldgate.config import Config
from goldgate.decide.decision import (
    CandidatePoint,
    DecisionError,
    DecisionInputs,
    ErrorCounts,
    Pair,
)
from goldgate.decide.splitlog import SplitLog, comparison_key
from goldgate.engine.results import error_kind, load_cases, load_run
from goldgate.engine.stats import percentile
from goldgate.goldens.records import load_goldens
from goldgate.models.card import read_card, read_train_hashes
from goldgate.models.cost import cost_settings, llm_cost, student_cost_from_card
from goldgate.students.dataset import (
    TRUSTED_SOURCES,
    LeakageError,
    describe_overlaps,
    find_overlaps,
)

__all__ = ["Side", "gather"]


class Side:
    """One candidate's run, reduced to the slot's suites."""

    def __init__(self, run_dir: Path, slot: str, candidate: str, suite: str | None = None):
        self.run_dir = run_dir
        self.summary = load_run(run_dir)
        suites = [s for s in self.summary["suites"] if s.get("slot") == slot and suite in (None, s["name"])]
        if not suites:
            what = f"suite '{suite}' with" if suite else "suite uses"
            raise DecisionError(f"{run_dir}/summary.json: no {what} slot '{slot}'")
        if len(suites) > 1:
            names = ", ".join(s["name"] for s in suites)
            raise DecisionError(f"{run_dir}: several suites use slot '{slot}' ({names}); pick the one whose pass "
                                f"means a correct answer with --suite")
        wrong = [s for s in suites if s.get("candidate") != candidate]
        if wrong:
            raise DecisionError(f"{run_dir}: suite '{wrong[0]['name']}' evaluated candidate "
                                f"'{wrong[0].get('candidate')}', not '{candidate}'")
        self.suites = {s["name"]: s for s in suites}
        self.records = {(r["suite"], r["case_id"]): r for r in load_cases(run_dir)
                        if r["suite"] in self.suites and r.get("repeat", 0) == 0 and r["status"] != "skipped"}

    def failed_in_transport(self) -> set[tuple[str, str]]:
        """Cases with no answer at all: they leave the pairing instead of counting as wrong."""
        return {key for key, r in self.records.items() if error_kind(r) == "transport"}

    def errors(self) -> ErrorCounts:
        kinds = [error_kind(r) for r in self.records.values()]
        return ErrorCounts(len(kinds), kinds.count("transport"), kinds.count("output"))

    def scored(self) -> int:
        return len(self.records) - len(self.failed_in_transport())

    def latency_p95_ms(self) -> float:
        fresh = [r["latency_s"] for r in self.records.values() if r.get("latency_s") and not r.get("cached")]
        every = [r["latency_s"] for r in self.records.values() if r.get("latency_s")]
        return percentile(fresh or every, 95) * 1000

    def correct(self) -> int:
        return sum(r["status"] == "passed" for r in self.records.values())


def _pairs(llm: Side, student: Side) -> tuple[list[Pair], int]:
    """The paired outcomes of the cases both sides answered, and how many were left out because
    a call failed in transport on either side."""
    missing = sorted(set(llm.records) ^ set(student.records))
    if missing:
        suite, cid = missing[0]
        raise DecisionError(f"runs {llm.run_dir} and {student.run_dir} do not cover the same cases: "
                            f"{len(missing)} unpaired, e.g. {suite}/{cid}")
    lost = llm.failed_in_transport() | student.failed_in_transport()
    pairs = [Pair(cid, str((rec.get("expected") or {}).get("label", "")), rec["status"] == "passed",
                  student.records[(suite, cid)]["status"] == "passed")
             for (suite, cid), rec in sorted(llm.records.items()) if (suite, cid) not in lost]
    return pairs, len(lost)


def _test_cases(config: Config, side: Side) -> list[Any]:
    """The golden cases the runs scored, loaded from the files their summaries name."""
    cases = []
    for name, suite in side.suites.items():
        path = suite.get("fingerprints", {}).get("dataset_path") or suite.get("dataset_path")
        if path is None:
            dataset = suite.get("dataset")
            path = config.path(config.goldens) / f"{dataset}.jsonl"
        golden = load_goldens(config.path(path), splits=config.splits)
        ran_on = suite.get("fingerprints", {}).get("dataset_sha256")
        if ran_on and ran_on != golden.sha256:
            raise DecisionError(f"{golden.path} changed since run {side.run_dir} (sha256 {ran_on[:12]}… → "
                                f"{golden.sha256[:12]}…); re-run the evals")
        ids = {cid for s, cid in side.records if s == name}
        cases += [c for c in golden if c.id in ids]
    return cases


def _point(config: Config, name: str, role: str, side: Side, settings: Any) -> tuple[CandidatePoint, Any]:
    cand = config.candidate(name)
    if cand.type == "llm":
        cost = llm_cost(list(side.records.values()), name, cand, settings)
        per = cost.per_request
    else:
        card = read_card(config.path(cand.artifact or ""))
        cost = None if settings is None else student_cost_from_card(settings, card)
        per = None if cost is None else cost.per_request
    point = CandidatePoint(name, role, side.scored(), side.correct(), per, side.latency_p95_ms())
    return point, cost


def _where(config: Config, run_dir: Path) -> str:
    """A run as the repository knows it: its repo-relative path, else its directory name (the run id);
    an absolute path from the machine that ran it means nothing to a reviewer."""
    path = Path(run_dir).resolve()
    root = Path(config.root).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


def gather(config: Config, *, slot: str, suite: str | None, current: str, proposed: str, llm_run: Path,
           student_run: Path, others: dict[str, Path], delta: float, max_cost_ratio: float, min_class_cases: int,
           alpha: float, max_error_rate: float | None = None, log_dir: Path | None = None) -> DecisionInputs:
    """Pair the runs per case, re-check leakage against the card's hashes (overlap → LeakageError),
    and price both sides. The error limit defaults to the LLM suite's `max_error_rate` gate; the
    split's decision log lives in `log_dir` (default `<evals>/decisions`)."""
    settings = cost_settings(config)
    cand = config.candidate(proposed)
    if cand.type == "llm":
        raise DecisionError(f"candidate '{proposed}' is an LLM; decide compares a student against the LLM")
    artifact = config.path(cand.artifact or "")
    card = read_card(artifact)
    llm_side, student_side = Side(llm_run, slot, current, suite), Side(student_run, slot, proposed, suite)
    pairs, excluded = _pairs(llm_side, student_side)
    test_cases = _test_cases(config, llm_side)
    train = read_train_hashes(artifact)
    overlaps = find_overlaps(train, test_cases, card.get("input_field", "text"))
    if overlaps:
        raise LeakageError(f"{artifact}: {describe_overlaps(overlaps)}; retrain without them "
                           f"(`goldgate distill` drops them by default)")
    sources = Counter(str(c.provenance.get("source")) for c in test_cases)
    non_human = sorted(c.id for c in test_cases if c.provenance.get("source") not in TRUSTED_SOURCES)
    llm_point, llm_price = _point(config, current, "current", llm_side, settings)
    student_point, student_price = _point(config, proposed, "proposed", student_side, settings)
    extra = [_point(config, name, "other", Side(run, slot, name, suite), settings)[0] for name, run in others.items()]
    hashes_body = (artifact / "train_hashes.txt").read_bytes()
    evidence = {
        "price_source": llm_price.price_source,
        "price_map_date": llm_price.price_date,
        "hardware": (settings.hardware if settings else "not configured") + f" (speed measured on "
                    f"{card['speed'].get('hardware')})",
        "artifact": cand.artifact,
        "student_kind": card["kind"],
        "base_model": card.get("base_model"),
        "seed": card.get("seed"),
        "llm_run": _where(config, llm_run),
        "student_run": _where(config, student_run),
        "data_hashes": {
            "goldens_sha256": card["data"].get("goldens_sha256"),
            "training_sha256": card["data"].get("training_sha256"),
            "train_hashes_sha256": hashlib.sha256(hashes_body).hexdigest(),
            "llm_run_id": llm_side.summary.get("run_id"),
            "student_run_id": student_side.summary.get("run_id"),
        },
        "training_counts": card["data"].get("counts"),
    }
    # Only the keys the candidate's config sets: a new optional key must not appear in swap PRs.
    written = cand.model_dump(exclude_none=True, exclude_unset=True)
    proposed_config = {k: v for k, v in written.items() if v not in ({}, None)}
    log = _split_log(config, llm_side, log_dir)
    key = comparison_key(slot, current, proposed, card["data"].get("training_sha256"),
                         [(p.case_id, p.llm_ok, p.student_ok) for p in pairs])
    return DecisionInputs(
        slot=slot, current=current, proposed=proposed, proposed_config=proposed_config, pairs=pairs,
        llm=llm_point, student=student_point, llm_cost=llm_price, student_cost=student_price, cost=settings,
        test_sources=dict(sources), non_human_ids=non_human,
        leakage={"overlaps": 0, "train_records_checked": len(train),
                 "method": "sha256 of NFKC + casefold + punctuation-collapsed input text"},
        llm_errors=llm_side.errors(), student_errors=student_side.errors(), excluded_cases=excluded,
        max_error_rate=max_error_rate if max_error_rate is not None else _error_gate(llm_side),
        prior_decisions=log.prior(key), comparison_key=key, split_log=str(_rel(log.path, config.root)), split_log_path=log.path,
        delta=delta, max_cost_ratio=max_cost_ratio, min_class_cases=min_class_cases, alpha=alpha,
        others=extra, evidence=evidence,
    )


def _error_gate(side: Side) -> float:
    """The transport-error limit the LLM's own suite was gated on (the default 5% when it had none)."""
    limits = [s.get("gates", {}).get("max_error_rate") for s in side.suites.values()]
    return min((x for x in limits if x is not None), default=0.05)


def _split_log(config: Config, side: Side, log_dir: Path | None) -> SplitLog:
    """The decision log of the test split the runs scored (the suite's dataset and split names)."""
    suite = next(iter(side.suites.values()))
    split = "+".join(suite.get("split") or []) or "all"
    return SplitLog.for_split(log_dir or config.path(config.evals) / "decisions",
                              str(suite.get("dataset") or "goldens"), split)


def _rel(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path
