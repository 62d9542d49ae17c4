"""Where a score's spread comes from: pre-training seed, fine-tuning seed, test sample.

A grid of P pre-training seeds x F fine-tunings each (`compare --seeds P --finetune-repeats F`:
the fine-tuning seeds derive from (seed, repeat), so they are nested in the pre-training seed) is
a one-way random-effects ANOVA with F replicates per group:

    score[p][f] = mu + a_p + e_pf,   Var(a) = pretrain_var,   Var(e) = finetune_var
    MS_within  = sum (y_pf - mean_p)^2 / (P (F - 1))            -> finetune_var
    MS_between = F sum (mean_p - mean)^2 / (P - 1)              -> finetune_var + F pretrain_var

so pretrain_var = max(0, (MS_between - MS_within) / F). A run with K repeats scores
Var = pretrain_var + finetune_var / K at a cost of pretrain + K x finetune minutes. The test
sample is fixed in such a grid, so its part is computed, not measured: an accuracy p on n test
images has a binomial sd of sqrt(p (1 - p) / n), and the score sums m scored epochs of
100 (1 - accuracy) over the same images (errors fully correlated), so sd = 100 m sqrt(p(1-p)/n).
Torch-free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import List, Sequence

from submission.errors import UserError

# Two-sided 5% test with 80% power: z(0.975) + z(0.8) = 2.80.
Z_POWER = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)


@dataclass(frozen=True)
class Components:
    """The variance components of a P x F grid of scores (score units squared)."""

    seeds: int  # P
    repeats: int  # F
    mean: float
    ms_between: float  # df P - 1
    ms_within: float  # df P (F - 1)
    pretrain_var: float
    finetune_var: float

    def run_var(self, k: int) -> float:
        """Variance of one run's score when it is the mean of k fine-tunings."""
        return self.pretrain_var + self.finetune_var / k

    def best_repeats(self, pretrain_cost: float, finetune_cost: float) -> float:
        """The K that minimizes variance x cost: sqrt(finetune_var pretrain_cost /
        (pretrain_var finetune_cost)); inf when the pre-training seed adds nothing."""
        if self.pretrain_var == 0:
            return math.inf
        return math.sqrt(self.finetune_var * pretrain_cost / (self.pretrain_var * finetune_cost))


def nested_anova(scores: Sequence[Sequence[float]]) -> Components:
    """The components of `scores[p][f]`: P >= 2 pre-training seeds, F >= 2 fine-tunings each."""
    seeds, repeats = len(scores), len(scores[0]) if scores else 0
    if seeds < 2 or repeats < 2 or any(len(row) != repeats for row in scores):
        raise UserError(f"need at least 2 seeds with the same number (at least 2) of fine-tuning "
                        f"repeats each, got {[len(row) for row in scores]}; run compare with "
                        f"--seeds 2 or more and --finetune-repeats 2 or more")
    means = [sum(row) / repeats for row in scores]
    mean = sum(means) / seeds
    ms_between = repeats * sum((m - mean) ** 2 for m in means) / (seeds - 1)
    ms_within = sum((y - m) ** 2 for row, m in zip(scores, means) for y in row) / (
        seeds * (repeats - 1))
    return Components(seeds, repeats, mean, ms_between, ms_within,
                      pretrain_var=max(0.0, (ms_between - ms_within) / repeats),
                      finetune_var=ms_within)


def binomial_sd(accuracy_percent: float, test_images: int, scored_epochs: int) -> float:
    """The binomial sd of a score (100 - top-1 summed over `scored_epochs` epochs on the same
    `test_images` images) at mean accuracy `accuracy_percent`."""
    p = accuracy_percent / 100.0
    return 100.0 * scored_epochs * math.sqrt(p * (1.0 - p) / test_images)


def detectable_difference(run_sd: float, seeds: int) -> float:
    """The score difference two recipes with `seeds` runs each resolve at 80% power (two-sided
    5%, normal approximation, independent runs)."""
    return Z_POWER * run_sd * math.sqrt(2.0 / seeds)


def seeds_for(run_sd: float, difference: float) -> int:
    """Runs per recipe that resolve `difference` at 80% power (inverse of the above)."""
    return max(2, math.ceil(2.0 * (Z_POWER * run_sd / difference) ** 2))


def rows(components: Components, pretrain_cost: float, finetune_cost: float,
         difference: float, ks: Sequence[int] = (1, 3)) -> List[dict]:
    """Per K: the run's sd and cost, variance x cost, and the seeds and cost to resolve
    `difference` between two recipes."""
    table = []
    for k in ks:
        sd = math.sqrt(components.run_var(k))
        cost = pretrain_cost + k * finetune_cost
        seeds = seeds_for(sd, difference)
        table.append({"k": k, "run_sd": sd, "run_cost": cost, "var_x_cost": sd * sd * cost,
                      "seeds": seeds, "cost_to_resolve": 2 * seeds * cost})
    return table
