"""The training set a student learns from, and the guard that keeps it apart from the test split.

Sources, in order of trust: `human` and `llm-corrected` golden records of the training splits
(weight 1), then pure LLM labels (`llm` records, or an unlabelled pool labelled by the slot's
current candidate through the cached runner), weighted by `llm_weight`. Overlap with the test split
is found by hashes of normalised input text, because a re-cased or re-spaced duplicate leaks as
surely as an exact one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldgate.errors import GoldgateError
from goldgate.files import write_atomic
from goldgate.goldens.records import Case, GoldenSet

if TYPE_CHECKING:
    from goldgate.models.base import Model

__all__ = [
    "TRUSTED_SOURCES",
    "Example",
    "LeakageError",
    "Overlap",
    "PoolLabels",
    "TrainingSet",
    "build_training_set",
    "describe_overlaps",
    "find_overlaps",
    "golden_examples",
    "input_text",
    "label_pool",
    "pick_pool",
    "text_hash",
]

TRUSTED_SOURCES = ("human", "llm-corrected")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


class LeakageError(GoldgateError):
    """Training data overlaps the test split (the message names the records)."""


def text_hash(text: str) -> str:
    """Hash of the text after NFKC, case folding and punctuation/whitespace collapsing."""
    norm = _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()[:20]


def input_text(inputs: dict[str, Any], field_name: str) -> str:
    value = inputs.get(field_name)
    if not isinstance(value, str):
        raise GoldgateError(f"inputs.{field_name} is missing or not a string (keys: {', '.join(sorted(inputs))})")
    return value


@dataclass(frozen=True, slots=True)
class Example:
    """One training pair with where it came from; `id` is the golden record or pool case id."""

    id: str
    text: str
    target: str
    source: str
    weight: float = 1.0

    @property
    def hash(self) -> str:
        return text_hash(self.text)


@dataclass(frozen=True, slots=True)
class Overlap:
    train_id: str
    test_id: str
    hash: str


@dataclass
class TrainingSet:
    """What a student is trained on, plus what was dropped to keep it disjoint from the test split."""

    examples: list[Example]
    test_split: str
    goldens_sha256: str
    excluded: list[Overlap] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e.source for e in self.examples).items()))

    def sha256(self) -> str:
        h = hashlib.sha256()
        for e in self.examples:
            h.update(json.dumps(asdict(e), sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
        return h.hexdigest()

    def hashes(self) -> list[str]:
        return sorted({e.hash for e in self.examples})

    def write_jsonl(self, path: Path) -> None:
        write_atomic(path, (json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in self.examples))


def find_overlaps(train: Iterable[tuple[str, str]], test_cases: Sequence[Case], input_field: str) -> list[Overlap]:
    """(train id, normalised-text hash) pairs that collide with a test case's input."""
    by_hash: dict[str, str] = {}
    for c in test_cases:
        by_hash.setdefault(text_hash(input_text(c.inputs, input_field)), c.id)
    return [Overlap(tid, by_hash[h], h) for tid, h in train if h in by_hash]


def describe_overlaps(overlaps: Sequence[Overlap], limit: int = 5) -> str:
    shown = ", ".join(f"{o.train_id}~{o.test_id}" for o in overlaps[:limit])
    more = f" and {len(overlaps) - limit} more" if len(overlaps) > limit else ""
    return f"{len(overlaps)} training record(s) share normalised text with the test split: {shown}{more}"


@dataclass
class PoolLabels:
    """Pure LLM labels for an unlabelled pool, with what they cost."""

    examples: list[Example]
    cost_usd: float
    errors: list[str]
    batch: dict[str, Any] | None = None  # the batch API's account, when the pool went that way


def label_pool(model: Model, cases: Sequence[Case], input_field: str, *, weight: float,
               batch: dict[str, Any] | None = None) -> PoolLabels:
    """Label `cases` with `model` (cached calls for an LLM); unusable answers are left out and counted.
    With `batch` (a dict to fill with its stats) the calls go through the provider's batch API."""
    if batch is not None:
        if not hasattr(model, "predict_batch_api"):
            raise GoldgateError("batch labelling needs an LLM teacher (a candidate of type 'llm')")
        preds = model.predict_batch_api([c.inputs for c in cases], stats=batch)
    else:
        preds = model.predict_many([c.inputs for c in cases])
    examples, errors = [], []
    for c, p in zip(cases, preds):
        target = p.label if p.label is not None else (p.text.strip() if p.ok else None)
        if not p.ok or not target:
            errors.append(c.id)
            continue
        examples.append(Example(c.id, input_text(c.inputs, input_field), target, "llm", weight))
    return PoolLabels(examples, sum(p.cost_usd for p in preds), errors, batch)


def pick_pool(golden: GoldenSet, split: str, size: int | None, exclude: set[str], seed: int) -> list[Case]:
    """A seeded sample of `split` cases (labels ignored), not overlapping the ids in `exclude`."""
    cases = [c for c in golden.split(split) if c.id not in exclude]
    if size is not None and size < len(cases):
        cases = random.Random(seed).sample(cases, size)
    return sorted(cases, key=lambda c: c.id)


def golden_examples(
    golden: GoldenSet,
    *,
    input_field: str,
    target_field: str,
    train_splits: Sequence[str] = ("train",),
    human_size: int | None = None,
    llm_weight: float = 1.0,
    seed: int = 0,
) -> list[Example]:
    """Trusted records of the training splits (a seeded sample of `human_size` if given), then
    the `llm` golden records at `llm_weight`."""
    trusted, llm = [], []
    for c in golden.split(*train_splits):
        target = c.expected.get(target_field)
        if target is None:
            continue
        source = str(c.provenance.get("source"))
        if source in TRUSTED_SOURCES:
            trusted.append(Example(c.id, input_text(c.inputs, input_field), str(target), source))
        elif source == "llm":
            llm.append(Example(c.id, input_text(c.inputs, input_field), str(target), "llm", llm_weight))
    if human_size is not None and human_size < len(trusted):
        trusted = sorted(random.Random(seed).sample(trusted, human_size), key=lambda e: e.id)
    return trusted + llm


def build_training_set(
    golden: GoldenSet,
    examples: Sequence[Example],
    *,
    input_field: str,
    test_split: str = "test",
    strict: bool = False,
) -> TrainingSet:
    """Apply the leakage guard: examples whose normalised input matches a `test_split` case are
    dropped and reported, or with `strict` raise LeakageError naming them."""
    if not examples:
        raise GoldgateError(f"{golden.path}: no labelled training records to train on")
    overlaps = find_overlaps(((e.id, e.hash) for e in examples), golden.split(test_split), input_field)
    if overlaps and strict:
        raise LeakageError(f"{golden.path}: {describe_overlaps(overlaps)} (drop them, or leave out --strict-leakage)")
    leaked = {o.train_id for o in overlaps}
    return TrainingSet([e for e in examples if e.id not in leaked], test_split, golden.sha256, overlaps)
