"""How golden records map onto an Argilla dataset: one field per input, one question per expected
key (label questions for label slots), the split as metadata."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from goldgate.argilla.settings import ArgillaSyncError, sdk
from goldgate.goldens.records import PROVENANCE_SOURCES, Case

if TYPE_CHECKING:
    import argilla as rg

__all__ = ["QuestionSpec", "Schema", "argilla_name", "check_remote_schema", "infer_schema", "settings_for"]

_NAME_OK = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class QuestionSpec:
    """One Argilla question, answering one key of `expected`."""

    name: str
    key: str
    kind: Literal["label", "multi_label", "text", "rating"]
    labels: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Schema:
    fields: dict[str, str]  # Argilla field name → inputs key
    questions: tuple[QuestionSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"fields": self.fields, "questions": [asdict(q) for q in self.questions]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        return cls(dict(data["fields"]), tuple(
            QuestionSpec(q["name"], q["key"], q["kind"], tuple(q["labels"])) for q in data["questions"]))

    def question_for(self, key: str) -> QuestionSpec | None:
        return next((q for q in self.questions if q.key == key), None)


def argilla_name(key: str, taken: set[str]) -> str:
    base = _NAME_OK.sub("_", key.lower()).strip("_") or "field"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def infer_schema(cases: Iterable[Case], *, labels: list[str] | None = None, label_key: str = "label") -> Schema:
    """Fields from the inputs, one question per `expected` key, its type read from the values."""
    cases = list(cases)
    taken: set[str] = set()
    input_keys = list(dict.fromkeys(k for c in cases for k in c.inputs))
    fields = {argilla_name(k, taken): k for k in input_keys}
    expected_keys = list(dict.fromkeys(k for c in cases for k in c.expected))
    if labels and label_key not in expected_keys:
        expected_keys.append(label_key)
    questions = []
    for key in expected_keys:
        values = [c.expected[key] for c in cases if key in c.expected]
        questions.append(question_for_values(key, values, labels if key == label_key else None, taken))
    if not questions:
        raise ArgillaSyncError("the golden has no expected values to ask about; pass --slot to name a label set")
    return Schema(fields, tuple(questions))


def question_for_values(key: str, values: list[Any], labels: list[str] | None, taken: set[str]) -> QuestionSpec:
    name = argilla_name(key, taken)
    if values and all(isinstance(v, list) for v in values):
        found = sorted({str(x) for v in values for x in v} | set(labels or ()))
        return QuestionSpec(name, key, "multi_label", tuple(found))
    if values and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10 for v in values):
        return QuestionSpec(name, key, "rating", tuple(range(min(1, *values), max(5, *values) + 1)))
    strings = [v for v in values if isinstance(v, str)]
    if len(strings) != len(values):
        raise ArgillaSyncError(f"expected.{key}: mixed value types; Argilla needs one question type per key")
    found = sorted(set(strings) | set(labels or ()))
    if labels or (2 <= len(found) <= 200 and max(map(len, found)) <= 100):
        return QuestionSpec(name, key, "label", tuple(found))
    return QuestionSpec(name, key, "text")


def settings_for(schema: Schema, splits: list[str], min_submitted: int) -> rg.Settings:
    rg = sdk()

    questions: list[Any] = []
    for q in schema.questions:
        if q.kind == "label":
            questions.append(rg.LabelQuestion(name=q.name, title=q.key, labels=list(q.labels)))
        elif q.kind == "multi_label":
            questions.append(rg.MultiLabelQuestion(name=q.name, title=q.key, labels=list(q.labels)))
        elif q.kind == "rating":
            questions.append(rg.RatingQuestion(name=q.name, title=q.key, values=list(q.labels)))
        else:
            questions.append(rg.TextQuestion(name=q.name, title=q.key))
    return rg.Settings(
        fields=[rg.TextField(name=n, title=k) for n, k in schema.fields.items()],
        questions=questions,
        metadata=[rg.TermsMetadataProperty(name="split", options=list(splits)),
                  rg.TermsMetadataProperty(name="source", options=list(PROVENANCE_SOURCES))],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
        allow_extra_metadata=False,
    )


def check_remote_schema(schema: Schema, dataset: rg.Dataset, golden: str) -> None:
    """Raise one line naming the first difference between the local schema and the remote dataset."""
    kinds = {"LabelQuestion": "label", "MultiLabelQuestion": "multi_label", "TextQuestion": "text",
             "RatingQuestion": "rating"}
    remote_fields = {f.name for f in dataset.settings.fields}
    remote_q = {q.name: q for q in dataset.settings.questions}
    where = f"schema mismatch between {golden} and Argilla dataset '{dataset.name}'"
    for name in schema.fields:
        if name not in remote_fields:
            raise ArgillaSyncError(f"{where}: field '{name}' is missing remotely (remote has "
                                   f"{', '.join(sorted(remote_fields))})")
    for q in schema.questions:
        rq = remote_q.get(q.name)
        if rq is None:
            raise ArgillaSyncError(f"{where}: question '{q.name}' is missing remotely")
        rkind = kinds.get(type(rq).__name__, type(rq).__name__)
        if rkind != q.kind:
            raise ArgillaSyncError(f"{where}: question '{q.name}' is {rkind} remotely, {q.kind} locally")
        if q.kind in ("label", "multi_label"):
            missing = sorted(set(q.labels) - set(rq.labels))
            if missing:
                raise ArgillaSyncError(f"{where}: question '{q.name}' lacks label(s) {', '.join(missing[:5])} "
                                       "remotely (push to a new --dataset)")


# -- lock -----------------------------------------------------------------------------------------


