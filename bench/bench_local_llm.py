"""The real local LLM on Banking77: SmolLM2-135M-Instruct (pinned GGUF) on llama.cpp's server,
called by litellm over HTTP as the `local-llm` candidate, answers constrained to the 77 labels.

Reports accuracy with its Wilson 95% interval, requests/s and p95 latency on a seeded stratified
sample of the test split (200 cases by default), and the $/request at `[tool.goldgate.cost]`'s
hardware price. No target: a 135M model labelling 77 intents zero-shot is expected to be poor;
the numbers are reported as measured. Calls bypass goldgate's cache (a temp cache) so timings are real.
Usage: python bench/bench_local_llm.py [--cases 200] [--model smollm2|PATH.gguf]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():
    os.environ.setdefault(_k, _v)

ROOT = Path(__file__).resolve().parents[1]


def sample(cases: list, n: int, seed: int = 0) -> list:
    """Round-robin over the intents, so 200 cases cover every label two or three times."""
    by_label = defaultdict(list)
    for c in sorted(cases, key=lambda c: c.id):
        by_label[c.expected["label"]].append(c)
    rng = random.Random(seed)
    for group in by_label.values():
        rng.shuffle(group)
    out, i = [], 0
    while len(out) < n and any(i < len(g) for g in by_label.values()):
        out += [g[i] for _, g in sorted(by_label.items()) if i < len(g)][: n - len(out)]
        i += 1
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--model", default="smollm2")
    args = ap.parse_args()
    from goldgate.config import load_config
    from goldgate.engine.stats import percentile, wilson_interval
    from goldgate.goldens.records import load_goldens
    from goldgate.localllm.server import LlamaServer
    from goldgate.models.load import model_for_candidate

    config = load_config(ROOT)
    golden = load_goldens(config.path("evals/goldens/banking77.jsonl"))
    cases = sample(golden.split("test"), args.cases)
    with tempfile.TemporaryDirectory() as tmp, LlamaServer(args.model) as server:
        os.environ["GOLDGATE_LOCAL_LLM_URL"] = server.url
        cfg = config.model_copy(update={"cache": str(Path(tmp) / "cache.sqlite"), "concurrency": 2})
        model = model_for_candidate(cfg, "router", "local-llm")
        # Warm-up on a text outside the sample (a sampled case would then be a cache hit): the first
        # request fills llama.cpp's cache of the shared prompt prefix.
        model.predict({"text": "hello, I have a question about my account"})
        t0 = time.perf_counter()
        preds = model.predict_many([c.inputs for c in cases])
        wall = time.perf_counter() - t0
    right = sum(p.label == c.expected["label"] for p, c in zip(preds, cases))
    errors = sum(not p.ok for p in preds)
    lo, hi = wilson_interval(right, len(cases))
    lat = [p.latency_s * 1000 for p in preds if p.latency_s is not None]
    rps = len(cases) / wall
    usd_h = float(config.cost.get("hardware_usd_per_hour", 0.10))
    print(f"local LLM: {server.gguf.name} on llama.cpp, {server.n_threads} thread(s), constrained to "
          f"{len(model.labels or [])} labels")
    print(f"accuracy {right}/{len(cases)} = {right / len(cases):.3f} (Wilson 95% {lo:.3f}–{hi:.3f}); "
          f"errors {errors}; distinct answers {len({p.label for p in preds})}")
    print(f"{rps:.2f} requests/s, latency p50 {percentile(lat, 50):.0f} ms, p95 {percentile(lat, 95):.0f} ms; "
          f"${usd_h / 3600 / rps:.7f}/request at ${usd_h}/h (llama.cpp answers one request at a time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
