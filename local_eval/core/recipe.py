"""The recipe choices that the organizer's kit and the OFDB practice disagree on.

Each is a plain EvalConfig value, so a preset pins one answer and the command line can flip it:
how pre-training cuts its input (`pretrain_crop`), which statistics normalize (`*_normalize`),
which optimizer pre-trains (`pretrain_opt`), which learning-rate schedule each phase follows
(`*_sched`, `*_milestones`, `*_gamma`) and whether fine-tuning resizes before it crops
(`finetune_resize`). Kept free of torch so that the config imports fast.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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


# timm's auto-augment strings (timm.data.auto_augment): the sections each policy reads, with their
# number types. A string timm would refuse with an AssertionError deep in the first epoch is
# refused here, when the config is made.
AUTO_AUGMENT_POLICIES = ("original", "originalr", "v0", "v0r", "3a")
_RAND_KEYS: Dict[str, Callable[[str], Any]] = {"m": int, "n": int, "p": float, "mstd": float,
                                               "mmax": int, "inc": str}
_AUGMIX_KEYS: Dict[str, Callable[[str], Any]] = {"m": int, "w": int, "d": int, "a": float,
                                                 "mstd": float, "b": str}
RAND_AUGMENT_MAX_LAYERS = 15  # timm's 15 operations; each layer is one more pass over every image


def check_rand_augment(text: Optional[str]) -> None:
    """Refuse a `rand_augment` string that timm cannot parse: 'rand-m9-mstd0.5-inc1' (RandAugment),
    'augmix-...', or an AutoAugment policy (original, originalr, v0, v0r, 3a) with -mstdX."""
    if not text:
        return
    sections = str(text).split("-")
    policy, rest = sections[0], sections[1:]
    keys = _RAND_KEYS if policy == "rand" else _AUGMIX_KEYS if policy == "augmix" else \
        {"mstd": float} if policy in AUTO_AUGMENT_POLICIES else None
    if keys is None:
        raise UserError(f"rand_augment {text!r} is not a timm augmentation string: it starts with "
                        f"rand (RandAugment, e.g. rand-m9-mstd0.5-inc1), augmix or one of "
                        f"{', '.join(AUTO_AUGMENT_POLICIES)}; 'none' turns it off")
    for section in rest:
        if policy == "rand" and section.startswith("t"):
            continue  # a named operation set (timm: weights, 3a, 3aw); the PIL loader only
        parts = re.split(r"(\d.*)", section)
        if len(parts) < 2:
            continue  # timm ignores a section without a number
        key, value = parts[:2]
        if key not in keys:
            raise UserError(f"rand_augment {text!r}: unknown section {section!r}; {policy} reads "
                            f"{', '.join(keys)} followed by a number")
        try:
            number = keys[key](value)
        except ValueError:
            raise UserError(f"rand_augment {text!r}: section {section!r} needs "
                            f"{'a whole' if keys[key] is int else 'a'} number after {key!r}") from None
        if isinstance(number, str):
            continue  # timm takes bool() of the text
        if not math.isfinite(number) or number < 0:
            raise UserError(f"rand_augment {text!r}: section {section!r} must not be negative")
        if policy == "rand" and key == "p" and number > 1:
            raise UserError(f"rand_augment {text!r}: p is a probability, at most 1")
        if policy == "rand" and key == "n" and number > RAND_AUGMENT_MAX_LAYERS:
            raise UserError(f"rand_augment {text!r}: n must be at most {RAND_AUGMENT_MAX_LAYERS} "
                            f"layers (each is one more pass over every image)")


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

