"""P7 and the label forecast: simulated labelling with the TF-IDF student.

1. Banking77 train split with its labels hidden: start from 500 human labels (seeded), add batches of
   250 picked by goldgate's selector (`goldgate.students.select`, as `goldgate plan --select`) or at
   random, up to 3,000; test accuracy after every batch, 3 seeds. P7: the selector reaches the random
   curve's final (3,000-label) accuracy with ≤ 70% of the labels.
2. Forecast check: the learning curve of the first 1,000 random labels predicts the accuracy at 3,000
   (`goldgate.decide.forecast.predict_at`, 95% bootstrap interval); the student is then trained on
   3,000 labels that extend those 1,000. Banking77 and HWU64 (xliuhw/NLU-Evaluation-Data, CC BY 4.0:
   fold 1 of its 10-fold split, 9,960 train / 1,076 test, 64 intents), 3 seeds each.
3. On Banking77, the forecast of the human labels the student needs to clear the swap rule against the
   simulated LLM (`goldgate sim`, accuracy 0.87 as in the repo config), made from 1,000 labels.
Usage: nice python bench/bench_annotate.py [--hwu64 DIR_WITH_train.csv_test.csv | --hwu64-mirror GIT_DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():
    os.environ.setdefault(_k, _v)

ROOT = Path(__file__).resolve().parents[1]
START, BATCH, STOP, SEEDS = 500, 250, 3000, (0, 1, 2)
HWU_FOLD = "CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation/KFold_1/testset/csv"
HWU_TRAIN = ("CrossValidation/out4WatsonReal/Watson_2018_03_22-13_01_25_169_trainset/CrossValidation/KFold_1/"
             "merged/intents/WatsonNluIntentsMerged_2018_03_22-13_01_25_169.csv")


def banking77() -> tuple[list, list]:
    from goldgate.goldens.records import load_goldens
    from goldgate.students.dataset import Example, golden_examples

    golden = load_goldens(ROOT / "evals/goldens/banking77.jsonl")
    train = golden_examples(golden, input_field="text", target_field="label")
    test = [Example(c.id, c.inputs["text"], c.expected["label"], "human") for c in golden.split("test")]
    return train, test


def hwu64_from_mirror(git_dir: Path) -> tuple[list, list]:
    from goldgate.students.dataset import Example

    def show(path: str) -> str:
        return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"HEAD:{path}"], check=True,
                              capture_output=True, text=True).stdout

    train = [Example(f"hwu-train-{i:05d}", row[0], row[1], "human")
             for i, row in enumerate(csv.reader(io.StringIO(show(HWU_TRAIN)))) if len(row) == 2]
    names = subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "--name-only", f"HEAD:{HWU_FOLD}"],
                           check=True, capture_output=True, text=True).stdout.split()
    test = []
    for name in names:
        for row in csv.DictReader(io.StringIO(show(f"{HWU_FOLD}/{name}")), delimiter=";"):
            test.append(Example(f"hwu-test-{row['answerid']}", row["answer_from_anno"],
                                f"{row['scenario']}_{row['intent']}", "human"))
    return train, test


def hwu64_from_dir(d: Path) -> tuple[list, list]:
    from goldgate.students.dataset import Example

    def read(name: str) -> list:
        with (d / name).open(encoding="utf-8") as fh:
            return [Example(f"hwu-{name}-{i}", r["text"], r["label"], "human") for i, r in enumerate(csv.DictReader(fh))]

    return read("train.csv"), read("test.csv")


def accuracy(model, test) -> float:
    return float(np.mean(np.asarray(model.predict([e.text for e in test]), dtype=object)
                         == np.asarray([e.target for e in test], dtype=object)))


def simulate(train, test, seed: int, strategy: str) -> list[tuple[int, float]]:
    """Labels revealed batch by batch; the pool is the rest of train with its labels hidden."""
    from goldgate.students.curve import fit_student
    from goldgate.students.select import select_batch

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    labelled = set(order[:START].tolist())
    curve = []
    while True:
        model = fit_student([train[i] for i in sorted(labelled)], seed=seed)
        curve.append((len(labelled), accuracy(model, test)))
        if len(labelled) >= STOP:
            return curve
        pool = [i for i in order if i not in labelled]
        if strategy == "random":
            picked = pool[:BATCH]
        else:
            picks = select_batch(model, [(str(i), train[i].text) for i in pool], BATCH)
            picked = [int(p.id) for p in picks]
        assert not labelled & set(picked)
        labelled.update(picked)


def forecast_check(train, test, seed: int) -> dict:
    from goldgate.decide.forecast import predict_at
    from goldgate.students.curve import fit_student, learning_curve

    rng = np.random.default_rng(100 + seed)
    order = rng.permutation(len(train))
    first = [train[i] for i in order[:1000]]
    curve = learning_curve(first, [e.text for e in test], [e.target for e in test], repeats=3, seed=seed)
    point, lo, hi = predict_at(curve.sizes, curve.correct, STOP, boot=400, seed=seed)
    actual = accuracy(fit_student([train[i] for i in order[:STOP]], seed=seed), test)
    return {"seed": seed, "acc_1000": float(curve.correct[-1].mean()), "predicted": point, "lo": lo, "hi": hi,
            "actual": actual, "inside": lo <= actual <= hi}


def llm_correct_banking77(test) -> np.ndarray:
    from goldgate.cli.demo import sim_settings
    from goldgate.config import load_config
    from goldgate.models.load import model_for_candidate
    from goldgate.sim.process import SimProcess

    config = load_config(ROOT)
    with SimProcess(sim_settings(config)) as sim:
        os.environ["GOLDGATE_SIM_URL"] = sim.url
        preds = model_for_candidate(config, "router", "sim-llm").predict_many([{"text": e.text} for e in test])
    return np.array([p.ok and p.label == e.target for p, e in zip(preds, test)], dtype=bool)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hwu64", type=Path, help="folder with train.csv / test.csv (text,label)")
    ap.add_argument("--hwu64-mirror", type=Path, help="git dir of xliuhw/NLU-Evaluation-Data")
    ap.add_argument("--skip-p7", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    b_train, b_test = banking77()
    ok = True
    if not args.skip_p7:
        curves = {s: [simulate(b_train, b_test, seed, s) for seed in SEEDS] for s in ("selector", "random")}
        ns = [n for n, _ in curves["random"][0]]
        mean = {s: np.mean([[a for _, a in c] for c in cs], axis=0) for s, cs in curves.items()}
        print(f"Banking77, test accuracy (mean of seeds {SEEDS}; per-seed in brackets), {time.perf_counter() - t0:.0f} s")
        print(f"{'labels':>7} {'random':>8} {'selector':>9}")
        for i, n in enumerate(ns):
            per = {s: "/".join(f"{c[i][1]:.3f}" for c in cs) for s, cs in curves.items()}
            print(f"{n:7d} {mean['random'][i]:8.4f} {mean['selector'][i]:9.4f}   [{per['random']}] [{per['selector']}]")
        final = mean["random"][-1]
        reach = next((n for n, a in zip(ns, mean["selector"]) if a >= final), None)
        ratio = None if reach is None else reach / STOP
        p7 = ratio is not None and ratio <= 0.70
        ok &= p7
        print(f"P7: selector reaches the random curve's final accuracy {final:.4f} at {reach} labels "
              f"({'—' if ratio is None else f'{ratio:.0%}'} of {STOP}; target ≤ 70%): {'PASS' if p7 else 'FAIL'}")
    sets = {"Banking77": (b_train, b_test)}
    if args.hwu64:
        sets["HWU64"] = hwu64_from_dir(args.hwu64)
    elif args.hwu64_mirror:
        sets["HWU64"] = hwu64_from_mirror(args.hwu64_mirror)
    print("\nforecast from the first 1,000 random labels vs the accuracy at 3,000 (95% bootstrap interval)")
    for name, (train, test) in sets.items():
        rows = [forecast_check(train, test, seed) for seed in SEEDS]
        for r in rows:
            print(f"  {name:<9} seed {r['seed']}: acc@1000 {r['acc_1000']:.4f}; predicted @3000 {r['predicted']:.4f} "
                  f"[{r['lo']:.4f}, {r['hi']:.4f}], actual {r['actual']:.4f} -> {'inside' if r['inside'] else 'OUTSIDE'}")
        inside = sum(r["inside"] for r in rows)
        print(f"  {name}: {inside}/{len(rows)} inside ({len(train)} train / {len(test)} test)")
        ok &= inside == len(rows)
    print("\nBanking77: labels the student needs to clear the swap rule vs the simulated LLM, forecast from 1,000")
    from goldgate.decide.forecast import forecast
    from goldgate.students.curve import fit_student, learning_curve

    llm = llm_correct_banking77(b_test)
    order = np.random.default_rng(100).permutation(len(b_train))
    curve = learning_curve([b_train[i] for i in order[:1000]], [e.text for e in b_test], [e.target for e in b_test],
                           repeats=2, seed=0)
    fc = forecast(curve.sizes, curve.correct, llm, labels_now=1000, boot=400)
    d = fc.to_dict()
    print(f"  LLM {d['accuracy_llm']:.4f}; rule (b) needs {d['target_accuracy']:.4f}; forecast {d['labels_needed']} "
          f"labels, 95% interval {d['interval95']}; fit a={d['fit']['a']:.3f} b={d['fit']['b']:.3f} c={d['fit']['c']:.2f}")
    for n in (2000, 4000, 6000, 8000, 10003):
        sub = [b_train[i] for i in order[:n]]
        print(f"    observed with {n:>6} random labels: {accuracy(fit_student(sub), b_test):.4f} "
              f"(fit says {float(fc.fit.at(n)):.4f})")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s on {os.cpu_count()} CPUs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
