"""Distillation: build a leak-free training set from the validation pipeline's data and train a
student (scikit-learn, or transformers + peft LoRA) that serves a slot through the same interface.

Submodules import their heavy dependencies themselves; importing this package stays cheap.
"""

from __future__ import annotations

from goldgate.distill.dataset import (
    Example,
    LeakageError,
    Overlap,
    TrainingSet,
    build_training_set,
    find_overlaps,
    golden_examples,
    label_pool,
    pick_pool,
    text_hash,
)

__all__ = [
    "Example",
    "LeakageError",
    "Overlap",
    "TrainingSet",
    "build_training_set",
    "find_overlaps",
    "golden_examples",
    "label_pool",
    "pick_pool",
    "text_hash",
]
