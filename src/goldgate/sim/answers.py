"""The answer key: normalised input -> expected answer from golden files, and the deterministic
hashes and garbling that turn it into realistic mistakes."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from goldgate.errors import GoldenFormatError

__all__ = ["AnswerKey", "candidates", "garble", "is_text", "norm", "parse_record", "uniforms"]

_LABEL_SPLIT = re.compile(r"[_\s\-]+")


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def is_text(answer: str) -> bool:
    return any(c.isspace() for c in answer)


def uniforms(*parts: object) -> tuple[float, float, float, float]:
    """Four independent uniforms in [0, 1) from one hash, identical across processes and runs."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=32).digest()
    u = [int.from_bytes(digest[i : i + 8], "big") / 2**64 for i in range(0, 32, 8)]
    return u[0], u[1], u[2], u[3]


def candidates(text: str, urls: Iterable[str]) -> Iterator[str]:
    """Where a prompt may carry the case's input: whole text, each line, text after `Label: `."""
    yield text
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        yield from lines
    for line in lines:
        _, sep, tail = line.partition(": ")
        if sep and tail.strip():
            yield tail
    yield from urls


class AnswerKey:
    """Normalised input string -> expected answer, plus what confusions and class accuracy need."""

    def __init__(self, answers: dict[str, str], counts: Counter[str], seed: int,
                 accepted: dict[str, frozenset[str]] | None = None) -> None:
        self.answers = answers
        self.accepted = accepted or {}  # normalised input -> every normalised answer that is right
        self.labels = tuple(sorted(a for a in counts if not is_text(a))) or tuple(sorted(counts))
        self._seed = seed
        self._tokens = {a: frozenset(_LABEL_SPLIT.split(a.lower())) - {""} for a in self.labels}
        self._neighbours: dict[str, tuple[str, ...]] = {}
        # Per-class offsets centred on the case-weighted mean, so the overall accuracy stays on target.
        raw = {c: 2 * uniforms(seed, "class", c)[0] - 1 for c in counts}
        total = sum(counts.values()) or 1
        mean = sum(raw[c] * n for c, n in counts.items()) / total
        spread = max([1.0, *(abs(r - mean) for r in raw.values())])
        self._offset = {c: (r - mean) / spread for c, r in raw.items()}

    @classmethod
    def load(cls, paths: Iterable[Path], label_field: str | None, seed: int) -> AnswerKey:
        answers: dict[str, str] = {}
        accepted: dict[str, frozenset[str]] = {}
        counts: Counter[str] = Counter()
        for path in paths:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise GoldenFormatError(f"{path}: cannot read: {exc}") from None
            for lineno, line in enumerate(lines, 1):
                if line.strip():
                    inputs, answer, also = parse_record(line, label_field, f"{path}:{lineno}")
                    counts[answer] += 1
                    for value in inputs.values():
                        if isinstance(value, str) and value.strip():
                            answers.setdefault(norm(value), answer)
                            if also:
                                accepted.setdefault(norm(value), frozenset(map(norm, [answer, *also])))
        return cls(answers, counts, seed, accepted)

    def right(self, key: str, answer: str, output: str) -> bool:
        """Whether `output` is a right answer for the input `key` whose expected answer is `answer`:
        equal to it or (free text) to one of its `also_correct` answers, or containing a
        several-word one (a chatty wrapper around a right answer is still right)."""
        out = norm(output)
        good = self.accepted.get(key, frozenset({norm(answer)}))
        padded = f" {out} "
        return out in good or (is_text(answer) and any(is_text(g) and f" {g} " in padded for g in good))

    def lookup(self, candidates: Iterable[str]) -> tuple[str, str] | None:
        for cand in candidates:
            key = norm(cand)
            answer = self.answers.get(key)
            if answer is not None:
                return key, answer
        return None

    def class_accuracy(self, answer: str, accuracy: float) -> float:
        return accuracy + min(0.1, accuracy, 1 - accuracy) * self._offset.get(answer, 0.0)

    def neighbours(self, label: str) -> tuple[str, ...]:
        """The three labels most similar to `label` by token Jaccard, ties broken by a stable hash."""
        if label not in self._neighbours:
            mine = self._tokens.get(label, frozenset())

            def rank(other: str) -> tuple[float, float]:
                theirs = self._tokens[other]
                union = len(mine | theirs) or 1
                return -len(mine & theirs) / union, uniforms(self._seed, "tie", label, other)[0]

            others = sorted((o for o in self.labels if o != label), key=rank)
            self._neighbours[label] = tuple(others[:3])
        return self._neighbours[label]


def parse_record(line: str, label_field: str | None, where: str) -> tuple[dict[str, Any], str, list[str]]:
    """(inputs, expected answer, other right answers) of one golden line. The answer is
    `label_field`, the only expected value, `label` or (free text) `answer`; `also_correct` lists
    other right free-text answers."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise GoldenFormatError(f"{where}: invalid JSON: {exc.msg}") from None
    if not isinstance(record, dict):
        raise GoldenFormatError(f"{where}: a record must be a JSON object")
    inputs, expected = record.get("inputs"), record.get("expected")
    if not isinstance(inputs, dict):
        raise GoldenFormatError(f"{where}: 'inputs' must be an object")
    if not isinstance(expected, dict):
        raise GoldenFormatError(f"{where}: 'expected' must be an object")
    field = label_field or (next(iter(expected)) if len(expected) == 1 else
                            "answer" if "label" not in expected and "answer" in expected else "label")
    if field not in expected:
        raise GoldenFormatError(f"{where}: 'expected' has no '{field}'")
    value = expected[field]
    answer = (
        value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    )
    also = expected.get("also_correct")
    return inputs, answer, [a for a in also if isinstance(a, str)] if isinstance(also, list) else []


def garble(reference: str, u: float) -> str:
    """A plausibly wrong free-text answer: the reference with words dropped and two swapped."""
    words = reference.split()
    rng = random.Random(int(u * 2**53))
    drop = set(rng.sample(range(len(words)), max(1, len(words) // 4)))
    kept = [w for i, w in enumerate(words) if i not in drop] or words[:1]
    if len(kept) >= 3:
        i = rng.randrange(len(kept) - 1)
        kept[i], kept[i + 1] = kept[i + 1], kept[i]
    return " ".join(kept)
