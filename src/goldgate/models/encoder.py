"""Serving the `encoder` and `lora` students: a sentence encoder run by ONNX Runtime, mean-pooled and
L2-normalised embeddings, and a linear head (multinomial logistic regression) in numpy.

The artifact is self-contained for serving: `encoder.onnx` (exported by `goldgate.models.onnx`),
`tokenizer/tokenizer.json` (read by the `tokenizers` library) and `head.npz` (weights, no pickle),
so an app serving it needs onnxruntime, tokenizers and numpy, not torch or transformers.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
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
    """Texts → L2-normalised mean-pooled embeddings, one text per ONNX Runtime call.

    One at a time on purpose. Measured on the 2-CPU VMs goldgate is built on, MiniLM int8 ran 514
    texts/s per thread one by one, 422 in sub-batches of 4 and 220–240 in batches of 32 (larger
    activations fall out of the CPU caches; no padding at all helps too). And int8 dynamic
    quantization computes its activation scale per call, so in a batch a text's embedding depends
    on its neighbours (up to 0.03 apart): alone, a text gets the same answer however it was
    batched, sharded or cached. With `compute_threads()` > 1 texts run side by side, one ONNX
    Runtime thread each (the session releases the GIL): 1,047 texts/s on 2 CPUs, where one
    session with two intra-op threads managed 450–640 (too little work per operator to split)."""

    def __init__(self, onnx_path: Path, tokenizer_dir: Path, *, max_length: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        for need in (onnx_path, tokenizer_dir / "tokenizer.json"):
            if not need.is_file():
                raise EncoderError(f"{need} is missing (retrain the student with `goldgate distill`)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.with_token_types = "token_type_ids" in {i.name for i in self.session.get_inputs()}
        self.tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        self.tok.enable_truncation(max_length)
        self.tok.no_padding()
        self.workers = compute_threads()
        self._pool: ThreadPoolExecutor | None = None

    def _run(self, enc: Any) -> Any:
        import numpy as np

        ids = np.array([enc.ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if self.with_token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return self.session.run(None, feeds)[0][0]

    def embed(self, texts: list[str], progress: Any = None) -> Any:
        import numpy as np

        encs = self.tok.encode_batch(texts)
        if self.workers > 1 and len(encs) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="goldgate-onnx")
            results: Iterable[Any] = self._pool.map(self._run, encs)
        else:
            results = map(self._run, encs)
        rows = []
        for emb in results:
            rows.append(emb)
            if progress is not None:
                progress(1)
        return np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, 0), dtype=np.float32)


class EncoderBackend:
    """ONNX encoder + logistic-regression head; the confidence is the head's top probability."""

    batch_size = 64

    def __init__(self, artifact: Path, card: dict[str, Any]):
        import numpy as np

        head = artifact / HEAD_FILE
        if not head.is_file():
            raise EncoderError(f"{head} is missing (retrain the student with `goldgate distill`)")
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
