"""Banking77 routing scored by an LLM judge instead of the label: the `intent` judge (calibrated
against the BANKING77 authors' labels, see evals/judges/) must pass the router's answers.

A judge verdict per case would be one model call per test body; the module fixture judges every
selected case's answer in one concurrent batch first, so each body's `check` is a lookup.
"""

import pytest

import goldgate as gg
from goldgate.judges.judge import JudgeItem, judge


@pytest.fixture(scope="module", autouse=True)
def _judge_ahead(request: pytest.FixtureRequest) -> None:
    root = request.config.rootpath
    cases = [
        i.callspec.params["case"]
        for i in request.session.items
        if i.module is request.module and hasattr(i, "callspec")
    ]
    answers = gg.load_model("router", project=root).predict_many(
        [c.inputs for c in cases]
    )  # cached
    judge("intent", project=root).check_many(
        [JudgeItem(c.inputs["text"], a.label or a.text) for c, a in zip(cases, answers)]
    )


@gg.eval("banking77", model="router", split="test", min_pass_rate=0.80, max_error_rate=0.02)
def test_intent_judged(case, output):
    verdict = judge("intent").check(input=case.inputs["text"], output=output.label)
    assert verdict.passed, verdict.rationale
