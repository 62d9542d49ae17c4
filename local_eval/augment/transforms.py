"""Image transforms of both phases, per the config's recipe choices (local_eval.core.recipe).

Pre-training: `random_resized_crop` is timm's training transform (OFDB practice);
`random_crop` cuts img_size x img_size out of the image at its own resolution, as the FractalDB
code and so the organizer's kit do, then the same optional flips / colour jitter / RandAugment /
random erasing from timm. Fine-tuning: with `finetune_resize` unset, resize to img_size and take
a reflect-padded random crop (CIFAR practice); with it set, resize the shorter side to it and
crop img_size (random for training, centre for testing), as the FractalDB fine-tuning code does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Tuple

from PIL import Image
from torchvision import transforms

from submission.dataset_files import dataset_files
from submission.errors import UserError

from ..core.config import EvalConfig
from ..core.recipe import normalization


def pretrain_transform(config: EvalConfig) -> Callable:
    """PIL image -> (3, img_size, img_size) float32 tensor, normalized."""
    from timm.data import create_transform

    mean, std = normalization(config.pretrain_normalize)
    common = dict(input_size=config.img_size, is_training=True,
                  color_jitter=config.color_jitter if config.color_jitter > 0 else None,
                  auto_augment=config.rand_augment, re_prob=config.random_erasing,
                  interpolation="bilinear", mean=mean, std=std)
    if config.pretrain_crop == "random_resized_crop":
        return create_transform(scale=(config.crop_scale_min, 1.0), ratio=(3 / 4, 4 / 3),
                                hflip=config.hflip, vflip=config.vflip, **common)
    # timm's (primary, secondary, final) split: keep its colour / RandAugment and its
    # ToTensor + Normalize (+ random erasing), replace the resizing primary step.
    _, secondary, final = create_transform(separate=True, hflip=0.0, vflip=0.0, **common)
    primary = [transforms.RandomCrop(config.img_size)]
    if config.hflip > 0:
        primary.append(transforms.RandomHorizontalFlip(config.hflip))
    if config.vflip > 0:
        primary.append(transforms.RandomVerticalFlip(config.vflip))
    return transforms.Compose([*primary, *secondary.transforms, *final.transforms])


def finetune_transforms(config: EvalConfig) -> Tuple[Callable, Callable]:
    """(train, test) transforms: PIL image -> (3, img_size, img_size) float32, normalized."""
    size = config.img_size
    mean, std = normalization(config.finetune_normalize)
    normalize = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    flip = [transforms.RandomHorizontalFlip(config.finetune_hflip)] if config.finetune_hflip > 0 \
        else []
    if config.finetune_resize is None:
        resize = transforms.Resize((size, size), antialias=True)
        train = transforms.Compose([resize, transforms.RandomCrop(size, padding=size // 8,
                                                                  padding_mode="reflect"),
                                    *flip, *normalize])
        return train, transforms.Compose([resize, *normalize])
    resize = transforms.Resize(config.finetune_resize, antialias=True)  # the shorter side
    train = transforms.Compose([resize, transforms.RandomCrop(size), *flip, *normalize])
    test = transforms.Compose([resize, transforms.CenterCrop(size), *normalize])
    return train, test


def _first_images(root: Path) -> List[Path]:
    """The first image of each class of an ImageFolder (submission.dataset_files decides)."""
    files = dataset_files(root)
    return [root / name / images[0] for name, images in zip(files.classes, files.images)]


def image_size(root: Path) -> Tuple[int, int]:
    """(width, height) of the first image of the first class folder of an ImageFolder."""
    for first in _first_images(root)[:1]:
        try:
            with Image.open(first) as image:
                return image.size
        except OSError as error:
            raise UserError(f"cannot read {first} ({error}); every image must open with "
                            f"PIL") from None
    raise UserError(f"{root} holds no image in its class folders")


def check_crop_fits(root: Path, config: EvalConfig, classes: Optional[int] = None) -> None:
    """With pretrain_crop random_crop, refuse images smaller than the img_size crop.

    Reads the header of the first image of each of the first `classes` class folders (all when
    None); the contest's images all have one size, so that finds a mismatch cheaply.
    """
    if config.pretrain_crop != "random_crop":
        return
    for first in _first_images(root)[:classes]:
        try:
            with Image.open(first) as image:
                width, height = image.size
        except OSError as error:
            raise UserError(f"cannot read {first} ({error}); every image must open with PIL"
                            ) from None
        if min(width, height) < config.img_size:
            raise UserError(
                f"--data image {first} is {width}x{height} px, smaller than the {config.img_size}"
                f" px crop that pretrain_crop random_crop cuts without resizing; generate larger"
                f" images, lower --img-size, or pass --pretrain-crop random_resized_crop")
