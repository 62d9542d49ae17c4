"""The 4th-place entry's published results for the recipes that reproduce its variants (shared/seeds/000).

Two tables, each comparing variants of the 4th place's best entry (`fractal-4th`, their exp 009)
that change exactly what one published experiment's table cell states (recipes.py `_VARIANTS`):

- "image_augment": Signate provisional leaderboard score (cumulative misclassification, lower is better)
- "point_cloud":   CIFAR-100 fine-tuning top-1 % of ViT-Tiny after 1000 x 1000 pre-training (higher is better)

`fractal-4th` (exp 009) is in both. An evaluator ranks its own scores of these recipes against
`published(table)` (e.g. a Spearman correlation) to see whether it orders the variants the same way.
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Tuple

from submission.errors import UserError


class Table(NamedTuple):
    metric: str
    lower_is_better: bool


class Result(NamedTuple):
    table: str
    recipe: str
    value: float


TABLES: Dict[str, Table] = {
    "image_augment": Table("leaderboard cumulative misclassification", lower_is_better=True),
    "point_cloud": Table("CIFAR-100 top-1 %", lower_is_better=False),
}

BEST_ENTRY = "fractal-4th"  # exp 009: in both tables, the baseline of a calibration comparison

RESULTS: Tuple[Result, ...] = (
    Result("image_augment", "fractal-aug-none", 1186.22),
    Result("image_augment", "fractal-aug-flips-ssr-bc", 1164.94),
    Result("image_augment", "fractal-4th", 1157.03),  # exp 009, + hue/saturation/value: the best
    Result("image_augment", "fractal-aug-cutout", 1161.29),
    Result("image_augment", "fractal-aug-distortion", 1171.68),
    Result("image_augment", "fractal-aug-trivialaugment", 1179.81),
    Result("point_cloud", "fractal-pc-base", 73.23),
    Result("point_cloud", "fractal-pc-colorize", 71.83),
    Result("point_cloud", "fractal-pc-50k", 72.95),
    Result("point_cloud", "fractal-4th", 74.46),  # exp 009, random subsampling: the best
    Result("point_cloud", "fractal-pc-noise", 72.69),
    Result("point_cloud", "fractal-pc-pointwolf", 72.08),
    Result("point_cloud", "fractal-pc-diamond", 71.84),
)


def published(table: str) -> Dict[str, float]:
    """recipe -> published value of one table (see `TABLES` for its metric and direction)."""
    if table not in TABLES:
        raise UserError(f"unknown calibration table {table!r}; known: {', '.join(TABLES)}")
    return {r.recipe: r.value for r in RESULTS if r.table == table}
