"""The transformers + peft students on tiny local models (no Hub): train, save, reload, predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("peft")

LABELS = ["card_lost", "exchange_rate", "transfer_failed"]
WORDS = {
    "card_lost": ["i lost my card", "my card was stolen", "card missing help", "someone took my card"],
    "exchange_rate": ["what is the exchange rate", "rate for euros", "currency exchange rate today",
                      "how much is the dollar rate"],
    "transfer_failed": ["my transfer failed", "transfer did not go through", "failed transfer again",
                        "why was my transfer rejected"],
}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def _records() -> list[dict]:
    recs = []
    for label, phrases in WORDS.items():
        for i, phrase in enumerate(phrases):
            for j, tail in enumerate(["", " please", " now", " thanks", " asap"]):
                split = "test" if j == 4 else "train"
                recs.append({"id": f"{split}-{label}-{i}{j}", "inputs": {"text": phrase + tail},
                             "expected": {"label": label}, "metadata": {"split": split},
                             "provenance": {"source": "human", "annotators": ["t"]}})
    return sorted(recs, key=lambda r: r["id"])


def _tokenizer(texts: list[str], out: Path, *, causal: bool):
    """A word-level WordPiece tokenizer over the corpus' words, in sorted order: the tokenizers
    trainer orders tied tokens by hash, so its ids (and every model built on them) changed from
    run to run, and a training test on them was flaky."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t))})
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EOS]"]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(special + words)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre, decoders.WordPiece()
    if not causal:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")),
                                                      ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", eos_token="[EOS]")
    fast.save_pretrained(out)
    return fast


