"""Statistics over training seeds: mean, standard deviation, paired Student-t intervals.

scipy is not a dependency, so the Student-t quantile is computed here: the t CDF through the
regularized incomplete beta function (continued fraction, Numerical Recipes `betacf`), inverted
by bisection. t(0.975, 2) = 4.303, t(0.975, 4) = 2.776, t(0.975, 30) = 2.042.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

BETTER, WORSE, CANT_TELL = "better", "worse", "can't tell"


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's evaluation of the continued fraction of I_x(a, b)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
                 + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` > 0 degrees of freedom (0 < p < 1)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (n - 1); the deviation is None for one value."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class PairedDifference:
    """`values - baseline` seed by seed: mean, deviation and a Student-t interval of the mean.

    Lower scores are better, so an interval wholly below 0 says `better`, wholly above 0
    `worse`, and one that holds 0 (or none, with one seed) `can't tell`.
    """

    n: int
    mean: float
    std: Optional[float]  # the spread the interval uses: max(observed_std, std_floor)
    low: Optional[float]
    high: Optional[float]
    t: Optional[float]  # the quantile used, t(1 - (1 - confidence) / 2, n - 1)
    confidence: float
    observed_std: Optional[float] = None  # the sample standard deviation of the differences
    std_floor: float = 0.0

    @property
    def verdict(self) -> str:
        if self.low is None or self.high is None:
            return CANT_TELL
        if self.high < 0:
            return BETTER
        if self.low > 0:
            return WORSE
        return CANT_TELL


def paired_difference(values: Sequence[float], baseline: Sequence[float],
                      confidence: float = 0.95, std_floor: float = 0.0) -> PairedDifference:
    """Paired comparison of two score lists of equal length (same seeds, same order).

    The spread of the differences is taken to be at least `std_floor` (the score's resolution,
    local_eval.compare.power): quantised scores can differ identically seed after seed, and a
    spread of 0 would make a zero-width interval, a verdict from noise.
    """
    if len(values) != len(baseline) or not values:
        raise ValueError(f"need two equally long non-empty lists, got {len(values)} and "
                         f"{len(baseline)}")
    differences = [v - b for v, b in zip(values, baseline)]
    mean, observed = mean_std(differences)
    n = len(differences)
    if observed is None:
        return PairedDifference(n, mean, None, None, None, None, confidence, None, std_floor)
    std = max(observed, std_floor)
    t = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1)
    half = t * std / math.sqrt(n)
    return PairedDifference(n, mean, std, mean - half, mean + half, t, confidence, observed,
                            std_floor)


def ranks(values: Sequence[float]) -> list:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        stop = start
        while stop + 1 < len(order) and values[order[stop + 1]] == values[order[start]]:
            stop += 1
        for position in range(start, stop + 1):
            result[order[position]] = (start + stop) / 2 + 1
        start = stop + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Spearman's rank correlation (Pearson's of the tie-averaged ranks); None for fewer than 3
    pairs or a constant side."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs pairs, got {len(x)} and {len(y)} values")
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)
