"""The leakage guard on the repo's own Banking77 goldens, where duplicates really occur."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.goldens.records import load_goldens
from goldgate.students.dataset import LeakageError, build_training_set, golden_examples, text_hash

GOLDENS = Path(__file__).resolve().parents[1] / "evals/goldens/banking77.jsonl"


def test_text_hash_ignores_case_spacing_and_punctuation_but_not_words() -> None:
    assert text_hash("Can I top-up by cheque?") == text_hash("\ncan i top up by cheque")
    assert text_hash("Can I top up by cheque?") != text_hash("Can I top up by card?")


def test_banking77_train_test_duplicates_are_dropped_or_refused() -> None:
    golden = load_goldens(GOLDENS)
    examples = golden_examples(golden, input_field="text", target_field="label")
    ts = build_training_set(golden, examples, input_field="text")
    test_text = {c.id: c.inputs["text"] for c in golden.split("test")}
    lowercase_dupes = [o for o in ts.excluded if golden.get(o.train_id).inputs["text"].strip().lower()
                       == test_text[o.test_id].strip().lower()]
    assert len(lowercase_dupes) == 6  # the exact (case-insensitive) duplicates known in this dataset
    assert len(ts.excluded) > 6  # plus re-punctuated / re-spaced ones
    assert len(ts.examples) == len(examples) - len(ts.excluded) and ts.counts() == {"human": len(ts.examples)}
    with pytest.raises(LeakageError, match=ts.excluded[0].train_id):
        build_training_set(golden, examples, input_field="text", strict=True)