def _project(tmp_path: Path, candidates: str) -> Path:
    (tmp_path / "evals" / "goldens").mkdir(parents=True)
    lines = [json.dumps(r) for r in _records()]
    (tmp_path / "evals" / "goldens" / "tiny.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    (tmp_path / "pyproject.toml").write_text(f"""
[tool.goldgate]
evals = "evals"

[tool.goldgate.slots.router]
use = "llm"
labels = "labels.json"

[tool.goldgate.candidates.llm]
model = "openai/x"
prompt = "p.md"
{candidates}
""")
    return tmp_path


def test_lora_classifier_trains_saves_reloads_and_predicts(tmp_path: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    base = tmp_path / "tiny-bert"
    tok = _tokenizer([r["inputs"]["text"] for r in _records()], base, causal=False)
    torch.manual_seed(0)  # the base is random: fix it so the test is deterministic
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=64)).save_pretrained(base)
    proj = _project(tmp_path, '[tool.goldgate.candidates.student-lora]\ntype = "peft"\nartifact = "artifacts/lora"\n')
    res = subprocess.run(
        [sys.executable, "-m", "goldgate", "distill", "--slot", "router", "--candidate", "student-lora",
         "--goldens", "tiny", "--kind", "lora", "--base", str(base), "--out", "artifacts/lora",
         "--epochs", "25", "--lr", "5e-3", "--batch-size", "8"],
        cwd=proj, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert "training set: 48 examples {'human': 48}" in res.stdout
    assert "before fine-tuning" in res.stdout and "as served (int8 per channel" in res.stdout, res.stdout
    art = proj / "artifacts" / "lora"
    card = json.loads((art / "card.json").read_text())
    assert card["kind"] == "lora-encoder" and card["base_model"] == str(base.resolve())
    assert card["loss_history"][-1] < card["loss_history"][0]
    assert card["params"]["init"].startswith("linear probe") and card["val_accuracy_served"] is not None
    assert (art / "encoder.onnx").is_file() and (art / "head.npz").is_file()
    assert (art / "tokenizer" / "tokenizer.json").is_file()
    assert "Training data" in (art / "model_card.md").read_text()

    from goldgate.config import load_config
    from goldgate.models.load import model_for_candidate

    model = model_for_candidate(load_config(proj), "router", "student-lora")
    test = [r for r in _records() if r["metadata"]["split"] == "test"]
    preds = model.predict_many([r["inputs"] for r in test])
    assert all(p.ok and p.label in LABELS and 0 < p.confidence <= 1 for p in preds)
    acc = sum(p.label == r["expected"]["label"] for p, r in zip(preds, test)) / len(test)
    assert acc >= 0.75
    again = model_for_candidate(load_config(proj), "router", "student-lora").predict(test[0]["inputs"])
    assert again.label == preds[0].label


def test_causal_lora_learns_free_text_and_reloads(tmp_path: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from goldgate.models.lora import LoraCausalBackend
    from goldgate.students.dataset import Example, TrainingSet
    from goldgate.students.lora import train_lora_causal

    pairs = [("i lost my card", "card lost"), ("my transfer failed", "transfer failed"),
             ("what is the exchange rate", "exchange rate")]
    base = tmp_path / "tiny-gpt2"
    tok = _tokenizer([t for p in pairs for t in p] + ["### Input: Output:"], base, causal=True)
    # A wider init stands in for pretraining: with std 0.02 tied embeddings, a frozen random base
    # cannot produce confident logits whatever the adapter learns.
    torch.manual_seed(0)  # as above; 40 epochs at 5e-3 got all three right for 20/20 base seeds
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=2, n_head=2, n_positions=64,
                               initializer_range=0.3, eos_token_id=tok.eos_token_id,
                               bos_token_id=tok.eos_token_id)).save_pretrained(base)
    ts = TrainingSet([Example(f"e{i}", x, y, "human") for i, (x, y) in enumerate(pairs * 4)], "test", "0" * 64)
    out = tmp_path / "art"
    trained = train_lora_causal(str(base), ts, out, epochs=40, lr=5e-3, batch_size=4, r=8, max_new_tokens=6,
                                target_modules=["c_attn", "c_proj", "c_fc"], dropout=0.0, progress=False)
    assert trained["loss_history"][-1] < 0.5 * trained["loss_history"][0]
    backend = LoraCausalBackend(out, trained)
    outs = [text for text, _ in backend.predict_texts([x for x, _ in pairs])]
    assert sum(o == y for o, (_, y) in zip(outs, pairs)) >= 2, outs


def test_lora_classifier_early_stopping_restores_the_best_epoch(tmp_path: Path) -> None:
    """A validation slice carved from train (seeded) stops training after `patience` epochs
    without gain; the saved adapter is the best epoch's, trained through accelerate."""
    import torch
    from transformers import BertConfig, BertModel

    from goldgate.models.encoder import EncoderBackend
    from goldgate.students.dataset import Example, TrainingSet
    from goldgate.students.lora import train_lora_classifier

    base = tmp_path / "tiny-bert"
    tok = _tokenizer([r["inputs"]["text"] for r in _records()], base, causal=False)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=64)).save_pretrained(base)
    train = [r for r in _records() if r["metadata"]["split"] == "train"]
    ts = TrainingSet([Example(r["id"], r["inputs"]["text"], r["expected"]["label"], "human") for r in train],
                     "test", "0" * 64)
    out = tmp_path / "art"
    card = train_lora_classifier(str(base), ts, LABELS, out, epochs=60, lr=5e-3, head_lr=2e-2, batch_size=8,
                                 val_fraction=0.25, patience=2, progress=False)
    assert card["params"]["val_size"] == 12 and card["device"] == "cpu"
    assert len(card["val_history"]) < 60, "never stopped early"
    best = card["best_epoch"]
    assert best == _replay_best([(v["accuracy"], v["loss"]) for v in card["val_history"]])
    assert len(card["val_history"]) == best + 3  # epoch 0 (the linear probe), the best, `patience` more
    backend = EncoderBackend(out, card)
    val_acc = card["val_history"][best]["accuracy"]
    assert val_acc >= 0.75
    test = [r for r in _records() if r["metadata"]["split"] == "test"]
    outs = backend.predict_texts([r["inputs"]["text"] for r in test])
    assert sum(lab == r["expected"]["label"] for (lab, _), r in zip(outs, test)) / len(test) >= 0.75


