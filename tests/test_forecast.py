"""The label forecast: the curve fit recovers a known curve, and says "never" when the curve saturates
below what the swap rule needs."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from goldgate.decide.forecast import fit_power_law, forecast, predict_at, required_difference

SIZES = [125, 177, 250, 354, 500, 707, 1000]


def _truth(n, a=0.93, b=3.0, c=0.6):
    return a - b * np.power(np.asarray(n, dtype=float), -c)


def _correct(rng, sizes, acc_of, n_test, repeats=2):
    """Per-case correctness rows: nested subsets share most of their right answers, like a real student."""
    latent = rng.random(n_test)
    rows, row_sizes = [], []
    for _ in range(repeats):
        jitter = rng.normal(0, 0.004)
        for n in sizes:
            rows.append(latent < acc_of(n) + jitter)
            row_sizes.append(n)
    return row_sizes, np.array(rows)


def test_fit_recovers_a_known_curve():
    n = np.array(SIZES + [1414, 2000, 2828, 4000])
    fit = fit_power_law(n, _truth(n))
    assert fit.a == pytest.approx(0.93, abs=0.005)
    assert fit.c == pytest.approx(0.6, rel=0.05)
    assert fit.labels_for(0.90) == pytest.approx((3.0 / 0.03) ** (1 / 0.6), rel=0.05)


def test_required_difference_matches_the_normal_approximation():
    # 1,000 cases, 10% discordant: −δ plus about 1.645·√(0.1/1000) ≈ −0.0136.
    assert required_difference(1000, 100, 0.03) == pytest.approx(-0.0136, abs=0.003)
    assert required_difference(5, 1, 0.03) is None  # too few cases for any split to pass


def test_forecast_brackets_the_true_label_count():
    rng = np.random.default_rng(1)
    n_test = 3000
    sizes, correct = _correct(rng, SIZES, _truth, n_test)
    llm = rng.random(n_test) < 0.92
    fc = forecast(sizes, correct, llm, labels_now=1000, delta=0.03, boot=300, seed=2)
    assert fc.status == "forecast"
    true_need = fc.fit.labels_for(fc.target)  # the fit's own answer, then the truth's below
    a, b, c = 0.93, 3.0, 0.6
    truth = (b / (a - fc.target)) ** (1 / c)
    lo, hi = fc.interval
    assert lo <= truth <= hi, (lo, truth, hi)
    assert true_need == pytest.approx(truth, rel=0.5)
    line = fc.headline("the next 500 to label are in Argilla dataset d")
    assert line.startswith("KEEP: the student needs about ") and "95% interval" in line
    doc = fc.to_dict()
    assert doc["more_needed"] == round(fc.labels_needed - 1000) and doc["status"] == "forecast"
    point, plo, phi = predict_at(sizes, correct, 3000, boot=200)
    assert plo <= _truth(3000) <= phi and plo <= point <= phi


def test_forecast_says_never_when_the_curve_saturates_below_the_llm():
    rng = np.random.default_rng(3)
    n_test = 2000
    sizes, correct = _correct(rng, SIZES, lambda n: _truth(n, a=0.80), n_test)
    llm = rng.random(n_test) < 0.90
    fc = forecast(sizes, correct, llm, labels_now=1000, boot=200)
    assert fc.status == "never" and math.isinf(fc.labels_needed)
    assert fc.fit.a < fc.target
    assert fc.to_dict()["labels_needed"] is None and fc.never_share > 0.95
    assert re.search(r"saturates at 0\.7\d\d, below the 0\.8\d\d rule \(b\) needs", fc.headline())


def test_backtest_drift_carries_a_steepening_curve_forward():
    # Error falling faster at larger n (the small-data regime ending): a plain power law fitted on
    # 125–1,000 undershoots at 3,000; the backtest's drift must move the forecast towards the truth.
    n = np.array(SIZES, dtype=float)
    truth = lambda m: 1 - 0.9 * np.power(m, -0.25) * np.power(np.maximum(m / 300, 1), -0.15)
    fit = fit_power_law(n, truth(n))
    plain = fit.a - fit.b * 3000 ** -fit.c
    assert fit.drift < 0
    assert abs(float(fit.at(3000)) - truth(3000)) < abs(plain - truth(3000)) / 2
