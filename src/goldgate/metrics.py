"""Deterministic scores for free-text answers against references: exact match, normalised match and
token F1, with SQuAD's answer normalisation (Rajpurkar et al., 2016). Each takes one prediction and
one reference or several (the best-matching reference counts), so a body can assert on them."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

__all__ = ["exact_match", "normalize", "normalized_match", "token_f1"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def _refs(references: str | Iterable[str]) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("goldgate.metrics: at least one reference is needed")
    return refs


def exact_match(prediction: str, references: str | Iterable[str]) -> bool:
    """The prediction equals a reference once surrounding whitespace is stripped."""
    return any(prediction.strip() == r.strip() for r in _refs(references))


def normalized_match(prediction: str, references: str | Iterable[str]) -> bool:
    """The prediction equals a reference after `normalize` (SQuAD's exact match)."""
    norm = normalize(prediction)
    return any(norm == normalize(r) for r in _refs(references))


def token_f1(prediction: str, references: str | Iterable[str]) -> float:
    """SQuAD's token F1 between the normalised prediction and the best-matching reference."""
    return max(_f1(normalize(prediction).split(), normalize(r).split()) for r in _refs(references))


def _f1(pred: list[str], ref: list[str]) -> float:
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)