def _replay_best(scores: list[tuple[float, float]]) -> int:
    from goldgate.students.lora import _improves

    best = 0
    for i, sc in enumerate(scores):
        if _improves(sc, scores[best]):
            best = i
    return best


@pytest.mark.parametrize(("script", "scored", "best_epoch"), [
    # the loss falls, then rises (while accuracy still creeps up): stop `patience` epochs after the best
    ([(0.5, 1.0), (0.6, 0.9), (0.7, 0.8), (0.72, 0.85), (0.75, 0.9), (0.9, 0.1)], 5, 2),
    # the loss only creeps down (< MIN_LOSS_DELTA): a plateau, not progress; the start is kept
    ([(0.5, 1.0), (0.5, 0.9999), (0.5, 0.9998), (0.5, 0.5)], 3, 0),
    # never plateaus: all epochs run, the last is the best
    ([(0.1, 1.0), (0.2, 0.9), (0.3, 0.8)], 3, 2),
])
def test_early_stopping_rule_and_restore(script, scored, best_epoch) -> None:
    """The stop rule on scripted validation scores (the first scores the starting weights, epoch
    0), and the weights that come back are the best epoch's (not the last one's), on a model small
    enough to check every parameter."""
    import torch

    from goldgate.students.lora import _train

    model = torch.nn.Linear(2, 2)
    batches = [{"x": torch.ones(4, 2), "y": torch.zeros(4, dtype=torch.long)}]
    weights: list[torch.Tensor] = []

    def validate(m):
        weights.append(m.weight.detach().clone())
        return script[len(weights) - 1]

    def loss_fn(m, b):
        return torch.nn.functional.cross_entropy(m(b["x"]), b["y"])

    run = _train(model, batches, epochs=len(script) - 1, lr=0.1, seed=0, label="t", progress=False,
                 loss_fn=loss_fn, validate=validate, patience=2)
    assert len(run["val_history"]) == scored and run["best_epoch"] == best_epoch
    assert torch.equal(model.weight, weights[best_epoch])
    assert not torch.equal(weights[best_epoch], weights[-1]) or best_epoch == scored - 1


def test_two_label_slot_starts_from_a_working_probe(tmp_path: Path) -> None:
    """With two labels sklearn's logistic regression keeps one row; the head must still score both
    labels, so the probe (epoch 0) is already right on the held-out slice, the third label never wins."""
    import torch
    from transformers import BertConfig, BertModel

    from goldgate.models.encoder import EncoderBackend
    from goldgate.students.dataset import Example, TrainingSet
    from goldgate.students.lora import train_lora_classifier

    base = tmp_path / "tiny-bert"
    tok = _tokenizer([r["inputs"]["text"] for r in _records()], base, causal=False)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=64)).save_pretrained(base)
    two = [r for r in _records() if r["expected"]["label"] != "transfer_failed"]
    train = [r for r in two if r["metadata"]["split"] == "train"]
    ts = TrainingSet([Example(r["id"], r["inputs"]["text"], r["expected"]["label"], "human") for r in train],
                     "test", "0" * 64)
    card = train_lora_classifier(str(base), ts, LABELS, tmp_path / "art", epochs=1, lr=1e-3, batch_size=8,
                                 val_fraction=0.25, progress=False)
    assert card["val_history"][0]["accuracy"] >= 0.75
    test = [r for r in two if r["metadata"]["split"] == "test"]
    outs = EncoderBackend(tmp_path / "art", card).predict_texts([r["inputs"]["text"] for r in test])
    assert {lab for lab, _ in outs} <= {"card_lost", "exchange_rate"}
    assert sum(lab == r["expected"]["label"] for (lab, _), r in zip(outs, test)) / len(test) >= 0.75
