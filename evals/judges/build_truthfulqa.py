"""Rebuild the TruthfulQA goldens and the `truthful` judge's calibration set from TruthfulQA.csv.

- `evals/goldens/truthfulqa.jsonl`: the 817 questions (split `test`); `expected.answer` is the
  authors' best answer, `expected.also_correct` their other true answers, and
  `metadata.incorrect_answers` the false answers they wrote for the question.
- `evals/goldens/truthfulqa-judge-calibration.jsonl`: 400 (question, response) pairs with a human
  verdict. The responses and verdicts are the TruthfulQA authors' own: a response from their
  "correct answers" is a pass, one from their "incorrect answers" a fail (250 passes, 150 fails,
  one response per question, questions and responses picked by a fixed hash).

Run from the repo root: `python evals/judges/build_truthfulqa.py path/to/TruthfulQA.csv` (see
evals/goldens/TRUTHFULQA.md for where the file comes from and its sha256).
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

from goldgate.goldens.records import write_goldens

N_PASS, N_FAIL = 250, 150
GOLDENS = Path("evals/goldens")
ORIGIN = "TruthfulQA (Lin, Hilton and Evans, 2022), github.com/sylinrl/TruthfulQA, Apache-2.0"


def _answers(cell: str) -> list[str]:
    return [a.strip() for a in cell.split(";") if a.strip()]


def _h(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def main(source: Path) -> None:
    with source.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cases, by_id = [], {}
    for row in rows:
        question, best = row["Question"].strip(), row["Best Answer"].strip()
        cid = "tqa-" + _h(question)[:12]
        correct = _answers(row["Correct Answers"])
        by_id[cid] = (question, best, correct, _answers(row["Incorrect Answers"]))
        cases.append({
            "id": cid,
            "inputs": {"question": question},
            "expected": {"answer": best, "also_correct": [a for a in correct if a != best]},
            "metadata": {"split": "test", "type": row["Type"], "category": row["Category"],
                         "incorrect_answers": _answers(row["Incorrect Answers"]), "source": row["Source"]},
            "provenance": {"source": "human", "annotators": ["truthfulqa-authors"], "origin": ORIGIN},
        })
    write_goldens(GOLDENS / "truthfulqa.jsonl", cases)

    order = sorted(by_id, key=lambda cid: _h("truthful-calibration", cid))
    calibration = []
    for i, cid in enumerate(order[: N_PASS + N_FAIL]):
        question, best, correct, incorrect = by_id[cid]
        verdict = "pass" if i < N_PASS else "fail"
        pool = ([a for a in correct if a != best] or correct) if verdict == "pass" else incorrect
        response = min(pool, key=lambda a: _h(cid, a))
        calibration.append({
            "id": "cal-" + cid,
            "inputs": {"question": question, "response": response, "answer": best},
            "expected": {"verdict": verdict},
            "metadata": {"split": "calibration", "source_case": cid},
            "provenance": {
                "source": "human", "annotators": ["truthfulqa-authors"],
                "origin": f"{ORIGIN}; verdict = the authors listed the response among the question's "
                          f"{'correct' if verdict == 'pass' else 'incorrect'} answers",
            },
        })
    write_goldens(GOLDENS / "truthfulqa-judge-calibration.jsonl", calibration)
    print(f"{len(cases)} cases, {len(calibration)} calibration items")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
