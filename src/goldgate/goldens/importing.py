"""Turn CSV, JSONL or Hugging Face datasets into golden records, with an explicit column mapping."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from goldgate.config import DEFAULT_SPLITS
from goldgate.errors import GoldenFormatError
from goldgate.goldens.records import check_record, decode_lines, decode_text

__all__ = ["parse_mapping", "read_rows", "rows_to_records"]


def parse_mapping(items: list[str], what: str) -> dict[str, str]:
    """`["text=utterance"]` → `{"text": "utterance"}` (golden field ← source column)."""
    out: dict[str, str] = {}
    for item in items:
        dst, sep, src = item.partition("=")
        if not sep or not dst or not src:
            raise GoldenFormatError(f"--{what} {item!r}: expected FIELD=COLUMN")
        out[dst] = src
    return out


def read_rows(source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line/row number, row) from `file.csv`, `file.jsonl`, or `hf:NAME_OR_DIR[:SPLIT]`."""
    if source.startswith("hf:"):
        yield from _hf_rows(source[3:])
        return
    path = Path(source)
    if not path.is_file():
        raise GoldenFormatError(f"{source}: file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GoldenFormatError(f"{source}: cannot read: {exc.strerror}") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(decode_text(path, raw), newline=""))
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as exc:
            raise GoldenFormatError(f"{path}:{reader.line_num}: invalid CSV: {exc}") from None
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        for n, line in enumerate(decode_lines(path, raw), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GoldenFormatError(f"{path}:{n}: invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise GoldenFormatError(f"{path}:{n}: expected a JSON object")
            yield n, row
    else:
        raise GoldenFormatError(f"{source}: unsupported format (use .csv, .jsonl, or hf:NAME[:SPLIT])")


def _hf_rows(spec: str) -> Iterator[tuple[int, dict[str, Any]]]:
    import datasets

    name, _, split = spec.partition(":")
    try:
        if Path(name).is_dir() and (Path(name) / "dataset_info.json").exists():
            ds = datasets.load_from_disk(name)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split or "train"]
        else:
            ds = datasets.load_dataset(name, split=split or "train")
    except Exception as exc:  # noqa: BLE001 - the datasets library raises many types
        raise GoldenFormatError(f"hf:{spec}: cannot load: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    for i, row in enumerate(ds, 1):
        yield i, dict(row)


def _content_id(prefix: str, inputs: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}" if prefix else digest


def rows_to_records(
    source: str,
    *,
    inputs: dict[str, str],
    expected: dict[str, str],
    split: str | None,
    split_column: str | None = None,
    id_column: str | None = None,
    id_prefix: str = "",
    provenance: dict[str, Any],
    metadata: dict[str, str] | None = None,
    splits: Sequence[str] = DEFAULT_SPLITS,
) -> list[dict[str, Any]]:
    """Map source rows to golden records. Ids come from `id_column`, else from a content hash
    (stable across re-imports); repeated inputs get `-2`, `-3` suffixes."""
    if split is None and split_column is None:
        raise GoldenFormatError("give --split or --split-column")
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, row in read_rows(source):
        where = f"{source}:{n}"
        missing = [c for c in [*inputs.values(), *expected.values(), *( [id_column] if id_column else []),
                               *([split_column] if split_column else [])] if c not in row]
        if missing:
            raise GoldenFormatError(f"{where}: column(s) {', '.join(missing)} not found (have: {', '.join(row)})")
        rec_inputs = {k: row[c] for k, c in inputs.items()}
        rec_split = str(row[split_column]) if split_column else split
        if id_column:
            rid = f"{id_prefix}-{row[id_column]}" if id_prefix else str(row[id_column])
        else:
            rid = _content_id(f"{id_prefix}-{rec_split}" if id_prefix else str(rec_split), rec_inputs)
        if rid in seen:
            seen[rid] += 1
            if id_column:
                raise GoldenFormatError(f"{where}: duplicate id {rid!r}")
            rid = f"{rid}-{seen[rid]}"
        else:
            seen[rid] = 1
        meta = {"split": rec_split}
        for k, c in (metadata or {}).items():
            if c not in row:
                raise GoldenFormatError(f"{where}: metadata column {c!r} not found")
            meta[k] = row[c]
        rec = {
            "id": rid,
            "inputs": rec_inputs,
            "expected": {k: row[c] for k, c in expected.items()},
            "metadata": meta,
            "provenance": dict(provenance),
        }
        check_record(source, n, rec, splits)
        records.append(rec)
    return records
