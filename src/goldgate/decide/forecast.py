"""How many human labels the student needs before it clears the swap rule: a learning-curve forecast.

The student's test accuracy at nested subset sizes is fitted with an inverse power law,
acc(n) = a − b·n^(−c) (the saturating shape of the learning-curve literature, e.g. Hestness et al.
2017, Figueroa et al. 2012). The target is the accuracy at which rule (b) would pass on the same
test cases: the LLM's accuracy plus the smallest difference whose Tango lower bound clears −δ, at
the discordance seen now. The interval comes from a paired bootstrap over the test cases (and over
the seeded subsets when there are repeats), refitting every time. An asymptote below the target, or
a crossing beyond `horizon` × the labels available, is reported as "never".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from goldgate.decide.decision import tango_lower_bound

__all__ = ["CurveFit", "Forecast", "fit_power_law", "forecast", "plot_forecast", "render_forecast",
           "required_difference"]

_C_GRID = np.geomspace(0.03, 3.0, 120)


@dataclass(frozen=True, slots=True)
class CurveFit:
    """acc(n) = a − b·n^(−c), beyond the last observed size `n_max` times (n / n_max)^drift on the
    reducible part; `a` is the accuracy the curve saturates at."""

    a: float
    b: float
    c: float
    n_max: float = 1.0
    drift: float = 0.0

    def at(self, n: float | np.ndarray) -> Any:
        n = np.asarray(n, dtype=float)
        bend = np.power(np.maximum(n / self.n_max, 1.0), self.drift)
        return self.a - self.b * np.power(n, -self.c) * bend

    def labels_for(self, target: float) -> float:
        """Smallest n with acc(n) ≥ target (inf when the curve never gets there)."""
        if self.a <= target or self.b <= 0:
            return 0.0 if self.a >= target else math.inf
        n = (self.b / (self.a - target)) ** (1.0 / self.c)
        if n <= self.n_max or self.drift == 0:
            return float(n)
        if self.c - self.drift <= 0:
            return math.inf
        return float((self.b * self.n_max ** -self.drift / (self.a - target)) ** (1.0 / (self.c - self.drift)))


def _power_law(n: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares over a grid of exponents c, closed form for (a, b) at each c, with b ≥ 0 and a ≤ 1."""
    x = np.power(n[None, :], -_C_GRID[:, None])  # (grid, points)
    xm, ym = x.mean(axis=1), y.mean()
    sxx = ((x - xm[:, None]) ** 2).sum(axis=1)
    sxy = ((x - xm[:, None]) * (y - ym)[None, :]).sum(axis=1)
    slope = np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), 0.0)
    b = np.maximum(-slope, 0.0)
    a = ym + b * xm
    over = a > 1.0
    # Asymptote capped at 1: refit b alone with a = 1.
    b = np.where(over, np.maximum(((1.0 - y)[None, :] * x).sum(axis=1) / (x * x).sum(axis=1), 0.0), b)
    a = np.where(over, 1.0, a)
    sse = ((y[None, :] - (a[:, None] - b[:, None] * x)) ** 2).sum(axis=1)
    i = int(np.argmin(sse))
    return float(a[i]), float(b[i]), float(_C_GRID[i])


def fit_power_law(n: np.ndarray, acc: np.ndarray) -> CurveFit:
    """The power law on every point, plus its drift from a backtest: the same fit on the sizes up to half
    the largest, extrapolated to the largest, misses the reducible error by a factor; the forecast
    carries that factor forward per the same log-distance. Small label sets are not yet in the
    power-law regime (Hestness et al. 2017), so an uncorrected fit undershoots on many-class tasks."""
    n = np.asarray(n, dtype=float)
    y = np.asarray(acc, dtype=float)
    a, b, c = _power_law(n, y)
    n_max = float(n.max())
    early = n <= n_max / 2
    drift = 0.0
    if early.sum() >= 4 and b > 0:
        ea, eb, ec = _power_law(n[early], y[early])
        predicted = ea - eb * n_max ** -ec
        last = y[n == n_max].mean()
        if eb > 0 and predicted < 1 and last < 1:
            ratio = (1 - last) / (1 - predicted)  # < 1: the error fell faster than the early fit said
            drift = float(np.clip(math.log(ratio) / math.log(n_max / n[early].max()), -1.0, 1.0))
    return CurveFit(a, b, c, n_max, drift)


def required_difference(n_test: int, discordant: int, delta: float) -> float | None:
    """Smallest accuracy difference (student − LLM) that rule (b) accepts on `n_test` paired cases with
    `discordant` discordant pairs; None when no split of the discordant pairs would pass."""
    m = max(int(discordant), 1)

    def passes(j: int) -> bool:  # j student-better pairs of m; the bound rises with j
        return tango_lower_bound(j, m - j, n_test) > -delta

    if not passes(m):
        return None
    lo, hi = 0, m
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if passes(mid) else (mid + 1, hi)
    return (2 * lo - m) / n_test


