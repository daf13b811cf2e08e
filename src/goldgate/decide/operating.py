"""The swap rule's exact operating characteristic: P(check (b) passes) for given true paired rates.

Every outcome of N paired cases reduces to the discordant counts (b, c), which are multinomial;
summing the pmf over the outcomes the score test accepts gives the rule's error rates exactly, with
no Monte Carlo noise. Transport failures that strike cases at random only shrink N, so their
effect is the same sum mixed over N ~ Binomial.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

from goldgate.decide.noninferiority import CONTINUITY, noninferior
from goldgate.decide.splitlog import FIRST_ALPHA

__all__ = ["Cells", "binomial_pmf", "outcome_probability", "swap_probability", "swap_probability_with_losses"]

_SPAN = 12  # standard deviations of each binomial summed over; the mass outside is below 1e-30


@dataclass(frozen=True)
class Cells:
    """True probabilities of the two discordant cells: p10 = student right only, p01 = LLM right only."""

    p10: float
    p01: float

    @classmethod
    def paired(cls, difference: float, discordance: float) -> Cells:
        """A student `difference` better (student − LLM accuracy) with a given rate of discordant pairs."""
        return cls((discordance + difference) / 2, (discordance - difference) / 2)

    @classmethod
    def independent(cls, llm_accuracy: float, student_accuracy: float) -> Cells:
        """Errors that strike the two models independently (the most discordant case for given accuracies)."""
        return cls(student_accuracy * (1 - llm_accuracy), llm_accuracy * (1 - student_accuracy))


def binomial_pmf(k: int, n: int, p: float) -> float:
    if p <= 0 or p >= 1:
        return float(k == (0 if p <= 0 else n))
    return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                    + k * math.log(p) + (n - k) * math.log1p(-p))


def _window(n: int, p: float) -> range:
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return range(max(0, math.floor(mean - _SPAN * sd)), min(n, math.ceil(mean + _SPAN * sd)) + 1)


def swap_probability(n: int, cells: Cells, delta: float, alpha: float = FIRST_ALPHA,
                     correction: float = CONTINUITY) -> float:
    """Exact P(non-inferior at margin δ, one-sided level α) over N paired cases: k = b + c ~
    Bin(N, p10 + p01), then b | k ~ Bin(k, p10 / (p10 + p01)). α defaults to the first decision's."""
    z = NormalDist().inv_cdf(1 - alpha)
    disc = cells.p10 + cells.p01
    if disc <= 0:
        return float(noninferior(0, 0, n, delta, z, correction))
    share = cells.p10 / disc
    total = 0.0
    for k in _window(n, disc):
        pk = binomial_pmf(k, n, disc)
        total += pk * sum(binomial_pmf(b, k, share) for b in _window(k, share)
                          if noninferior(b, k - b, n, delta, z, correction))
    return min(1.0, total)


def swap_probability_with_losses(n: int, cells: Cells, delta: float, loss_rate: float,
                                 alpha: float = FIRST_ALPHA, correction: float = CONTINUITY) -> float:
    """As `swap_probability`, when each case independently fails in transport (on either side) with
    probability `loss_rate` and leaves the pairing."""
    return sum(binomial_pmf(m, n, loss_rate) * swap_probability(n - m, cells, delta, alpha, correction)
               for m in _window(n, loss_rate) if m < n)


def outcome_probability(n: int, cells: Cells, event: Callable[[int, int], bool]) -> float:
    """Exact P(event(b, c)) over N paired cases, for any rule on the discordant counts."""
    disc = cells.p10 + cells.p01
    if disc <= 0:
        return float(event(0, 0))
    share = cells.p10 / disc
    return sum(binomial_pmf(k, n, disc) * sum(binomial_pmf(b, k, share) for b in _window(k, share) if event(b, k - b))
               for k in _window(n, disc))
