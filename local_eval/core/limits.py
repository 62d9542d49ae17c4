"""The bounds of every number the judge's commands take, each with its reason, checked before any
work: a value past one is refused with one line instead of hanging, allocating without end or
filling the disk (docs/reliability.md "Bounds"). Torch-free, so a bad number costs no import."""
from __future__ import annotations

import math
from typing import Any, Dict, NamedTuple

from submission.errors import UserError
from submission.limits import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

MAX_SEED = 2**31 - 1  # every random source is seeded modulo 2**31
MAX_CLASSES = 100_000  # what `generate` makes at most (submission.limits)
MAX_PER_CLASS = 100_000
MAX_EPOCHS = 1000
MAX_PROCESSES = 64  # loader workers, decoding processes, torch threads
MAX_REPEATS = 100


class Bound(NamedTuple):
    low: float
    high: float
    why: str


# EvalConfig's numeric fields (Optional ones: when set). The lower bounds were there before;
# each upper one says why a larger value is a mistake, not a wish. The learning rates have none:
# too large a rate diverges, and the run stops with one line naming the phase and epoch.
CONFIG_BOUNDS: Dict[str, Bound] = {
    "img_size": Bound(1, 1024, "4.6 x the contest's 224 px; a ViT's tokens and a batch's memory "
                               "grow with its square"),
    "patch_size": Bound(1, 1024, "a patch no larger than the largest img_size"),
    "depth": Bound(1, 64, "ViT-g, the deepest timm ViT, has 40 blocks"),
    "pretrain_classes": Bound(2, MAX_CLASSES, "the most classes generate makes"),
    "finetune_classes": Bound(2, MAX_CLASSES, "more than any downstream set holds"),
    "pretrain_images_per_class": Bound(1, MAX_PER_CLASS, "the most images per class generate makes"),
    "finetune_train_per_class": Bound(1, MAX_PER_CLASS, "more than any downstream set holds"),
    "finetune_test_per_class": Bound(1, MAX_PER_CLASS, "more than any downstream set holds"),
    "pretrain_epochs": Bound(1, MAX_EPOCHS, "10 x the contest's 100; each epoch is a full pass"),
    "finetune_epochs": Bound(1, MAX_EPOCHS, "10 x the contest's 100; each epoch is a full pass"),
    "pretrain_batch_size": Bound(1, 16384, "64 x the contest's 256; one batch of 224 px images is "
                                          "already 9.9 GB as float32"),
    "finetune_batch_size": Bound(1, 16384, "64 x the contest's 256; one batch of 224 px images is "
                                          "already 9.9 GB as float32"),
    "pretrain_weight_decay": Bound(0, 1, "the presets use 1e-4-0.05; 1 removes lr x each weight "
                                         "every step"),
    "finetune_weight_decay": Bound(0, 1, "the presets use 1e-4-0.05; 1 removes lr x each weight "
                                         "every step"),
    "pretrain_warmup_epochs": Bound(0, MAX_EPOCHS, "no longer than the most epochs"),
    "finetune_warmup_epochs": Bound(0, MAX_EPOCHS, "no longer than the most epochs"),
    "mixup": Bound(0, 100, "Beta(100, 100) mixes 50:50 within 4%; more changes nothing"),
    "cutmix": Bound(0, 100, "Beta(100, 100) mixes 50:50 within 4%; more changes nothing"),
    "color_jitter": Bound(0, 1, "factors are drawn from [1 - s, 1 + s]; at 1 they already reach "
                                "0 (a black, grey or colourless image)"),
    "finetune_resize": Bound(1, 2048, "2 x the largest img_size; each decoded downstream image "
                                      "is held at this size"),
}

# The other commands' numbers: flag -> bound.
TIMING_BOUNDS = {
    "--classes": Bound(2, MAX_CLASSES, "the most classes generate makes"),
    "--images-per-class": Bound(1, MAX_PER_CLASS, "the most images per class generate makes"),
    "--image-size": Bound(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE, "the image sizes generate makes"),
    "--downstream classes": Bound(2, MAX_CLASSES, "more than any downstream set holds"),
    "--downstream train images per class": Bound(1, MAX_PER_CLASS, "more than any set holds"),
    "--downstream test images per class": Bound(1, MAX_PER_CLASS, "more than any set holds"),
    "--repeats": Bound(1, 100, "each repeat is one more timed training step; 3 suffice"),
    "--threads": Bound(1, MAX_PROCESSES, "4 x the 16 cores of the GPU machines we size for"),
}
WORKERS = Bound(0, MAX_PROCESSES, "4 x the 16 cores of the GPU machines we size for; each "
                                  "loader worker is a process of several hundred MB")
REPEATS = Bound(1, MAX_REPEATS, "the mean of 100 fine-tunings has a tenth of one's noise; each "
                                "repeat trains and keeps a checkpoint")
STOP_AFTER_EPOCHS = Bound(1, 1_000_000, "more epochs than a run or comparison within the "
                                        "other bounds trains in a day; leave it out for no stop")
THROUGHPUT_WARMUP = Bound(0, 1000, "untimed batches; the default 5 covers worker start and "
                                   "compilation")
THROUGHPUT_STEPS = Bound(1, 1000, "timed batches; the default 30 gives a steady rate")
# A score sums 100 - top-1 over fine-tuning epochs ceil(E/2)..E: at most 100 x 501 for E = 1000.
MAX_SCORE = 100 * (MAX_EPOCHS - math.ceil(MAX_EPOCHS / 2) + 1)
STATS_SAMPLE = 10_000  # images that stats holds in memory: 10,000 at 384 px are 4.4 GB


def show(number: float) -> str:
    """A bound as written in a message: 1000000, 0.5, not 1e+06."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def check_bound(name: str, value: Any, bound: Bound) -> None:
    """Raise UserError unless low <= value <= high (a finite number)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    if value < bound.low:
        raise UserError(f"{name} must be at least {show(bound.low)}, got {value}")
    if value > bound.high:
        raise UserError(f"{name} must be at most {show(bound.high)} ({bound.why}), got {value}")
