"""P4: the sklearn student on Banking77 — accuracy on the test split and training time on this machine.

Runs `goldgate.students.train.distill` (the pipeline `goldgate distill` runs) for:
  1. the 10k human labels of the train pool (target: test accuracy ≥ 0.90 in ≤ 60 s on 2 CPUs);
  2. a mix: 1k human labels + 9k pure labels from the simulated LLM (`goldgate sim`, cached calls);
and a baseline measured in the same run: TF-IDF + LogisticRegression (the reference in environment.md).
Usage: python bench/bench_distill.py [--no-mix] [--no-baseline]
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
    ap.add_argument("--no-mix", action="store_true", help="skip the 1k human + 9k sim-LLM run")
    ap.add_argument("--no-baseline", action="store_true", help="skip the LogisticRegression baseline")
    args = ap.parse_args()
    from goldgate.cli.demo import sim_settings
    from goldgate.config import load_config
    from goldgate.goldens.records import load_goldens
    from goldgate.sim.process import SimProcess

    config = load_config(ROOT)
    golden = load_goldens(config.path("evals/goldens/banking77.jsonl"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        acc, wall, card = run(config, golden, out, "human-10k")
        rows.append(("10k human labels", acc, wall, card))
        if not args.no_mix:
            with SimProcess(sim_settings(config)) as sim:
                os.environ["GOLDGATE_SIM_URL"] = sim.url
                acc, wall, card = run(config, golden, out, "mix", human_size=1000, pool_split="train", pool_size=9000)
            rows.append(("1k human + 9k sim-LLM", acc, wall, card))
    print(f"{'training data':<24} {'test acc':>8} {'acc/0.90':>8} {'train s':>8} {'60s/train':>9} "
          f"{'wall s':>7} {'req/s':>8}  counts")
    for label, acc, wall, card in rows:
        print(f"{label:<24} {acc:8.4f} {acc / TARGET_ACC:8.3f} {card['train_s']:8.1f} "
              f"{TARGET_S / card['train_s']:9.1f} {wall:7.1f} {card['speed']['throughput_rps']:8.0f}  "
              f"{card['data']['counts']}")
    if not args.no_baseline:
        acc, wall = baseline(golden)
        print(f"{'baseline: TF-IDF + LR':<24} {acc:8.4f} {acc / TARGET_ACC:8.3f} {wall:8.1f} {TARGET_S / wall:9.1f}"
              f"   (student train-time speed-up vs baseline: {wall / rows[0][3]['train_s']:.1f}×)")
    p4 = rows[0][1] >= TARGET_ACC and rows[0][3]["train_s"] <= TARGET_S
    print(f"P4 (10k human labels: ≥ {TARGET_ACC} accuracy in ≤ {TARGET_S:.0f} s): {'PASS' if p4 else 'FAIL'}"
          f" on {rows[0][3]['speed']['hardware']}")
    return 0 if p4 else 1


if __name__ == "__main__":
    sys.exit(main())
