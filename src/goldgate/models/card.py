"""The model card every student artifact carries: what it was trained on (hashes, provenance
counts, leakage exclusions), how (kind, base model, seeds, hyper-parameters) and how fast it runs.

`card.json` is read back by `goldgate.models.student` and `goldgate decide`; `model_card.md` is for people
(and is the README when an artifact is pushed to the Hub).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.files import read_versioned, write_atomic

__all__ = ["CARD_SCHEMA", "HASHES_FILE", "CardError", "read_card", "read_train_hashes", "write_card"]

CARD_SCHEMA = "goldgate.student/v1"
HASHES_FILE = "train_hashes.txt"
KINDS = ("sklearn", "encoder", "lora-encoder", "peft-causal-lm")


class CardError(GoldgateError):
    """A student artifact directory is missing its card or the card is malformed."""


def write_card(out_dir: Path, card: dict[str, Any], train_hashes: list[tuple[str, str]]) -> dict[str, Any]:
    """Write card.json, model_card.md and the (record id, normalised-text hash) pairs that
    `goldgate decide` re-checks against the test split."""
    body = "".join(f"{h}\t{rid}\n" for rid, h in sorted(train_hashes))
    card = {"schema": CARD_SCHEMA, **card, "train_hashes_file": HASHES_FILE,
            "train_hashes_sha256": hashlib.sha256(body.encode("utf-8")).hexdigest()}
    write_atomic(out_dir / HASHES_FILE, body)
    write_atomic(out_dir / "card.json", json.dumps(card, indent=2, sort_keys=True) + "\n")
    write_atomic(out_dir / "model_card.md", render_card(card))
    return card


def read_card(artifact: Path) -> dict[str, Any]:
    path = artifact / "card.json"
    card = read_versioned(path, schema=CARD_SCHEMA, error=CardError,
                          missing="train the student with `goldgate distill` first")
    if card.get("kind") == "peft-seq-cls":
        raise CardError(f"{path}: kind 'peft-seq-cls' (a LoRA student from goldgate before LP-FT) is no longer "
                        f"served; retrain it with `goldgate distill --kind lora`")
    if card.get("kind") not in KINDS:
        raise CardError(f"{path}: kind {card.get('kind')!r} is not one of {', '.join(KINDS)}")
    return card


def read_train_hashes(artifact: Path) -> list[tuple[str, str]]:
    """(record id, hash) pairs of everything the student was trained on."""
    path = artifact / HASHES_FILE
    try:
        rows = [line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if line]
        return [(rid, h) for h, rid in rows]
    except ValueError:
        raise CardError(f"{path}: expected 'hash<TAB>record id' lines") from None
    except OSError as exc:
        raise CardError(f"{path}: cannot read the training-text hashes: {exc.strerror}") from None


def render_card(card: dict[str, Any]) -> str:
    data, speed = card.get("data", {}), card.get("speed", {})
    counts = ", ".join(f"{k}: {v}" for k, v in data.get("counts", {}).items())
    lines = [
        "---",
        "library_name: " + {"sklearn": "scikit-learn", "peft-causal-lm": "peft"}.get(card["kind"], "onnx"),
        "tags: [goldgate, distillation]",
        "---",
        f"# {card.get('candidate', 'student')}",
        "",
        (f"A `{card['kind']}` student distilled by goldgate for slot `{card.get('slot')}` "
        f"(teacher: `{card.get('teacher') or 'none'}`)."),
        "",
        "## Training data",
        f"- examples: {data.get('n')} ({counts})",
        f"- training set sha256: `{data.get('training_sha256')}`",
        f"- goldens sha256: `{data.get('goldens_sha256')}` (test split `{data.get('test_split')}` held out)",
        f"- dropped for overlapping the test split: {len(data.get('excluded', []))}",
        f"- LLM labelling cost: ${data.get('teacher_usd', 0.0):.4f}",
        "",
        "## Training",
        f"- base model: `{card.get('base_model') or '-'}`; seed {card.get('seed')}",
        f"- parameters: `{json.dumps(card.get('params', {}), sort_keys=True)}`",
        f"- training time: {card.get('train_s', 0.0):.1f} s on {speed.get('hardware', '?')}",
        "",
        "## Speed (measured on the training machine)",
        f"- throughput: {speed.get('throughput_rps', 0.0):.1f} requests/s (batch {speed.get('batch_size')})",
        f"- latency p50 / p95: {speed.get('latency_p50_ms', 0.0):.2f} / {speed.get('latency_p95_ms', 0.0):.2f} ms",
        "",
        "Accuracy is measured by `goldgate decide` on the human-validated test split, never here.",
        "",
    ]
    return "\n".join(lines)
