"""Serving the `encoder` student: a frozen sentence encoder run by ONNX Runtime, mean-pooled and
L2-normalised embeddings, and a linear head (multinomial logistic regression) in numpy.

The artifact is self-contained for serving: `encoder.onnx` (exported by `goldgate.models.onnx`),
`tokenizer/tokenizer.json` (read by the `tokenizers` library) and `head.npz` (weights, no pickle),
so an app serving it needs onnxruntime, tokenizers and numpy, not torch or transformers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.machine import compute_threads

__all__ = ["HEAD_FILE", "ONNX_FILE", "EncoderBackend", "EncoderError", "OnnxEncoder"]

ONNX_FILE = "encoder.onnx"
HEAD_FILE = "head.npz"


class EncoderError(GoldgateError):
    """An encoder artifact is incomplete or cannot be run."""


class OnnxEncoder:
    """Texts → L2-normalised mean-pooled embeddings; inputs are sorted by length and run in
    sub-batches so short texts do not pay for a long one's padding.

    Sub-batches are small on purpose: on the 2-CPU VMs goldgate is built on, MiniLM (int8) ran
    430–530 texts/s per thread in sub-batches of 1–4 and 220–240 in sub-batches of 32 (larger
    activations fall out of the CPU caches), with the same fall-off for float32 weights."""

    def __init__(self, onnx_path: Path, tokenizer_dir: Path, *, max_length: int, sub_batch: int = 4):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        for need in (onnx_path, tokenizer_dir / "tokenizer.json"):
            if not need.is_file():
                raise EncoderError(f"{need} is missing (retrain with `goldgate distill --kind encoder`)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = compute_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        self.tok.enable_truncation(max_length)
        self.tok.enable_padding(pad_id=self.tok.token_to_id("[PAD]") or 0)
        self.sub_batch = sub_batch

    def embed(self, texts: list[str], progress: Any = None) -> Any:
        import numpy as np

        encs = self.tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
        out = np.zeros((len(texts), 0), dtype=np.float32)
        for start in range(0, len(order), self.sub_batch):
            idx = order[start : start + self.sub_batch]
            width = max(sum(encs[i].attention_mask) for i in idx)
            ids = np.array([encs[i].ids[:width] for i in idx], dtype=np.int64)
            mask = np.array([encs[i].attention_mask[:width] for i in idx], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            (emb,) = self.session.run(None, feeds)
            if out.shape[1] == 0:
                out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
            if progress is not None:
                progress(len(idx))
        return out


class EncoderBackend:
    """ONNX encoder + logistic-regression head; the confidence is the head's top probability."""

    batch_size = 64

    def __init__(self, artifact: Path, card: dict[str, Any]):
        import numpy as np

        head = artifact / HEAD_FILE
        if not head.is_file():
            raise EncoderError(f"{head} is missing (retrain with `goldgate distill --kind encoder`)")
        with np.load(head) as data:
            self.coef, self.intercept = data["coef"], data["intercept"]
            self.classes = [str(c) for c in data["classes"]]
        self.encoder = OnnxEncoder(artifact / ONNX_FILE, artifact / "tokenizer",
                                   max_length=int(card.get("params", {}).get("max_length", 64)))

    def predict_texts(self, texts: list[str]) -> list[tuple[str, float | None]]:
        import numpy as np

        logits = self.encoder.embed(texts) @ self.coef.T + self.intercept
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = exp / exp.sum(axis=1, keepdims=True)
        best = probs.argmax(axis=1)
        return [(self.classes[i], float(probs[row, i])) for row, i in enumerate(best)]
