"""Rebuild `evals/goldens/banking77-judge-calibration.jsonl`, the intent judge's calibration set.

Each record pairs a BANKING77 test query with an intent predicted by the router slot (served by
`goldgate sim`, seed 7), and its verdict is the human one: pass iff the prediction equals the
dataset authors' label. Wrong predictions are oversampled so the fail class is large enough to
measure (150 fails, 250 passes).
Run from the repo root: `python evals/judges/build_intent_calibration.py`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from goldgate.cli.demo import sim_settings
from goldgate.config import load_config
from goldgate.goldens.records import load_goldens, write_goldens
from goldgate.models.load import load_model
from goldgate.sim.process import SimProcess

N_FAIL, N_PASS = 150, 250
OUT = Path("evals/goldens/banking77-judge-calibration.jsonl")
ORIGIN = (
    "verdict = (predicted == the BANKING77 authors' human label of this test query); predicted "
    "intents are the router slot's answers from goldgate sim (seed 7)"
)


def _order(case_id: str) -> str:
    return hashlib.sha256(f"intent-calibration:{case_id}".encode()).hexdigest()


def main() -> None:
    cfg = load_config()
    cases = sorted(
        load_goldens(cfg.path("evals/goldens/banking77.jsonl")).split("test"),
        key=lambda c: _order(c.id),
    )
    with SimProcess(sim_settings(cfg)) as sim:
        os.environ["GOLDGATE_SIM_URL"] = sim.url
        preds = load_model("router").predict_many([c.inputs for c in cases])
    chosen = {"pass": [], "fail": []}
    for case, pred in zip(cases, preds):
        if pred.label is None:
            continue
        verdict = "pass" if pred.label == case.expected["label"] else "fail"
        if len(chosen[verdict]) < (N_PASS if verdict == "pass" else N_FAIL):
            chosen[verdict].append(
                {
                    "id": "cal-" + case.id,
                    "inputs": {"text": case.inputs["text"], "predicted": pred.label},
                    "expected": {"verdict": verdict},
                    "metadata": {
                        "split": "calibration",
                        "source_case": case.id,
                        "human_label": case.expected["label"],
                    },
                    "provenance": {
                        "source": "human",
                        "annotators": ["banking77-authors"],
                        "origin": ORIGIN,
                    },
                }
            )
    write_goldens(OUT, chosen["pass"] + chosen["fail"])
    print(f"{OUT}: {len(chosen['pass'])} pass, {len(chosen['fail'])} fail")


if __name__ == "__main__":
    main()
