"""Serving the free-text peft student: the base causal LM plus the saved adapter.

Training lives in `goldgate.students.lora`; this is what `load_model` needs at run time. torch,
transformers and peft are imported inside the backend, never at import time. The label-slot LoRA
student merges its adapters and is served like the `encoder` student (`goldgate.models.encoder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.models.bases import load_pretrained

__all__ = ["PROMPT", "LoraCausalBackend", "LoraError"]

PROMPT = "### Input:\n{text}\n### Output:\n"


class LoraError(GoldgateError):
    """A LoRA adapter could not be set up or trained on the given base."""


class LoraCausalBackend:
    """Greedy generation after the training prompt, one input at a time (no padding subtleties)."""

    batch_size = 1

    def __init__(self, artifact: Path, card: dict[str, Any]):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        params = card.get("params", {})
        self.prompt = params.get("prompt", PROMPT)
        self.max_new_tokens = int(params.get("max_new_tokens", 32))
        self.tok = load_pretrained(AutoTokenizer, str(artifact / "tokenizer"))
        base = load_pretrained(AutoModelForCausalLM, card["base_model"])
        self.model = PeftModel.from_pretrained(base, str(artifact / "adapter")).eval()

    def predict_texts(self, texts: list[str]) -> list[tuple[str, float | None]]:
        import torch

        out = []
        for text in texts:
            ids = self.tok(self.prompt.format(text=text), add_special_tokens=False, return_tensors="pt")
            with torch.no_grad():
                gen = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False,
                                          eos_token_id=self.tok.eos_token_id, pad_token_id=self.tok.pad_token_id)
            new = gen[0, ids["input_ids"].shape[1]:]
            out.append((self.tok.decode(new, skip_special_tokens=True).strip(), None))
        return out