@dataclass
class Forecast:
    """The forecast plus everything needed to draw and explain it (plain data for decision.json)."""

    labels_now: int
    points: list[dict[str, Any]]
    fit: CurveFit
    accuracy_llm: float
    target: float | None
    target_difference: float | None
    n_test: int
    discordant: int
    delta: float
    labels_needed: float  # total labels; inf = never
    interval: tuple[float, float]
    never_share: float
    horizon: float
    band: dict[str, list[float]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.target is None or not math.isfinite(self.labels_needed):
            return "never"
        return "reached" if self.labels_needed <= self.labels_now else "forecast"

    @property
    def more_needed(self) -> float:
        return max(0.0, self.labels_needed - self.labels_now)

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return round(x) if math.isfinite(x) else None

        lo, hi = self.interval
        return {
            "status": self.status,
            "labels_now": self.labels_now,
            "labels_needed": num(self.labels_needed),
            "more_needed": num(self.more_needed),
            "interval95": [num(max(lo, 0.0)), num(hi)],
            "never_share": self.never_share,
            "horizon_labels": self.horizon,
            "accuracy_llm": self.accuracy_llm,
            "target_accuracy": self.target,
            "target_difference": self.target_difference,
            "n_test": self.n_test,
            "discordant": self.discordant,
            "delta": self.delta,
            "fit": {"model": "acc(n) = a - b * n^(-c) * max(1, n / n_max)^drift", "a": self.fit.a, "b": self.fit.b,
                    "c": self.fit.c, "n_max": self.fit.n_max, "drift": self.fit.drift},
            "points": self.points,
            "band": self.band,
        }

    def headline(self, batch: str | None = None) -> str:
        """The one line for the report and the KEEP comment."""
        lo, hi = self.interval
        if self.status == "never":
            why = ("the test split is too small for rule (b) to pass" if self.target is None else
                   f"the learning curve saturates at {self.fit.a:.3f}, below the {self.target:.3f} rule (b) needs")
            line = f"KEEP: more human labels are not forecast to make the student clear the swap rule ({why})"
        elif self.status == "reached":
            line = "KEEP: the learning curve says the labels at hand should suffice; the rule failed on other checks"
        else:
            upper = "never" if not math.isfinite(hi) else f"{max(0.0, hi - self.labels_now):,.0f}"
            line = (f"KEEP: the student needs about {self.more_needed:,.0f} more human labels (95% interval "
                    f"{max(0.0, lo - self.labels_now):,.0f}–{upper})")
        return line + (f"; {batch}" if batch else "")


def _accuracies(correct: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return correct[:, cols].mean(axis=1)


def forecast(sizes: list[int], correct: np.ndarray, llm_correct: np.ndarray, *, labels_now: int,
             delta: float = 0.03, student_correct: np.ndarray | None = None, boot: int = 400, seed: int = 0,
             horizon: float = 100.0) -> Forecast:
    """Fit the curve to per-case correctness (`correct`: one row per (size, repeat), columns = test cases)
    and forecast the labels at which rule (b) passes against `llm_correct` on the same cases.

    `student_correct` (default: the last row) sets the discordance used for the target."""
    sizes_arr = np.asarray(sizes, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    llm = np.asarray(llm_correct, dtype=bool)
    student = correct[-1] if student_correct is None else np.asarray(student_correct, dtype=bool)
    n_test = correct.shape[1]
    uniq = np.unique(sizes_arr)
    groups = [np.flatnonzero(sizes_arr == s) for s in uniq]
    rng = np.random.default_rng(seed)
    limit = horizon * max(labels_now, 1)

    def solve(cols: np.ndarray, rows: list[int]) -> tuple[CurveFit, float | None, float]:
        acc = _accuracies(correct[rows], cols)
        fit = fit_power_law(uniq, acc)
        disc = int((student[cols] != llm[cols]).sum())
        diff = required_difference(n_test, disc, delta)
        if diff is None:
            return fit, None, math.inf
        target = float(llm[cols].mean()) + diff
        need = fit.labels_for(target)
        return fit, target, need if need <= limit else math.inf

    np.arange(n_test)
    mean_acc = np.array([correct[g].mean(axis=1).mean() for g in groups])
    fit = fit_power_law(uniq, mean_acc)
    disc = int((student != llm).sum())
    diff = required_difference(n_test, disc, delta)
    target = None if diff is None else float(llm.mean()) + diff
    need = math.inf if target is None else fit.labels_for(target)
    need = need if need <= limit else math.inf

    top = min(limit, max(uniq.max() * 4, 2 * need if math.isfinite(need) else 0.0))
    grid = np.unique(np.geomspace(max(uniq.min() / 2, 1), top, 60).round())
    grid = grid[grid <= limit]
    needs, curves = [], []
    for _ in range(boot):
        cols = rng.integers(0, n_test, n_test)
        rows = [int(rng.choice(g)) for g in groups]
        f, _t, nb = solve(cols, rows)
        needs.append(nb)
        curves.append(f.at(grid))
    needs_arr = np.array(needs)
    # No interpolation: a "never" (inf) draw must not turn the bound into nan.
    lo, hi = ((np.quantile(needs_arr, 0.025, method="lower"), np.quantile(needs_arr, 0.975, method="higher"))
              if boot else (need, need))
    band = np.quantile(np.array(curves), [0.025, 0.975], axis=0) if boot else np.array([fit.at(grid)] * 2)
    points = [{"n": int(s), "accuracy": float(correct[g].mean(axis=1).mean()),
               "repeats": [float(v) for v in correct[g].mean(axis=1)]} for s, g in zip(uniq, groups)]
    return Forecast(
        labels_now=labels_now, points=points, fit=fit, accuracy_llm=float(llm.mean()), target=target,
        target_difference=diff, n_test=n_test, discordant=disc, delta=delta, labels_needed=need,
        interval=(float(lo), float(hi)), never_share=float(np.mean(~np.isfinite(needs_arr))) if boot else 0.0,
        horizon=limit, band={"n": grid.tolist(), "lower": band[0].tolist(), "upper": band[1].tolist(),
                             "fit": fit.at(grid).tolist()},
    )


def predict_at(sizes: list[int], correct: np.ndarray, n: float, *, boot: int = 400, seed: int = 0) -> tuple[float, float, float]:
    """The fitted accuracy at `n` labels with its 95% bootstrap interval (the bench's coverage check)."""
    sizes_arr = np.asarray(sizes, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    uniq = np.unique(sizes_arr)
    groups = [np.flatnonzero(sizes_arr == s) for s in uniq]
    rng = np.random.default_rng(seed)
    point = fit_power_law(uniq, np.array([correct[g].mean(axis=1).mean() for g in groups])).at(n)
    draws = []
    for _ in range(boot):
        cols = rng.integers(0, correct.shape[1], correct.shape[1])
        rows = [int(rng.choice(g)) for g in groups]
        draws.append(fit_power_law(uniq, _accuracies(correct[rows], cols)).at(n))
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return float(point), float(lo), float(hi)


def plot_forecast(fc: dict[str, Any], path: Path) -> None:
    """Accuracy vs human labels: observed points, the fit with its 95% band, the LLM and the target lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    band = fc["band"]
    ax.fill_between(band["n"], band["lower"], band["upper"], color="tab:orange", alpha=0.2, label="fit, 95% band")
    ax.plot(band["n"], band["fit"], color="tab:orange", label="fit a − b·n^(−c)")
    for p in fc["points"]:
        ax.scatter([p["n"]] * len(p["repeats"]), p["repeats"], color="tab:orange", s=10, alpha=0.5)
    ax.scatter([p["n"] for p in fc["points"]], [p["accuracy"] for p in fc["points"]], color="black", s=18,
               zorder=3, label="observed (test split)")
    ax.axhline(fc["accuracy_llm"], color="tab:blue", label=f"LLM {fc['accuracy_llm']:.3f}")
    if fc["target_accuracy"] is not None:
        ax.axhline(fc["target_accuracy"], color="tab:blue", ls="--",
                   label=f"rule (b) needs {fc['target_accuracy']:.3f}")
    if fc["labels_needed"] is not None:
        lo, hi = fc["interval95"]
        ax.axvspan(lo or band["n"][0], hi or band["n"][-1], color="tab:green", alpha=0.1)
        ax.axvline(fc["labels_needed"], color="tab:green", ls=":", label=f"forecast {fc['labels_needed']:,} labels")
    ax.axvline(fc["labels_now"], color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("human labels (log scale)")
    ax.set_ylabel("student accuracy on the test split")
    ax.set_title("learning curve and label forecast")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def render_forecast(fc: dict[str, Any], headline: str, chart: str) -> str:
    """The decision report's "annotate more" section."""
    fit = fc["fit"]
    pts = ", ".join(f"{p['n']:,} → {p['accuracy']:.3f}" for p in fc["points"])
    target = ("rule (b) cannot pass on this test split" if fc["target_accuracy"] is None else
              f"rule (b) needs ≈ {fc['target_accuracy']:.3f} (LLM {fc['accuracy_llm']:.3f} "
              f"{fc['target_difference']:+.3f}, at {fc['discordant']} discordant pairs of {fc['n_test']}, δ = {fc['delta']})")
    return "\n".join([
        "## Annotate more", "", f"**{headline}**", "",
        f"- learning curve (human labels → test accuracy): {pts}",
        f"- fit: acc(n) = {fit['a']:.3f} − {fit['b']:.3f}·n^(−{fit['c']:.2f}); {target}",
        ("- 95% interval from a paired bootstrap over test cases and seeded subsets; "
        f"{fc['never_share']:.0%} of resamples say never (within {fc['horizon_labels']:,.0f} labels)"),
        "", f"![learning curve]({chart})", ""])
