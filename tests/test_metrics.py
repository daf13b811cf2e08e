"""`gg.metrics`: SQuAD's answer normalisation, exact/normalised match and token F1."""

from __future__ import annotations

import pytest

import goldgate as gg


def test_normalised_match_ignores_case_punctuation_articles_and_spaces() -> None:
    assert gg.metrics.normalize("  The Eiffel  Tower, in Paris!") == "eiffel tower in paris"
    assert gg.metrics.normalized_match("the eiffel tower in Paris", "Eiffel Tower, in paris.")
    assert not gg.metrics.exact_match("the eiffel tower in Paris", "Eiffel Tower, in paris.")
    assert gg.metrics.exact_match(" Paris ", ["London", "Paris"])


def test_token_f1_takes_the_best_reference() -> None:
    # SQuAD's F1: 2 shared tokens of 3 predicted and 4 reference tokens -> P 2/3, R 1/2.
    assert gg.metrics.token_f1("nothing bad happens", "nothing bad really happens ok") == pytest.approx(0.75)
    assert gg.metrics.token_f1("red cape", ["blue", "the red cape"]) == 1.0
    assert gg.metrics.token_f1("", "") == 1.0 and gg.metrics.token_f1("a", "x") == 0.0
    with pytest.raises(ValueError, match="at least one reference"):
        gg.metrics.token_f1("x", [])
