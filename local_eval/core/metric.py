"""The contest metric: cumulative misclassification over the second half of fine-tuning."""
from __future__ import annotations

import math
from typing import Sequence, Tuple


def scored_epochs(num_epochs: int) -> Tuple[int, int]:
    """First and last scored epoch (1-based, inclusive): ceil(E/2) .. E."""
    if num_epochs < 1:
        raise ValueError(f"need at least one fine-tuning epoch, got {num_epochs}")
    return math.ceil(num_epochs / 2), num_epochs


def cumulative_error(top1_percent: Sequence[float]) -> float:
    """sum over e = ceil(E/2) .. E of (100 - top1_e), top-1 in percent; lower is better.

    `top1_percent[e - 1]` is the accuracy after fine-tuning epoch e, for e = 1 .. E.
    """
    first, last = scored_epochs(len(top1_percent))
    return float(sum(100.0 - float(acc) for acc in top1_percent[first - 1:last]))
