"""Export a transformers encoder, with mean pooling and L2 normalisation built in, to ONNX.

Serving through ONNX Runtime instead of torch: graph-level fusion makes a small encoder several
times faster per CPU thread, and an app that serves the student needs neither torch nor
transformers. The same exported graph embeds the training texts, so training and serving see
identical features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goldgate.models.bases import load_pretrained

__all__ = ["export_encoder"]


def export_encoder(base: str, out: Path) -> None:
    """Write `base`'s encoder (+ pooling) to `out` with dynamic batch and sequence axes."""
    import torch
    from transformers import AutoModel

    # eager attention exports as plain MatMul/Softmax, which ONNX Runtime fuses; sdpa does not
    model = load_pretrained(AutoModel, base, attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "seq"}
    with torch.no_grad():
        torch.onnx.export(Pooled(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)
