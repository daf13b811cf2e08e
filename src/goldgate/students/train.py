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

__all__ = ["DistillResult", "DistillSpec", "distill"]

KIND_TYPES = {"sklearn": "sklearn", "lora": "peft", "causal-lora": "peft"}


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
    llm_weight: float = 1.0
    strict_leakage: bool = False
    seed: int = 0
    hyper: dict[str, Any] = field(default_factory=dict)
    push_to_hub: str | None = None
    progress: bool = True


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
        raise GoldgateError(f"--kind {spec.kind} needs --base (a local model directory or a Hub id)")
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
        pool = label_pool(model_for_candidate(config, spec.slot, teacher), cases, spec.input_field,
                          weight=spec.llm_weight)
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
                                               "unusable": len(pool.errors)},
            "teacher_usd": pool.cost_usd if pool else 0.0,
            "excluded": [{"train_id": o.train_id, "test_id": o.test_id} for o in ts.excluded],
        },
    }
    backend = load_backend(out, card)
    texts = [e.text for e in ts.examples[:2000 if spec.kind == "sklearn" else 200]]
    card["speed"] = measure_speed(backend.predict_texts, texts, batch_size=backend.batch_size,
                                  single=100 if spec.kind == "sklearn" else 20)
    card = write_card(out, card, [(e.id, e.hash) for e in ts.examples])
    push = spec.push_to_hub or config.distill.get("push_to_hub")
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
