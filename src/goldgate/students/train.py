"""`goldgate distill` as a function: training set → student → measured speed → card → artifact.

Kept apart from the CLI so plain Python (and the benchmark) can run the same pipeline.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goldgate.config import Config
from goldgate.errors import ConfigError, GoldgateError
from goldgate.files import write_atomic
from goldgate.goldens.records import GoldenSet
from goldgate.models.card import write_card
from goldgate.students.dataset import (
    PoolLabels,
    TrainingSet,
    build_training_set,
    golden_examples,
    label_pool,
    pick_pool,
)
from goldgate.students.speed import measure_speed

__all__ = ["LEAKAGE_FILE", "DistillResult", "DistillSpec", "distill", "spec_for", "students_to_train"]

LEAKAGE_FILE = "leakage.tsv"  # in the artifact: every training record dropped for sharing text with the test split

KIND_TYPES = {"sklearn": "sklearn", "encoder": "encoder", "lora": "peft", "causal-lora": "peft"}
_LORA = {"epochs", "lr", "batch_size", "r", "alpha", "dropout", "max_length", "target_modules"}
HYPER = {"sklearn": {"C"}, "encoder": {"C", "max_length", "quantize"}, "lora": _LORA | {"head_lr", "val_fraction", "patience", "C", "quantize"},
         "causal-lora": _LORA | {"max_new_tokens"}}

# Texts timed for the card: enough for a stable throughput without dominating training time.
_SPEED_TEXTS = {"sklearn": 2000, "encoder": 1000, "lora": 1000}


@dataclass
class DistillSpec:
    """Everything `goldgate distill` decides from its flags and `[tool.goldgate.distill]`."""

    slot: str
    candidate: str
    kind: str = "sklearn"
    out: Path | None = None
    base: str | None = None
    input_field: str = "text"
    train_splits: tuple[str, ...] = ("train",)
    test_split: str = "test"
    human_size: int | None = None
    pool_split: str | None = None
    pool_size: int | None = None
    teacher: str | None = None
    batch: bool = False  # label the pool through the provider's batch API (or the teacher's `batch = true`)
    llm_weight: float = 1.0
    strict_leakage: bool = False
    seed: int = 0
    hyper: dict[str, Any] = field(default_factory=dict)
    push_to_hub: str | None = None
    progress: bool = True


def students_to_train(config: Config, slot: str | None, candidate: str | None) -> list[tuple[str, str]]:
    """(slot, candidate) pairs to train: the named ones, else every student each slot lists."""
    if candidate:
        if slot:
            return [(slot, candidate)]
        slots = [name for name, s in config.slots.items() if candidate in s.students]
        if len(slots) != 1:
            raise ConfigError(f"--candidate {candidate}: pass --slot (listed by {len(slots)} slots' "
                              f"students in [tool.goldgate.slots])")
        return [(slots[0], candidate)]
    names = [slot] if slot else list(config.slots)
    pairs = [(name, student) for name in names for student in config.slot(name).students]
    if not pairs:
        key = f"[tool.goldgate.slots.{slot}] students" if slot else "[tool.goldgate.slots.<slot>] students"
        raise ConfigError(f"{config.pyproject}: {key}: no student to train; list the student candidates "
                          f"(e.g. students = [\"student-tfidf\"]) or pass --candidate")
    return pairs


def spec_for(config: Config, slot: str, candidate: str, overrides: dict[str, Any]) -> tuple[DistillSpec, str]:
    """The spec and golden set for one student: flags (`overrides`, None = unset) over the candidate's
    `train` table over `[tool.goldgate.distill]`."""
    cand = config.candidates.get(candidate)
    own = cand.train if cand and cand.train else None
    where = f"[tool.goldgate.candidates.{candidate}.train]"

    def pick(name: str, default: Any = None) -> Any:
        for value in (overrides.get(name), getattr(own, name, None), getattr(config.distill, name)):
            if value is not None:
                return value
        return default

    goldens = pick("goldens")
    if goldens is None:
        raise ConfigError(f"{config.pyproject}: {where} goldens: not set; name the golden set to train on "
                          f"(or set [tool.goldgate.distill] goldens, or pass --goldens)")
    default_kind = {"sklearn": "sklearn", "encoder": "encoder"}.get(cand.type if cand is not None else "sklearn", "lora")
    kind = pick("kind", default_kind)
    if cand is not None and cand.type != KIND_TYPES[kind]:
        raise ConfigError(f"{config.pyproject}: {where} kind: '{kind}' trains a {KIND_TYPES[kind]} student, "
                          f"but the candidate's type is '{cand.type}'")
    hyper = {**config.distill.hyper, **(own.hyper if own else {}), **overrides.get("hyper", {})}
    unknown = sorted(set(hyper) - HYPER[kind])
    if unknown:
        raise ConfigError(f"{config.pyproject}: {where} hyper.{unknown[0]}: not a {kind} setting "
                          f"(known: {', '.join(sorted(HYPER[kind]))})")
    out = overrides.get("out") or (config.path(cand.artifact) if cand and cand.artifact else None)
    spec = DistillSpec(
        slot=slot, candidate=candidate, kind=kind, out=out, base=pick("base"), input_field=pick("input_field", "text"),
        train_splits=tuple(pick("train_splits", ("train",))), test_split=pick("test_split", "test"),
        human_size=pick("human_size"), pool_split=pick("pool_split"), pool_size=pick("pool_size"),
        teacher=pick("teacher"), llm_weight=pick("llm_weight", 1.0), strict_leakage=pick("strict_leakage", False),
        seed=pick("seed", 0), hyper=hyper, push_to_hub=overrides.get("push_to_hub"),
        progress=bool(overrides.get("progress", True)), batch=bool(overrides.get("batch")),
    )
    return spec, str(goldens)


@dataclass
class DistillResult:
    artifact: Path
    card: dict[str, Any]
    training: TrainingSet
    pool: PoolLabels | None


def _train(spec: DistillSpec, ts: TrainingSet, labels: list[str] | None, out: Path) -> dict[str, Any]:
    if spec.kind == "sklearn":
        from goldgate.students.sklearn import train_sklearn

        return train_sklearn(ts, out, seed=spec.seed, **spec.hyper)
    if not spec.base:
        raise GoldgateError(f"--kind {spec.kind} needs --base (minilm, a local model directory or a Hub id)")
    if spec.kind == "encoder":
        from goldgate.students.encoder import train_encoder

        return train_encoder(spec.base, ts, out, seed=spec.seed, progress=spec.progress, **spec.hyper)
    from goldgate.students.lora import train_lora_causal, train_lora_classifier

    if spec.kind == "lora":
        classes = labels or sorted({e.target for e in ts.examples})
        return train_lora_classifier(spec.base, ts, classes, out, seed=spec.seed, progress=spec.progress, **spec.hyper)
    return train_lora_causal(spec.base, ts, out, seed=spec.seed, progress=spec.progress, **spec.hyper)


def _check_splits(config: Config, golden: GoldenSet, spec: DistillSpec) -> None:
    """Each named split exists in the config and has cases, so a typo is named, not "no records"."""
    named = [("--train-split", s) for s in spec.train_splits] + [("--test-split", spec.test_split)]
    named += [("--pool-split", spec.pool_split)] if spec.pool_split else []
    present = {c.split for c in golden}
    for flag, split in named:
        if split not in config.splits:
            raise ConfigError(f"{flag} {split!r}: unknown split (allowed: {', '.join(config.splits)})")
        if split not in present:
            raise ConfigError(f"{flag} {split!r}: {golden.path} has no cases in this split "
                              f"(it has: {', '.join(sorted(present))})")


def distill(config: Config, golden: GoldenSet, spec: DistillSpec) -> DistillResult:
    """Build the leak-free training set, train, measure speed, and write the artifact with its card."""
    from goldgate.models.load import model_for_candidate
    from goldgate.models.student import load_backend

    if spec.kind not in KIND_TYPES:
        raise GoldgateError(f"unknown student kind '{spec.kind}' (one of {', '.join(KIND_TYPES)})")
    slot = config.slot(spec.slot)
    labels = config.labels_for(spec.slot)
    _check_splits(config, golden, spec)
    examples = golden_examples(golden, input_field=spec.input_field, target_field=slot.output_field,
                               train_splits=spec.train_splits, human_size=spec.human_size,
                               llm_weight=spec.llm_weight, seed=spec.seed)
    pool = None
    if spec.pool_split:
        teacher = spec.teacher or slot.use
        cases = pick_pool(golden, spec.pool_split, spec.pool_size, {e.id for e in examples}, spec.seed)
        batch = {} if spec.batch or config.candidate(teacher).batch else None
        pool = label_pool(model_for_candidate(config, spec.slot, teacher), cases, spec.input_field,
                          weight=spec.llm_weight, batch=batch)
        examples += pool.examples
    ts = build_training_set(golden, examples, input_field=spec.input_field, test_split=spec.test_split,
                            strict=spec.strict_leakage)
    out = spec.out or config.path("artifacts") / spec.candidate
    if out.exists():
        shutil.rmtree(out)
    trained = _train(spec, ts, labels, out)
    card: dict[str, Any] = {
        **trained,
        "candidate": spec.candidate,
        "slot": spec.slot,
        "task": slot.task,
        "input_field": spec.input_field,
        "teacher": (spec.teacher or slot.use) if pool else None,
        "data": {
            "n": len(ts.examples),
            "counts": ts.counts(),
            "llm_weight": spec.llm_weight,
            "training_sha256": ts.sha256(),
            "goldens": str(golden.path.relative_to(config.root) if golden.path.is_relative_to(config.root)
                           else golden.path),
            "goldens_sha256": golden.sha256,
            "train_splits": list(spec.train_splits),
            "test_split": spec.test_split,
            "pool": None if pool is None else {"split": spec.pool_split, "labelled": len(pool.examples),
                                               "unusable": len(pool.errors),
                                               "via": "batch API" if pool.batch is not None else "live calls"},
            "teacher_usd": pool.cost_usd if pool else 0.0,
            "excluded": [{"train_id": o.train_id, "test_id": o.test_id} for o in ts.excluded],
        },
    }
    backend = load_backend(out, card)
    texts = [e.text for e in ts.examples[:_SPEED_TEXTS.get(spec.kind, 200)]]
    card["speed"] = measure_speed(backend.predict_texts, texts, batch_size=backend.batch_size,
                                  single=20 if spec.kind == "causal-lora" else 100)
    card = write_card(out, card, [(e.id, e.hash) for e in ts.examples])
    if ts.excluded:
        write_atomic(out / LEAKAGE_FILE, ["train_id\ttest_id\ttext_sha256\n",
                                          *(f"{o.train_id}\t{o.test_id}\t{o.hash}\n" for o in ts.excluded)])
    push = spec.push_to_hub or config.distill.push_to_hub
    if push:
        push_artifact(out, str(push))
        card["pushed_to"] = str(push)
    return DistillResult(out, card, ts, pool)


def push_artifact(artifact: Path, repo_id: str) -> None:
    """Upload the artifact folder to the Hub (token from HF_TOKEN / the Hub login, never from config)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True, private=True)
    (artifact / "README.md").write_text((artifact / "model_card.md").read_text(encoding="utf-8"), encoding="utf-8")
    api.upload_folder(repo_id=repo_id, folder_path=str(artifact), commit_message="goldgate distill")
