"""P4 / P4b: students on Banking77 — test accuracy, training time and serving speed on this machine.

Runs `goldgate.students.train.distill` (the pipeline `goldgate distill` runs) for each student kind
(`--kinds`, default sklearn; P4b adds `encoder` and `lora` over the pinned MiniLM base) on:
  1. the 10k human labels of the train pool;
  2. a mix: 1k human labels + 9k pure labels from the simulated LLM (`goldgate sim`, cached calls);
and a baseline measured in the same run: TF-IDF + LogisticRegression (the reference in environment.md).
P4: sklearn ≥ 0.90 in ≤ 60 s. P4b: encoder ≥ 0.925 and lora ≥ 0.93, each above the TF-IDF student of
the same run, the encoder serving ≥ 500 predictions/s (ONNX Runtime, batched).
Usage: python bench/bench_distill.py [--kinds sklearn,encoder,lora] [--no-mix] [--no-baseline]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():
    os.environ.setdefault(_k, _v)

ROOT = Path(__file__).resolve().parents[1]
TARGET_ACC, TARGET_S = 0.90, 60.0
P4B_ACC = {"encoder": 0.925, "lora": 0.93}
P4B_RPS = 500.0
BASE = "minilm"


def accuracy(artifact: Path, card: dict, test: list) -> float:
    from goldgate.models.student import load_backend

    preds = load_backend(artifact, card).predict_texts([c.inputs["text"] for c in test])
    return sum(p == c.expected["label"] for (p, _), c in zip(preds, test)) / len(test)


def run(config, golden, out: Path, name: str, **spec_kw) -> tuple[float, float, dict]:
    from goldgate.students.train import DistillSpec, distill

    t0 = time.perf_counter()
    res = distill(config, golden, DistillSpec(slot="router", candidate=name, out=out / name, progress=False, **spec_kw))
    wall = time.perf_counter() - t0
    acc = accuracy(res.artifact, res.card, golden.split("test"))
    return acc, wall, res.card


def serving_speed(artifact: Path, card: dict, test: list) -> dict[int, dict]:
    """The encoder's serving speed with 1 and 2 ONNX Runtime threads, all 3,080 test texts: the card
    holds the speed at `compute_threads()` (1 on 2-CPU machines, for a shared box); a serving box
    with both cores to itself uses 2."""
    from goldgate.models.student import load_backend
    from goldgate.students.speed import measure_speed

    out, before = {}, os.environ.get("GOLDGATE_THREADS")
    try:
        for threads in (1, 2):
            os.environ["GOLDGATE_THREADS"] = str(threads)
            backend = load_backend(artifact, card)
            out[threads] = measure_speed(backend.predict_texts, [c.inputs["text"] for c in test], batch_size=64)
    finally:
        if before is None:
            os.environ.pop("GOLDGATE_THREADS", None)
        else:
            os.environ["GOLDGATE_THREADS"] = before
    return out


def baseline(golden) -> tuple[float, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    train, test = golden.split("train"), golden.split("test")
    t0 = time.perf_counter()
    pipe = make_pipeline(make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
                         LogisticRegression(C=20, max_iter=1000))
    pipe.fit([c.inputs["text"] for c in train], [c.expected["label"] for c in train])
    wall = time.perf_counter() - t0
    pred = pipe.predict([c.inputs["text"] for c in test])
    return sum(p == c.expected["label"] for p, c in zip(pred, test)) / len(test), wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="sklearn", help="comma-separated student kinds (sklearn,encoder,lora)")
    ap.add_argument("--no-mix", action="store_true", help="skip the 1k human + 9k sim-LLM run")
    ap.add_argument("--no-baseline", action="store_true", help="skip the LogisticRegression baseline")
    args = ap.parse_args()
    from goldgate.cli.demo import sim_settings
    from goldgate.config import load_config
    from goldgate.goldens.records import load_goldens
    from goldgate.sim.process import SimProcess

    config = load_config(ROOT)
    golden = load_goldens(config.path("evals/goldens/banking77.jsonl"))
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if "sklearn" not in kinds:
        kinds.insert(0, "sklearn")  # P4b compares against the TF-IDF student of the same run
    rows, enc_speed = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for kind in kinds:
            kw = {"kind": kind, "base": None if kind == "sklearn" else BASE}
            acc, wall, card = run(config, golden, out, f"{kind}-human-10k", **kw)
            rows.append((kind, "10k human labels", acc, wall, card))
            print(_row(*rows[-1]), flush=True)
            if kind == "encoder":
                enc_speed = serving_speed(out / f"{kind}-human-10k", card, golden.split("test"))
            if card.get("val_history"):
                accs = ", ".join(f"{e['accuracy']:.3f}" for e in card["val_history"])
                print(f"  {kind} validation accuracy by epoch (0 = before fine-tuning): "
                      f"{accs}; epoch {card['best_epoch']} kept; "
                      f"served {card.get('val_accuracy_served')}", flush=True)
            if not args.no_mix:
                with SimProcess(sim_settings(config)) as sim:
                    os.environ["GOLDGATE_SIM_URL"] = sim.url
                    acc, wall, card = run(config, golden, out, f"{kind}-mix", human_size=1000, pool_split="train",
                                          pool_size=9000, **kw)
                rows.append((kind, "1k human + 9k sim-LLM", acc, wall, card))
                print(_row(*rows[-1]), flush=True)
    print(f"\n{'student':<8} {'training data':<24} {'test acc':>8} {'train s':>8} {'wall s':>7} {'req/s':>8} "
          f"{'p95 ms':>7}  counts")
    for row in rows:
        print(_row(*row))
    if not args.no_baseline:
        acc, wall = baseline(golden)
        print(f"{'baseline: TF-IDF + LR':<33} {acc:8.4f} {wall:8.1f}")
    for threads, sp in enc_speed.items():
        print(f"encoder serving with {threads} ONNX Runtime thread(s): {sp['throughput_rps']:.0f} req/s in batches of "
              f"{sp['batch_size']}; single requests p50 {sp['latency_p50_ms']:.2f} ms, p95 {sp['latency_p95_ms']:.2f} ms")
    human = {kind: (acc, card) for kind, label, acc, _, card in rows if label == "10k human labels"}
    sk_acc, sk_card = human["sklearn"]
    p4 = sk_acc >= TARGET_ACC and sk_card["train_s"] <= TARGET_S
    print(f"P4 (sklearn, 10k human labels: ≥ {TARGET_ACC} accuracy in ≤ {TARGET_S:.0f} s): {'PASS' if p4 else 'FAIL'}"
          f" on {sk_card['speed']['hardware']}")
    ok = p4
    for kind, target in P4B_ACC.items():
        if kind not in human:
            continue
        acc, card = human[kind]
        rps = max([card["speed"]["throughput_rps"], *(sp["throughput_rps"] for sp in enc_speed.values())]
                  if kind == "encoder" else [card["speed"]["throughput_rps"]])
        passed = acc >= target and acc > sk_acc and (kind != "encoder" or rps >= P4B_RPS)
        ok = ok and passed
        print(f"P4b ({kind}: ≥ {target} and above TF-IDF {sk_acc:.4f}"
              f"{f', ≥ {P4B_RPS:.0f} req/s' if kind == 'encoder' else ''}): {acc:.4f}, {rps:.0f} req/s, "
              f"{acc / target:.3f}× target → {'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


def _row(kind: str, label: str, acc: float, wall: float, card: dict) -> str:
    sp = card["speed"]
    return (f"{kind:<8} {label:<24} {acc:8.4f} {card['train_s']:8.1f} {wall:7.1f} {sp['throughput_rps']:8.0f} "
            f"{sp['latency_p95_ms']:7.2f}  {card['data']['counts']}")

if __name__ == "__main__":
    sys.exit(main())
