"""transformers + peft students: LoRA sequence classification for label slots, and a causal-LM
LoRA path for free-text slots. `base` is any local model directory or Hub id; the code a test runs
on a tiny local BERT/GPT-2 is the code a user runs on a real base model.

The artifact holds the adapter (`adapter/`, with the classification head as a saved module) and
the tokenizer (`tokenizer/`); the base model is named in the card and loaded from where it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from goldgate.machine import compute_threads
from goldgate.models.bases import base_ref, load_pretrained
from goldgate.models.lora import PROMPT, LoraError
from goldgate.students.dataset import TrainingSet
from goldgate.students.progress import steps

__all__ = ["train_lora_causal", "train_lora_classifier"]


def _train(model: Any, batches: list[dict[str, Any]], *, epochs: int, lr: float, seed: int, label: str,
           progress: bool, loss_fn: Any, head_lr: float | None = None,
           validate: Callable[[Any], tuple[float, float]] | None = None, patience: int = 2) -> dict[str, Any]:
    """A plain AdamW loop (no Trainer: fewer moving parts) run through `accelerate`, so the same
    code uses the CPU here and one or more GPUs where present (`accelerate launch` shards the
    batches over processes). The new head may learn faster than the adapter (`head_lr`). With
    `validate` (→ accuracy, loss on a held-out slice), training stops after `patience` epochs
    without improvement and the best epoch's weights are restored. An improvement is a higher
    accuracy, or the same accuracy with a loss lower by more than `MIN_LOSS_DELTA`: without the
    threshold, a loss creeping down by 1e-5 an epoch kept a plateaued run going to the last epoch."""
    import torch
    from accelerate import Accelerator

    torch.set_num_threads(compute_threads())
    acc = Accelerator()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = [p for n, p in trainable if head_lr is not None and _is_head(n)]
    groups = [{"params": [p for n, p in trainable if not (head_lr is not None and _is_head(n))], "lr": lr}]
    if head:
        groups.append({"params": head, "lr": head_lr})
    model, opt = acc.prepare(model, torch.optim.AdamW(groups, lr=lr))
    mine = batches[: len(batches) - len(batches) % acc.num_processes][acc.process_index :: acc.num_processes]
    gen = torch.Generator().manual_seed(seed)
    history: list[float] = []
    val_history: list[dict[str, float]] = []
    best: tuple[tuple[float, float], int, dict[str, Any]] | None = None  # (acc, loss), epoch, weights
    with steps(epochs * len(mine), label, progress and acc.is_main_process) as step:
        for epoch in range(epochs):
            model.train()
            total = 0.0
            for i in torch.randperm(len(mine), generator=gen).tolist():
                loss = loss_fn(model, {k: v.to(acc.device) for k, v in mine[i].items()})
                opt.zero_grad()
                acc.backward(loss)
                opt.step()
                value = loss.item()
                total += value
                step(value)
            history.append(total / max(1, len(mine)))
            if validate is None:
                continue
            model.eval()
            v_acc, v_loss = validate(model)
            val_history.append({"accuracy": v_acc, "loss": v_loss})
            if best is None or _improves((v_acc, v_loss), best[0]):
                state = {n: p.detach().clone() for n, p in acc.unwrap_model(model).named_parameters() if p.requires_grad}
                best = ((v_acc, v_loss), epoch, state)
            elif epoch - best[1] >= patience:
                break
    model = acc.unwrap_model(model)
    if best is not None:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in best[2]:
                    p.copy_(best[2][n])
    model.eval()
    return {"loss_history": history, "val_history": val_history, "best_epoch": None if best is None else best[1] + 1,
            "device": str(acc.device), "processes": acc.num_processes}


MIN_LOSS_DELTA = 1e-3


def _improves(score: tuple[float, float], best: tuple[float, float]) -> bool:
    """(accuracy, loss) beats the best so far: more accurate, or as accurate and clearly less lossy."""
    return score[0] > best[0] or (score[0] == best[0] and score[1] < best[1] - MIN_LOSS_DELTA)


def _is_head(name: str) -> bool:
    """The classification head peft keeps trainable in full (`modules_to_save`), not the adapter."""
    return "modules_to_save" in name or name.split(".")[-2:-1] in (["classifier"], ["score"])


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
    head_lr: float | None = None,
    batch_size: int = 16,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    max_length: int = 64,
    val_fraction: float = 0.0,
    patience: int = 2,
    seed: int = 0,
    target_modules: Sequence[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune a LoRA adapter + classification head; save adapter and tokenizer to `out_dir`.
    With `val_fraction`, a seeded slice of the training set is held out for early stopping."""
    import random

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
    examples = list(ts.examples)
    random.Random(seed).shuffle(examples)
    n_val = int(len(examples) * val_fraction)
    val, train = examples[:n_val], examples[n_val:]

    def batched(rows: list[Any]) -> list[dict[str, Any]]:
        out = []
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            enc = tok([e.text for e in chunk], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
            enc["labels"] = torch.tensor([label2id[e.target] for e in chunk])
            enc["weights"] = torch.tensor([e.weight for e in chunk], dtype=torch.float32)
            out.append(dict(enc))
        return out

    def loss_fn(m: Any, batch: dict[str, Any]) -> Any:
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "weights")}
        logits = m(**inputs).logits
        per = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
        return (per * batch["weights"]).sum() / batch["weights"].sum()

    val_batches = batched(val)

    def validate(m: Any) -> tuple[float, float]:
        right, loss = 0, 0.0
        device = next(m.parameters()).device
        with torch.no_grad():
            for b in val_batches:
                b = {k: v.to(device) for k, v in b.items()}
                inputs = {k: v for k, v in b.items() if k not in ("labels", "weights")}
                logits = m(**inputs).logits
                right += int((logits.argmax(-1) == b["labels"]).sum())
                loss += float(torch.nn.functional.cross_entropy(logits, b["labels"], reduction="sum"))
        return right / len(val), loss / len(val)

    t0 = time.perf_counter()
    run = _train(model, batched(train), epochs=epochs, lr=lr, seed=seed, label="LoRA seq-cls", progress=progress,
                 loss_fn=loss_fn, head_lr=head_lr, validate=validate if val else None, patience=patience)
    train_s = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir / "adapter")
    tok.save_pretrained(out_dir / "tokenizer")
    return {"kind": "peft-seq-cls", "base_model": base_ref(base), "labels": list(labels), "seed": seed,
            "train_s": train_s, **run,
            "params": {"epochs": epochs, "lr": lr, "head_lr": head_lr, "batch_size": batch_size, "r": r,
                       "alpha": alpha, "dropout": dropout, "max_length": max_length, "val_fraction": val_fraction,
                       "val_size": len(val), "patience": patience,
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
    run = _train(model, batches, epochs=epochs, lr=lr, seed=seed, label="LoRA causal-LM", progress=progress,
                 loss_fn=loss_fn)
    train_s = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir / "adapter")
    tok.save_pretrained(out_dir / "tokenizer")
    return {"kind": "peft-causal-lm", "base_model": base_ref(base), "seed": seed, "train_s": train_s,
            **run,
            "params": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "r": r, "alpha": alpha,
                       "dropout": dropout, "max_length": max_length, "max_new_tokens": max_new_tokens,
                       "prompt": PROMPT, "target_modules": list(target_modules) if target_modules else None}}
