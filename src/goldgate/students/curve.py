"""The student's learning curve: trained on nested, seeded subsets of the labels, scored on the same
test cases, so that `goldgate.decide.forecast` can extrapolate how many labels it needs.

Always the TF-IDF student (seconds per fit): a forecast that took as long as training a transformer
seven times would not be run. Subsets are nested (each a prefix of one seeded shuffle) so the curve
measures more labels, not different labels; repeats reshuffle with the next seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from goldgate.errors import GoldgateError
from goldgate.students.dataset import Example

__all__ = ["FRACTIONS", "Curve", "fit_student", "learning_curve"]

FRACTIONS = tuple(2 ** (-k / 2) for k in range(6, -1, -1))  # 1/8 … 1, evenly spaced on a log scale


@dataclass
class Curve:
    """One row per (subset size, repeat): which test cases the student got right."""

    sizes: list[int]
    correct: np.ndarray
    model: Any  # the student fitted on all labels (the selector ranks the pool with it)


def fit_student(examples: Sequence[Example], *, C: float = 0.5, seed: int = 0) -> Any:
    from goldgate.students.sklearn import build_pipeline

    pipe = build_pipeline(C, seed)
    with warnings.catch_warnings():  # small subsets of many classes: sklearn's "regression?" hint is noise here
        warnings.filterwarnings("ignore", message="The number of unique classes", category=UserWarning)
        pipe.fit([e.text for e in examples], [e.target for e in examples],
                 linearsvc__sample_weight=[e.weight for e in examples])
    return pipe


def learning_curve(examples: Sequence[Example], test_texts: Sequence[str], test_labels: Sequence[str], *,
                   fractions: Sequence[float] = FRACTIONS, repeats: int = 2, seed: int = 0,
                   C: float = 0.5) -> Curve:
    """Fit on each nested subset and record per-case correctness on the test texts."""
    if len({e.target for e in examples}) < 2:
        raise GoldgateError(f"a learning curve needs labels of at least two classes ({len(examples)} labelled records)")
    gold = np.asarray(test_labels, dtype=object)
    order = sorted(examples, key=lambda e: e.id)
    sizes, rows, model = [], [], None
    for r in range(repeats):
        shuffled = list(order)
        np.random.default_rng(seed + r).shuffle(shuffled)
        for f in fractions:
            n = max(round(f * len(shuffled)), 2)
            if n >= len(shuffled) and r > 0:
                continue  # every repeat's full set is the same set
            subset = shuffled[:n]
            if len({e.target for e in subset}) < 2:
                continue
            pipe = fit_student(subset, C=C, seed=seed)
            rows.append(np.asarray(pipe.predict(list(test_texts)), dtype=object) == gold)
            sizes.append(n)
            if n >= len(shuffled):
                model = pipe
    order_idx = np.argsort(sizes, kind="stable")
    return Curve([sizes[i] for i in order_idx], np.array([rows[i] for i in order_idx], dtype=bool), model)
