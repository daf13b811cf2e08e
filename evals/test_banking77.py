"""Banking77 intent routing: the prompted router must keep its accuracy on the human-labelled test split."""

import goldgate as gg


@gg.eval("banking77", model="router", split="test", min_pass_rate=0.80, max_error_rate=0.02,
         max_cost_per_case=0.0005)
def test_intent(case, output):
    assert output.label == case.expected["label"]
