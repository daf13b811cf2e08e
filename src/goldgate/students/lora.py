"""transformers + peft students: LoRA sequence classification for label slots, and a causal-LM
LoRA path for free-text slots. `base` is any local model directory or Hub id; the code a test runs
on a tiny local BERT/GPT-2 is the code a user runs on a real base model.

The artifact holds the adapter (`adapter/`, with the classification head as a saved module) and
the tokenizer (`tokenizer/`); the base model is named in the card and loaded from where it was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from goldgate.models.bases import base_ref, load_pretrained
from goldgate.models.lora import PROMPT, LoraError
from goldgate.students.dataset import TrainingSet
from goldgate.students.progress import steps

__all__ = ["train_lora_causal", "train_lora_classifier"]


def _train(model: Any, batches: list[dict[str, Any]], *, epochs: int, lr: float, seed: int, label: str,
           progress: bool, loss_fn: Any) -> list[float]:
    """A plain AdamW loop (no Trainer: fewer moving parts, same result); returns mean loss per epoch."""
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = []
    model.train()
    with steps(epochs * len(batches), label, progress) as step:
        for _ in range(epochs):
            total = 0.0
            for i in torch.randperm(len(batches), generator=gen).tolist():
                loss = loss_fn(model, batches[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
                value = loss.item()
                total += value
                step(value)
            history.append(total / max(1, len(batches)))
    model.eval()
    return history


def _lora(model: Any, task: str, r: int, alpha: int, dropout: float, target_modules: Sequence[str] | None) -> Any:
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(task_type=task, r=r, lora_alpha=alpha, lora_dropout=dropout,
                     target_modules=list(target_modules) if target_modules else None)
    try:
        return get_peft_model(model, cfg)
    except ValueError as exc:
        raise LoraError(f"LoRA: {str(exc).splitlines()[0]} (set target_modules for this architecture)") from None


def train_lora_classifier(
    base: str,
    ts: TrainingSet,
    labels: Sequence[str],
    out_dir: Path,
    *,
    epochs: int = 3,
    lr: float = 5e-4,
    batch_size: int = 16,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    max_length: int = 64,
    seed: int = 0,
    target_modules: Sequence[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune a LoRA adapter + classification head; save adapter and tokenizer to `out_dir`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    set_seed(seed)
    label2id = {lab: i for i, lab in enumerate(labels)}
    unknown = sorted({e.target for e in ts.examples} - set(label2id))
    if unknown:
        raise LoraError(f"training targets not in the slot's labels: {', '.join(unknown[:5])}")
    tok = load_pretrained(AutoTokenizer, base)
    model = load_pretrained(AutoModelForSequenceClassification, base, num_labels=len(labels), label2id=label2id,
                  id2label={i: lab for lab, i in label2id.items()})
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    model = _lora(model, "SEQ_CLS", r, alpha, dropout, target_modules)
    batches = []
    for i in range(0, len(ts.examples), batch_size):
        chunk = ts.examples[i : i + batch_size]
        enc = tok([e.text for e in chunk], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc["labels"] = torch.tensor([label2id[e.target] for e in chunk])
        enc["weights"] = torch.tensor([e.weight for e in chunk], dtype=torch.float32)
        batches.append(dict(enc))

    def loss_fn(m: Any, batch: dict[str, Any]) -> Any:
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "weights")}
        logits = m(**inputs).logits
        per = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
        return (per * batch["weights"]).sum() / batch["weights"].sum()

    t0 = time.perf_counter()
    history = _train(model, batches, epochs=epochs, lr=lr, seed=seed, label="LoRA seq-cls", progress=progress,
                     loss_fn=loss_fn)
    train_s = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir / "adapter")
    tok.save_pretrained(out_dir / "tokenizer")
    return {"kind": "peft-seq-cls", "base_model": base_ref(base), "labels": list(labels), "seed": seed,
            "train_s": train_s, "loss_history": history,
            "params": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "r": r, "alpha": alpha,
                       "dropout": dropout, "max_length": max_length,
                       "target_modules": list(target_modules) if target_modules else None}}


def train_lora_causal(
    base: str,
    ts: TrainingSet,
    out_dir: Path,
    *,
    epochs: int = 3,
    lr: float = 5e-4,
    batch_size: int = 8,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    max_length: int = 128,
    max_new_tokens: int = 32,
    seed: int = 0,
    target_modules: Sequence[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune a causal LM with LoRA on `PROMPT + target + eos`, the loss on the target tokens only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    set_seed(seed)
    tok = load_pretrained(AutoTokenizer, base)
    if tok.eos_token is None:
        raise LoraError(f"tokenizer of '{base}' has no eos_token; a causal student needs one to stop")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = load_pretrained(AutoModelForCausalLM, base)
    model = _lora(model, "CAUSAL_LM", r, alpha, dropout, target_modules)
    batches = []
    for i in range(0, len(ts.examples), batch_size):
        rows, targets, weights = [], [], []
        for e in ts.examples[i : i + batch_size]:
            prompt = tok(PROMPT.format(text=e.text), add_special_tokens=False)["input_ids"]
            answer = tok(e.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            ids = (prompt + answer)[:max_length]
            rows.append(ids)
            targets.append(([-100] * len(prompt) + answer)[:max_length])
            weights.append(e.weight)
        width = max(len(x) for x in rows)
        pad = tok.pad_token_id
        batches.append({
            "input_ids": torch.tensor([x + [pad] * (width - len(x)) for x in rows]),
            "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in rows]),
            "labels": torch.tensor([t + [-100] * (width - len(t)) for t in targets]),
            "weights": torch.tensor(weights, dtype=torch.float32),
        })

    def loss_fn(m: Any, batch: dict[str, Any]) -> Any:
        logits = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        gold = batch["labels"][:, 1:]
        per_tok = torch.nn.functional.cross_entropy(logits.transpose(1, 2), gold, reduction="none", ignore_index=-100)
        per_ex = per_tok.sum(1) / (gold != -100).sum(1).clamp(min=1)
        return (per_ex * batch["weights"]).sum() / batch["weights"].sum()

    t0 = time.perf_counter()
    history = _train(model, batches, epochs=epochs, lr=lr, seed=seed, label="LoRA causal-LM", progress=progress,
                     loss_fn=loss_fn)
    train_s = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir / "adapter")
    tok.save_pretrained(out_dir / "tokenizer")
    return {"kind": "peft-causal-lm", "base_model": base_ref(base), "seed": seed, "train_s": train_s,
            "loss_history": history,
            "params": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "r": r, "alpha": alpha,
                       "dropout": dropout, "max_length": max_length, "max_new_tokens": max_new_tokens,
                       "prompt": PROMPT, "target_modules": list(target_modules) if target_modules else None}}
