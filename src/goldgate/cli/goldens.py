"""`goldgate goldens import | check | fmt`: create and maintain golden JSONL files."""

from __future__ import annotations

import argparse
from pathlib import Path

from goldgate.config import DEFAULT_SPLITS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("goldens", help="import, check and format golden datasets")
    gs = p.add_subparsers(dest="goldens_command", metavar="ACTION", required=True)

    imp = gs.add_parser("import", help="import CSV / JSONL / hf:NAME[:SPLIT] rows as golden records")
    imp.add_argument("source", help="file.csv, file.jsonl, or hf:NAME_OR_DIR[:SPLIT]")
    imp.add_argument("--out", required=True, type=Path, help="golden JSONL file to write")
    imp.add_argument("--input", action="append", required=True, metavar="FIELD=COLUMN", help="inputs mapping")
    imp.add_argument("--expected", action="append", default=[], metavar="FIELD=COLUMN", help="expected mapping")
    imp.add_argument("--meta", action="append", default=[], metavar="FIELD=COLUMN", help="extra metadata")
    imp.add_argument("--split", help="split for every row")
    imp.add_argument("--split-column", help="column holding each row's split")
    imp.add_argument("--id-column", help="column with a stable id (default: content hash)")
    imp.add_argument("--id-prefix", default="", help="prefix for generated ids")
    imp.add_argument("--source-kind", default="human", choices=["human", "llm", "llm-corrected", "synthetic", "unlabelled"],
                     help="provenance.source of the imported labels")
    imp.add_argument("--annotator", action="append", default=[], help="annotator id(s) for provenance")
    imp.add_argument("--origin", help="where the data came from (provenance.origin)")
    imp.add_argument("--merge", action="store_true", help="merge into an existing file (same id → replaced)")
    imp.set_defaults(func=_import)

    chk = gs.add_parser("check", help="validate golden files (file:line on the first problem)")
    chk.add_argument("files", nargs="+", type=Path)
    chk.set_defaults(func=_check)

    fmt = gs.add_parser("fmt", help="rewrite golden files sorted by id in canonical form")
    fmt.add_argument("files", nargs="+", type=Path)
    fmt.set_defaults(func=_fmt)


def _splits() -> list[str]:
    """The project's splits; the defaults outside a project (a broken project is an error)."""
    from goldgate.config import find_pyproject, load_config

    return load_config().splits if find_pyproject() is not None else list(DEFAULT_SPLITS)


def _import(args: argparse.Namespace) -> int:
    from goldgate.goldens.importing import parse_mapping, rows_to_records
    from goldgate.goldens.records import load_goldens, write_goldens

    splits = _splits()
    prov: dict = {"source": args.source_kind}
    if args.annotator:
        prov["annotators"] = args.annotator
    if args.origin:
        prov["origin"] = args.origin
    records = rows_to_records(
        args.source,
        inputs=parse_mapping(args.input, "input"),
        expected=parse_mapping(args.expected, "expected"),
        split=args.split,
        split_column=args.split_column,
        id_column=args.id_column,
        id_prefix=args.id_prefix,
        provenance=prov,
        metadata=parse_mapping(args.meta, "meta"),
        splits=splits,
    )
    merged = {r["id"]: r for r in records}
    if args.merge and args.out.exists():
        existing = {c.id: c.to_record() for c in load_goldens(args.out, splits=splits)}
        existing.update(merged)
        merged = existing
    write_goldens(args.out, merged.values(), splits=splits)
    golden = load_goldens(args.out, splits=splits)
    print(f"wrote {args.out}: {len(golden)} records ({len(records)} from {args.source}), {golden.fingerprint}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from goldgate.goldens.records import load_goldens

    splits = _splits()
    for f in args.files:
        g = load_goldens(f, splits=splits)
        counts: dict[str, int] = {}
        for c in g:
            counts[c.split] = counts.get(c.split, 0) + 1
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"{f}: ok, {len(g)} records ({parts}), {g.fingerprint}")
    return 0


def _fmt(args: argparse.Namespace) -> int:
    import json

    from goldgate.errors import GoldenFormatError
    from goldgate.goldens.records import check_record, decode_lines, write_goldens

    splits = _splits()
    for f in args.files:
        try:
            raw = f.read_bytes()
        except OSError as exc:
            raise GoldenFormatError(f"{f}: cannot read: {exc.strerror}") from None
        records = []
        for n, line in enumerate(decode_lines(f, raw), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise GoldenFormatError(f"{f}:{n}: invalid JSON: {exc.msg}") from None
                check_record(f, n, rec, splits)
                records.append(rec)
        write_goldens(f, records, splits=splits)
        print(f"formatted {f}: {len(records)} records")
    return 0
