"""The recipe choices that the organizer's kit and the OFDB practice disagree on.

Each is a plain EvalConfig value, so a preset pins one answer and the command line can flip it:
how pre-training cuts its input (`pretrain_crop`), which statistics normalize (`*_normalize`),
which optimizer pre-trains (`pretrain_opt`), which learning-rate schedule each phase follows
(`*_sched`, `*_milestones`, `*_gamma`) and whether fine-tuning resizes before it crops
(`finetune_resize`). Kept free of torch so that the config imports fast.
"""
from __future__ import annotations

import math
from typing import Any, List, Sequence, Tuple

from submission.errors import UserError

# random_crop: cut img_size x img_size from the image at its own resolution, as the FractalDB
# code (and so the kit) does; random_resized_crop: timm's RandomResizedCrop, as OFDB does.
CROP_MODES = ("random_resized_crop", "random_crop")
# imagenet: timm's IMAGENET_DEFAULT_MEAN/STD; kit: mean 0.2, std 0.5 on every channel (the
# FractalDB pre-training code).
NORMALIZATIONS = ("imagenet", "kit")
KIT_MEAN = (0.2, 0.2, 0.2)
KIT_STD = (0.5, 0.5, 0.5)
# adamw: timm AdamW; sgd: SGD with (non-Nesterov) momentum, timm's "momentum".
OPTIMIZERS = ("adamw", "sgd")
TIMM_OPTIMIZER = {"adamw": "adamw", "sgd": "momentum"}
# cosine: linear warmup then cosine decay per update; step: warmup, then the rate is multiplied
# by gamma at each milestone (a fraction of the phase's epochs), as torch's MultiStepLR does.
SCHEDULES = ("cosine", "step")


def normalization(name: str) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """(mean, std) per RGB channel of normalization `name` (one of NORMALIZATIONS)."""
    if name == "kit":
        return KIT_MEAN, KIT_STD
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    return tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD)


def milestone_epochs(fractions: Sequence[float], epochs: int) -> List[int]:
    """Epoch milestones of a step schedule: floor(fraction x epochs), e.g. (1/3, 2/3) of 90 is
    [30, 60] like the FractalDB code's MultiStepLR([30, 60]); a milestone of m means epochs
    m+1.. (1-based) run at the decayed rate."""
    return [math.floor(fraction * epochs + 1e-9) for fraction in fractions]


def _choice(config: Any, name: str, known: Sequence[str]) -> None:
    value = getattr(config, name)
    if value not in known:
        raise UserError(f"{name} must be one of {', '.join(known)}, got {value!r}")


def check_recipe(config: Any) -> None:
    """Validate the recipe-choice fields of an EvalConfig (raises UserError)."""
    _choice(config, "pretrain_crop", CROP_MODES)
    for name in ("pretrain_normalize", "finetune_normalize"):
        _choice(config, name, NORMALIZATIONS)
    _choice(config, "pretrain_opt", OPTIMIZERS)
    for phase in ("pretrain", "finetune"):
        _choice(config, f"{phase}_sched", SCHEDULES)
        milestones = getattr(config, f"{phase}_milestones")
        if not isinstance(milestones, tuple) or not all(
                isinstance(m, (int, float)) and not isinstance(m, bool) for m in milestones):
            raise UserError(f"{phase}_milestones must be a tuple of numbers, got {milestones!r}")
        if any(not 0.0 < m <= 1.0 for m in milestones) or list(milestones) != sorted(milestones):
            raise UserError(f"{phase}_milestones must be increasing fractions of the epochs in "
                            f"(0, 1], e.g. 0.333,0.667; got {','.join(map(str, milestones))}")
        gamma = getattr(config, f"{phase}_gamma")
        if not 0.0 < gamma <= 1.0:
            raise UserError(f"{phase}_gamma must be in (0, 1], got {gamma}")
    if not 0.0 <= config.pretrain_momentum < 1.0:
        raise UserError(f"pretrain_momentum must be in [0, 1), got {config.pretrain_momentum}")
    if not 0.0 <= config.finetune_hflip <= 1.0:
        raise UserError(f"finetune_hflip must be in [0, 1], got {config.finetune_hflip}")
    if config.finetune_resize is not None and config.finetune_resize < config.img_size:
        raise UserError(f"finetune_resize {config.finetune_resize} is smaller than the "
                        f"img_size {config.img_size} crop cut from it; pass --finetune-resize "
                        f"{config.img_size} or more (or 'none')")

