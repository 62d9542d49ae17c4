"""Resolving power of a paired comparison over seeds: the smallest difference it detects and the
seeds a given difference needs, from the exact power of the two-sided paired t-test.

With n paired differences of standard deviation sigma and true mean delta, the test statistic
is noncentral t with n - 1 degrees of freedom and noncentrality delta * sqrt(n) / sigma; the
test says better/worse when |T| > t(1 - alpha / 2, n - 1), so its power is
P(T > c) + P(T < -c). The noncentral t CDF is an integral over the chi distribution
(`noncentral_t_cdf`); scipy is not a dependency.

A score is quantised: top-1 moves in steps of 100 / test_images, so one test image changes the
score by that much per scored epoch (`score_resolution`). Paired differences that happen to be
equal say only that their spread is below one step, so the spread used is floored at it.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Dict, Iterable, Optional

from .stats import t_quantile

POWER = 0.8
MAX_SEEDS_REPORTED = 10**9  # beyond this, "seeds needed" is None: the difference is unreachable
_STEPS = 2000  # Simpson intervals over +-10 around the chi distribution's bulk: error < 1e-9


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def noncentral_t_cdf(t: float, df: float, noncentrality: float) -> float:
    """P(T <= t) for T = (Z + noncentrality) / sqrt(V / df), Z ~ N(0, 1), V ~ chi2(df).

    = E[Phi(t * W / sqrt(df) - noncentrality)] over W = sqrt(V) (chi with df degrees of
    freedom, density w^(df-1) exp(-w^2 / 2) / (2^(df/2 - 1) Gamma(df / 2))), by Simpson's rule
    on [sqrt(df) - 10, sqrt(df) + 10] (cut at 0), where W lies but for < 1e-20.
    """
    if df <= 0:
        raise ValueError(f"need df > 0, got {df}")
    centre = math.sqrt(df)
    low, high = max(0.0, centre - 10.0), centre + 10.0
    step = (high - low) / _STEPS
    log_norm = (df / 2.0 - 1.0) * math.log(2.0) + math.lgamma(df / 2.0)
    total = 0.0
    for i in range(_STEPS + 1):
        w = low + i * step
        if w <= 0.0:
            density = 1.0 / math.exp(log_norm) if df == 1 else 0.0  # w^0 at df 1, else 0
        else:
            density = math.exp((df - 1.0) * math.log(w) - 0.5 * w * w - log_norm)
        weight = 1 if i in (0, _STEPS) else (4 if i % 2 else 2)
        total += weight * density * _normal_cdf(t * w / centre - noncentrality)
    return min(1.0, max(0.0, total * step / 3.0))


def paired_power(n: int, effect: float, confidence: float = 0.95) -> float:
    """Power of the two-sided paired t-test at level 1 - confidence with n pairs when the true
    mean difference is `effect` standard deviations (n >= 2)."""
    if n < 2:
        raise ValueError(f"a paired t-test needs at least 2 pairs, got {n}")
    critical = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1)
    shift = abs(effect) * math.sqrt(n)
    return (1.0 - noncentral_t_cdf(critical, n - 1, shift)
            + noncentral_t_cdf(-critical, n - 1, shift))


@functools.lru_cache(maxsize=None)  # compare.md is rewritten after every run: same n, same answer
def min_detectable_effect(n: int, confidence: float = 0.95, power: float = POWER) -> float:
    """The true mean difference, in standard deviations, that n pairs detect with `power`."""
    low, high = 0.0, 1.0
    while paired_power(n, high, confidence) < power:
        low, high = high, high * 2.0
    while high - low > 1e-7 * high:
        middle = 0.5 * (low + high)
        if paired_power(n, middle, confidence) < power:
            low = middle
        else:
            high = middle
    return high


@functools.lru_cache(maxsize=4096)
def seeds_needed(effect: float, confidence: float = 0.95, power: float = POWER) -> Optional[int]:
    """The fewest pairs (>= 2) that detect a difference of `effect` standard deviations with
    `power`; None beyond MAX_SEEDS_REPORTED."""
    if effect <= 0:
        return None
    low, high = 1, 2  # power(low) < power <= power(high) once the search below is done
    while paired_power(high, effect, confidence) < power:
        if high >= MAX_SEEDS_REPORTED:
            return None
        low, high = high, min(high * 2, MAX_SEEDS_REPORTED)
    while high - low > 1:
        middle = (low + high) // 2
        if paired_power(middle, effect, confidence) < power:
            low = middle
        else:
            high = middle
    return high


def score_resolution(report: Dict[str, Any]) -> Optional[float]:
    """The smallest change one test image can make to a run's score: 100 / test_images of the
    largest downstream set in one scored epoch, over the number of sets (the score is their
    mean) and over the fine-tuning repeats (a repeated run scores their mean). None when the
    report records no test-set sizes."""
    sets = report.get("downstream") or {}
    sizes = [entry.get("test_images") for entry in sets.values()]
    if not sizes or any(not size for size in sizes):
        return None
    return 100.0 / max(sizes) / len(sizes) / int(report.get("finetune_repeats") or 1)


def resolution_of(reports: Iterable[Dict[str, Any]]) -> Optional[float]:
    """The coarsest resolution among runs (they share the preset's downstream sets)."""
    found = [r for r in map(score_resolution, reports) if r is not None]
    return max(found) if found else None


def power_summary(n: int, std: Optional[float], target: Optional[float],
                  confidence: float = 0.95) -> Dict[str, Any]:
    """compare.json's power entry of one paired comparison with spread `std` (floored)."""
    entry: Dict[str, Any] = {"power": POWER, "two_sided_level": round(1.0 - confidence, 12),
                             "min_detectable_difference": None, "target_difference": target,
                             "seeds_for_target": None}
    if std is None or n < 2:
        return entry
    entry["min_detectable_difference"] = min_detectable_effect(n, confidence) * std
    if target is not None and target > 0 and std > 0:
        entry["seeds_for_target"] = seeds_needed(target / std, confidence)
    return entry
