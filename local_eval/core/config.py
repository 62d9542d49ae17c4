"""`EvalConfig`: the frozen training recipe of one local evaluation.

Its defaults are the `contest` preset; local_eval.core.presets holds all six presets (smoke,
quick, contest and the three kit ones) as changes from them. The command line builds a config
from a preset plus overrides, where an override of ``None`` means "keep the preset's value".
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from submission.errors import UserError

from .limits import CONFIG_BOUNDS, show
from .recipe import check_rand_augment, check_recipe

MAX_SEED = 2**31 - 1


def _fits(value: Any, kind: type) -> bool:
    """isinstance, except that bool is no int or float, and an int is a fine float."""
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _field(default: Any, help_text: str) -> Any:
    """A dataclass field whose `metadata["help"]` is its one-line --help text."""
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class EvalConfig:
    """Pre-training + fine-tuning recipe; the defaults are the public OFDB practice.

    Batch sizes are global (summed over all processes under torchrun). Class and image limits
    take the first classes / files in sorted order, so a subset is the same on every run.
    """

    # Model: any timm model name; img_size/patch_size/depth of None keep the model's own value.
    model: str = _field(
        "vit_tiny_patch16_224",
        "a kit network (cifar_mobilenetv2_100, cifar_mobilenetv2_050, tv_resnet18) or any timm.list_models() name")
    img_size: int = _field(224, "model input size in pixels for both phases (the kit's crop_size)")
    patch_size: Optional[int] = _field(None, "ViT patch size (unset: the model's own)")
    depth: Optional[int] = _field(None, "number of transformer blocks (unset: the model's own)")
    # Pre-training on the generated ImageFolder.
    pretrain_classes: Optional[int] = _field(None, "use the first N generated classes (unset: all)")
    pretrain_images_per_class: Optional[int] = _field(
        None, "use the first N images of each generated class (unset: all)")
    pretrain_epochs: int = _field(100, "pre-training epochs")
    pretrain_batch_size: int = _field(256, "global pre-training batch size")
    pretrain_lr: float = _field(1e-3, "pre-training peak learning rate")
    pretrain_weight_decay: float = _field(0.05, "pre-training weight decay")
    pretrain_warmup_epochs: float = _field(5.0, "linear warmup epochs before the decay")
    pretrain_min_lr: float = _field(1e-5, "final learning rate of the cosine decay (cosine only)")
    mixup: float = _field(0.8, "Mixup alpha (0: off)")
    cutmix: float = _field(1.0, "CutMix alpha (0: off)")
    label_smoothing: float = _field(0.1, "pre-training label smoothing")
    crop_scale_min: float = _field(0.08, "RandomResizedCrop lower scale bound")
    hflip: float = _field(0.5, "horizontal flip probability (pre-training)")
    vflip: float = _field(0.5, "vertical flip probability (pre-training)")
    color_jitter: float = _field(0.4, "color jitter strength (pre-training; 0: off)")
    rand_augment: Optional[str] = _field(
        "rand-m9-mstd0.5-inc1", "timm RandAugment string, e.g. rand-m9-mstd0.5-inc1 ('none': off)")
    random_erasing: float = _field(0.5, "random erasing probability (pre-training)")
    # Recipe choices (local_eval.core.recipe); the defaults keep the OFDB ViT recipe.
    pretrain_crop: str = _field(
        "random_resized_crop",
        "random_resized_crop (timm, OFDB) or random_crop (img_size px cut from the image at its own size, "
        "no resize: the kit)")
    pretrain_normalize: str = _field(
        "imagenet", "pre-training normalization: imagenet or kit (mean 0.2, std 0.5)")
    pretrain_opt: str = _field("adamw", "pre-training optimizer: adamw or sgd (momentum)")
    pretrain_momentum: float = _field(0.9, "pre-training SGD momentum (sgd only)")
    pretrain_sched: str = _field(
        "cosine", "pre-training schedule: cosine (warmup + cosine) or step (warmup + multistep)")
    pretrain_milestones: Tuple[float, ...] = _field(
        (1 / 3, 2 / 3), "step schedule milestones as fractions of the epochs, e.g. 0.3334,0.6667")
    pretrain_gamma: float = _field(0.1, "step schedule: learning-rate factor at each milestone")
    # Fine-tuning on the downstream set (CIFAR-100 or --downstream-dir).
    finetune_classes: Optional[int] = _field(None, "use the first N downstream classes (unset: all)")
    finetune_train_per_class: Optional[int] = _field(
        None, "downstream training images per class (unset: all)")
    finetune_test_per_class: Optional[int] = _field(None, "downstream test images per class (unset: all)")
    finetune_epochs: int = _field(100, "fine-tuning epochs (the score window is epochs ceil(E/2)..E)")
    finetune_batch_size: int = _field(256, "global fine-tuning batch size")
    finetune_lr: float = _field(0.01, "SGD peak learning rate")
    finetune_momentum: float = _field(0.9, "SGD momentum")
    finetune_weight_decay: float = _field(1e-4, "SGD weight decay")
    finetune_warmup_epochs: float = _field(10.0, "linear warmup epochs before the decay")
    finetune_min_lr: float = _field(1e-5, "final learning rate of the cosine decay (cosine only)")
    finetune_label_smoothing: float = _field(0.1, "fine-tuning label smoothing")
    finetune_resize: Optional[int] = _field(
        None, "resize downstream images to N, then crop img_size (test: center crop); unset: resize to img_size "
        "and crop with img_size/8 reflect padding")
    finetune_hflip: float = _field(0.5, "horizontal flip probability (fine-tuning)")
    finetune_normalize: str = _field(
        "imagenet", "fine-tuning normalization: imagenet or kit (mean 0.2, std 0.5)")
    finetune_sched: str = _field("cosine", "fine-tuning schedule: cosine or step")
    finetune_milestones: Tuple[float, ...] = _field(
        (1 / 3, 2 / 3), "fine-tuning step milestones as fractions of the epochs")
    finetune_gamma: float = _field(0.1, "fine-tuning step schedule: learning-rate factor at each milestone")
    # Run.
    seed: int = _field(0, "seed of every random choice (recorded in report.json)")
    amp: bool = _field(True, "bfloat16 autocast on CUDA (true/false)")

    def __post_init__(self) -> None:
        for name in ("pretrain_milestones", "finetune_milestones"):  # a list read from JSON
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        self._check_numbers()
        positive = ["img_size", "pretrain_epochs", "pretrain_batch_size", "finetune_epochs",
                    "finetune_batch_size"]
        for name in positive:
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ["patch_size", "depth", "pretrain_images_per_class", "finetune_train_per_class",
                     "finetune_test_per_class"]:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"{name} must be at least 1 (or unset), got {value}")
        for name in ["pretrain_classes", "finetune_classes"]:
            value = getattr(self, name)
            if value is not None and value < 2:
                raise UserError(f"{name} must be at least 2 (or unset), got {value}")
        for name in ["hflip", "vflip", "random_erasing"]:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        # timm's label-smoothing losses assert smoothing < 1 (1 would leave no true-class weight).
        for name in ["label_smoothing", "finetune_label_smoothing"]:
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        # Momentum 1 or more never forgets a gradient: SGD diverges.
        if not 0.0 <= self.finetune_momentum < 1.0:
            raise UserError(f"finetune_momentum must be in [0, 1), got {self.finetune_momentum}")
        if not 0.0 < self.crop_scale_min <= 1.0:
            raise UserError(f"crop_scale_min must be in (0, 1], got {self.crop_scale_min}")
        for name in ["pretrain_lr", "finetune_lr"]:
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ["mixup", "cutmix", "color_jitter", "pretrain_weight_decay",
                     "finetune_weight_decay", "pretrain_warmup_epochs", "finetune_warmup_epochs",
                     "pretrain_min_lr", "finetune_min_lr"]:
            if getattr(self, name) < 0:
                raise UserError(f"{name} must not be negative, got {getattr(self, name)}")
        # Every random source is seeded from the seed modulo 2**31 (train.seed_everything), so a
        # larger one would repeat a smaller one's run; a negative one is refused as generate does.
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"seed must be a non-negative integer of at most {MAX_SEED} "
                            f"(2**31 - 1), got {self.seed}")
        # The upper bounds (local_eval.core.limits): a larger value hangs, allocates without end or
        # is a typo; the lower ones are checked above with their own words.
        for name, bound in CONFIG_BOUNDS.items():
            value = getattr(self, name)
            if value is not None and value > bound.high:
                raise UserError(f"{name} must be at most {show(bound.high)} ({bound.why}), got {value}")
        check_rand_augment(self.rand_augment)
        if self.patch_size is not None and self.img_size % self.patch_size:
            raise UserError(f"img_size {self.img_size} is not a multiple of patch_size "
                            f"{self.patch_size}; pick sizes that divide")
        check_recipe(self)

    def _check_numbers(self) -> None:
        """Every field holds its declared type, and every float is finite.

        NaN passes every "must not be negative" test below (each comparison with it is False),
        trains to a NaN loss, and never equals itself, so a run.json holding it would refuse
        the very command that wrote it; inf trains to NaN too.
        """
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if typing.get_origin(hints[field.name]) is tuple:  # Tuple[float, ...]
                if not isinstance(value, tuple) or not all(_fits(v, float) for v in value):
                    raise UserError(f"{field.name} must be a list of numbers, got {value!r}")
                if not all(math.isfinite(v) for v in value):
                    raise UserError(f"{field.name} must hold finite numbers, got {value!r}")
                continue
            kinds = [k for k in typing.get_args(hints[field.name]) if k is not type(None)]
            kind = kinds[0] if kinds else hints[field.name]
            if value is None and kinds:
                continue
            if not _fits(value, kind):
                raise UserError(f"{field.name} must be {'an' if kind is int else 'a'} "
                                f"{kind.__name__}, got {value!r}")
            if kind is float and not math.isfinite(value):
                raise UserError(f"{field.name} must be a finite number, got {value}; pass an "
                                f"ordinary value like the preset's "
                                f"(python -m local_eval --help lists them)")

    @property
    def uses_mixup(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0

    def to_dict(self) -> Dict[str, Any]:
        """The fields as JSON would hold them (tuples as lists), so run.json compares equal."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    def replace(self, **changes: Any) -> "EvalConfig":
        return dataclasses.replace(self, **changes)


def field_help(name: str) -> str:
    """A field's one-line --help text (kept in the dataclass field's metadata)."""
    return {f.name: f for f in dataclasses.fields(EvalConfig)}[name].metadata["help"]
