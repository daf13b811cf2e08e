"""Banking77 routing scored by an LLM judge instead of the label: the `intent` judge (calibrated
against the BANKING77 authors' labels, see evals/judges/) must pass the router's answers.

The judge is declared on the eval: goldgate hands each answer to it as soon as the answer lands,
in the same concurrent batch as the generations, and the body reads the verdict.
"""

import goldgate as gg


@gg.eval("banking77", model="router", split="test", judges=["intent"], min_pass_rate=0.80, max_error_rate=0.02)
def test_intent_judged(case, output, verdicts):
    verdict = verdicts["intent"]
    assert verdict.passed, verdict.rationale
