"""Golden datasets: JSONL files of human-validated cases, one record a line, sorted by id.

The loader checks every line and reports problems as `file:line: reason`, because a golden set
is reviewed and edited by people and a vague error would cost them more than the check does.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldgate.config import DEFAULT_SPLITS
from goldgate.errors import GoldenFormatError
from goldgate.files import write_atomic

if TYPE_CHECKING:
    import datasets

__all__ = ["Case", "GoldenSet", "check_record", "decode_lines", "decode_text", "load_goldens", "resolve_golden_path",
           "write_goldens"]

REQUIRED = ("id", "inputs", "expected", "metadata", "provenance")
PROVENANCE_SOURCES = ("human", "llm", "llm-corrected", "synthetic", "unlabelled")


@dataclass(frozen=True, slots=True)
class Case:
    """One golden record. `line` is where it sits in its file, for error messages."""

    id: str
    inputs: dict[str, Any]
    expected: dict[str, Any]
    metadata: dict[str, Any]
    provenance: dict[str, Any]
    line: int = 0

    @property
    def split(self) -> str:
        return self.metadata["split"]

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "inputs": self.inputs,
            "expected": self.expected,
            "metadata": self.metadata,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class GoldenSet:
    name: str
    path: Path
    cases: tuple[Case, ...]
    sha256: str
    _by_id: dict[str, Case] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update((c.id, c) for c in self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def get(self, case_id: str) -> Case:
        return self._by_id[case_id]

    def split(self, *names: str) -> list[Case]:
        """Cases of the given splits (all cases when none given)."""
        if not names:
            return list(self.cases)
        wanted = set(names)
        return [c for c in self.cases if c.metadata["split"] in wanted]

    @property
    def fingerprint(self) -> str:
        return f"sha256:{self.sha256}"

    def to_dataset(self) -> datasets.Dataset:
        """The set as a Hugging Face `datasets.Dataset`, one row per case."""
        import datasets

        return datasets.Dataset.from_list([c.to_record() for c in self.cases])


def resolve_golden_path(name_or_path: str | os.PathLike[str], *, goldens_dir: Path, root: Path) -> Path:
    """`banking77` → `<goldens_dir>/banking77.jsonl`; paths are taken relative to the project root."""
    raw = str(name_or_path)
    if raw.endswith(".jsonl") or os.sep in raw or "/" in raw:
        p = Path(raw)
        return p if p.is_absolute() else root / p
    return goldens_dir / f"{raw}.jsonl"


def _fail(where: Path | str, line: int | None, reason: str) -> GoldenFormatError:
    return GoldenFormatError(f"{where}:{line}: {reason}" if line is not None else f"{where}: {reason}")


def decode_text(path: Path | str, raw: bytes) -> str:
    """The file as text; a byte that is not UTF-8 is reported as file:line, not a traceback."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(path, line, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {col}); "
                                "save the file as UTF-8") from None


def decode_lines(path: Path | str, raw: bytes) -> list[str]:
    """The file's lines (split on newlines only: JSON strings may hold other line separators)."""
    lines = decode_text(path, raw).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def check_record(where: Path | str, line: int | None, rec: Any, splits: Sequence[str]) -> Case:
    """Validate one record; a problem is one `where:line: reason`. The loader, `fmt`, the importer
    and the writer all use this, so nothing invalid is ever written."""
    return _check(where, line, rec, frozenset(splits))


def _check(path: Path | str, n: int | None, rec: Any, splits: frozenset[str]) -> Case:
    if not isinstance(rec, dict):
        raise _fail(path, n, f"expected a JSON object, got {type(rec).__name__}")
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        raise _fail(path, n, f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(rec) - set(REQUIRED))
    if unknown:
        raise _fail(path, n, f"unknown field(s): {', '.join(unknown)}")
    cid = rec["id"]
    if not isinstance(cid, str) or not cid.strip():
        raise _fail(path, n, "field 'id' must be a non-empty string")
    for key in ("inputs", "expected", "metadata", "provenance"):
        if not isinstance(rec[key], dict):
            raise _fail(path, n, f"field '{key}' must be an object (id {cid!r})")
    if not rec["inputs"]:
        raise _fail(path, n, f"field 'inputs' is empty (id {cid!r})")
    split = rec["metadata"].get("split")
    if split is None:
        raise _fail(path, n, f"metadata.split is missing (id {cid!r})")
    if split not in splits:
        raise _fail(path, n, f"unknown split {split!r} (id {cid!r}; allowed: {', '.join(sorted(splits))})")
    source = rec["provenance"].get("source")
    if source not in PROVENANCE_SOURCES:
        raise _fail(
            path, n, f"provenance.source must be one of {', '.join(PROVENANCE_SOURCES)} (id {cid!r})"
        )
    return Case(cid, rec["inputs"], rec["expected"], rec["metadata"], rec["provenance"], n or 0)


def load_goldens(
    path: str | os.PathLike[str],
    *,
    splits: Sequence[str] = DEFAULT_SPLITS,
    name: str | None = None,
) -> GoldenSet:
    """Read and validate a golden JSONL file; raise GoldenFormatError at the first bad line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise GoldenFormatError(f"{p}: golden file not found") from None
    except OSError as exc:
        raise GoldenFormatError(f"{p}: cannot read: {exc.strerror}") from None
    allowed = frozenset(splits)
    cases: list[Case] = []
    seen: dict[str, int] = {}
    prev = ""
    for n, line in enumerate(decode_lines(p, raw), start=1):
        if not line.strip():
            raise _fail(p, n, "blank line (one JSON record per line)")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(p, n, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        case = _check(p, n, rec, allowed)
        if case.id in seen:
            raise _fail(p, n, f"duplicate id {case.id!r} (first on line {seen[case.id]})")
        if case.id < prev:
            raise _fail(p, n, f"ids not sorted: {case.id!r} after {prev!r} (run `goldgate goldens fmt {p}`)")
        seen[case.id] = n
        prev = case.id
        cases.append(case)
    if not cases:
        raise GoldenFormatError(f"{p}: no records (an empty golden file)")
    return GoldenSet(name or p.stem, p, tuple(cases), hashlib.sha256(raw).hexdigest())


def dumps_record(rec: dict[str, Any]) -> str:
    """One canonical line: stable key order keeps git diffs small."""
    ordered = {k: rec[k] for k in REQUIRED}
    return json.dumps(ordered, ensure_ascii=False, sort_keys=False, separators=(", ", ": "))


def write_goldens(path: str | os.PathLike[str], records: Iterable[dict[str, Any] | Case], *,
                  splits: Sequence[str] = DEFAULT_SPLITS) -> Path:
    """Validate every record, then write them sorted by id, atomically: a bad record or a crash
    never leaves the file broken or half written."""
    p = Path(path)
    recs = [r.to_record() if isinstance(r, Case) else r for r in records]
    allowed = frozenset(splits)
    for r in recs:
        rid = r.get("id") if isinstance(r, dict) else None
        _check(f"{p}: record {rid!r} (not written)", None, r, allowed)
    recs.sort(key=lambda r: r["id"])
    ids = [r["id"] for r in recs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise GoldenFormatError(f"{p}: duplicate id {dup!r} in records to write")
    write_atomic(p, (dumps_record(r) + "\n" for r in recs))
    return p
