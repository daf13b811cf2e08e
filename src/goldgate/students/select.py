"""Which unlabelled records people should label next: uncertainty of the student, spread out.

Score = how unsure the student is (a small margin between its two best classes, as a rank in the
pool, 0..1), plus a bonus where the LLM disagrees with the student. The batch is then picked
greedily by score minus `diversity` × the cosine similarity to the closest record already picked
(maximal marginal relevance, Carbonell & Goldstein 1998), so one confusion cannot fill the batch.
Eligibility is decided here too: never a test-split record, never a record already labelled, never
a text that (normalised) equals a test or labelled text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from goldgate.goldens.records import Case, GoldenSet
from goldgate.students.dataset import TRUSTED_SOURCES, input_text, text_hash

__all__ = ["Pick", "eligible_pool", "select_batch"]


@dataclass(frozen=True, slots=True)
class Pick:
    id: str
    text: str
    score: float
    margin: float
    predicted: str
    runner_up: str


def _labelled(case: Case) -> bool:
    return bool(case.expected) and case.provenance.get("source") != "unlabelled"


def eligible_pool(golden: GoldenSet, pool_splits: Sequence[str], *, input_field: str, test_split: str = "test",
                  labelled: Iterable[str] = ()) -> list[Case]:
    """Unlabelled records of `pool_splits`, minus anything in or equal (by normalised text) to the test
    split or to a labelled record. `labelled` adds ids to treat as labelled (e.g. the bench's)."""
    taken = set(labelled)
    blocked = {text_hash(input_text(c.inputs, input_field)) for c in golden
               if c.split == test_split or c.id in taken
               or (_labelled(c) and c.provenance.get("source") in TRUSTED_SOURCES)}
    out = []
    for c in golden.split(*pool_splits):
        if c.split == test_split or c.id in taken or _labelled(c):
            continue
        if text_hash(input_text(c.inputs, input_field)) in blocked:
            continue
        out.append(c)
    return out


def _margins(model: Any, texts: Sequence[str]) -> tuple[np.ndarray, list[str], list[str]]:
    scores = np.asarray(model.decision_function(list(texts)), dtype=float)
    classes = np.asarray(model.classes_)
    if scores.ndim == 1:  # two classes: one signed score
        scores = np.stack([-scores, scores], axis=1)
    top2 = np.argsort(-scores, axis=1)[:, :2]
    rows = np.arange(len(texts))
    margin = scores[rows, top2[:, 0]] - scores[rows, top2[:, 1]]
    return margin, classes[top2[:, 0]].tolist(), classes[top2[:, 1]].tolist()


def select_batch(model: Any, pool: Sequence[tuple[str, str]], n: int, *, diversity: float = 0.5,
                 llm_labels: Mapping[str, str] | None = None, disagreement: float = 0.3,
                 shortlist: int = 4) -> list[Pick]:
    """The `n` (id, text) pool records whose labels should help the student most, best first."""
    if n <= 0 or not pool:
        return []
    texts = [t for _, t in pool]
    margin, top, second = _margins(model, texts)
    ranks = np.empty(len(pool))
    ranks[np.argsort(margin, kind="stable")] = np.arange(len(pool))
    score = 1.0 - ranks / max(len(pool) - 1, 1)  # 1 = the least sure
    if llm_labels:
        score += disagreement * np.array([llm_labels.get(i) not in (None, p) for (i, _), p in zip(pool, top)])
    cand = np.argsort(-score, kind="stable")[: min(len(pool), max(n * shortlist, n))]
    feats = model[:-1].transform([texts[i] for i in cand])
    norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1))).ravel()
    feats = feats.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]).tocsr()
    sims = np.asarray((feats @ feats.T).todense())
    chosen: list[int] = []
    closest = np.zeros(len(cand))
    free = np.ones(len(cand), dtype=bool)
    base = score[cand]
    for _ in range(min(n, len(cand))):
        value = np.where(free, base - diversity * closest, -np.inf)
        j = int(np.argmax(value))
        chosen.append(j)
        free[j] = False
        closest = np.maximum(closest, sims[j])
    return [Pick(pool[cand[j]][0], texts[cand[j]], float(score[cand[j]]), float(margin[cand[j]]),
                 str(top[cand[j]]), str(second[cand[j]])) for j in chosen]
