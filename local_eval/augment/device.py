"""Augmentation of whole uint8 batches on the device they sit on (GPU or CPU).

`build_device_transform(config, phase)` gives the batched counterpart of the PIL transforms in
local_eval.augment.transforms: (B, 3, H, W) uint8 -> (B, 3, S, S) normalized float. Steps, in the PIL
path's order: crop (the kit's random crop without resize, or timm's random-resized crop),
per-sample flips, colour (RandAugment, or colour jitter when RandAugment is off, as timm does),
normalization, random erasing. Between crop and normalization images are float32 holding whole
levels 0..255, as the PIL images hold uint8, so the colour steps round as PIL does.

Every random draw comes from the generator passed to the call, so a seeded generator repeats a
batch exactly, and every sample draws its own crop, flips and operations.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torchvision.transforms import functional as tvf

from ..core.config import EvalConfig
from ..core.recipe import normalization
from .color import color_jitter
from .crops import crop, random_crop_boxes, random_resized_crop, random_resized_crop_boxes, resized_crop, uniform
from .randaugment import RandAugmentSpec, rand_augment

# The API: the transform, and its building blocks for a loader that crops before the device.
__all__ = ["PHASES", "DeviceTransform", "build_device_transform", "crop", "random_crop_boxes",
           "random_resized_crop", "random_resized_crop_boxes", "resized_crop", "random_flip",
           "normalize", "random_erasing", "color_jitter", "rand_augment", "RandAugmentSpec",
           "flip_draws", "erasing_boxes", "erase", "ErasingBoxes", "rand_augment_spec"]

PHASES = ("pretrain", "finetune-train", "finetune-test")
# step(images, generator=generator) -> images (B, 3, h, w): uint8 or float32 levels 0..255.
Step = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def flip_draws(batch: int, prob: float, generator: torch.Generator) -> torch.Tensor:
    """(batch,) bool on the generator's device: which samples random_flip mirrors."""
    return uniform((batch,), generator) < prob


def random_flip(images: torch.Tensor, prob: float, dim: int,
                generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W): each sample mirrored along `dim` (-1: horizontal, -2: vertical) with
    probability `prob`, as torchvision's RandomHorizontalFlip / RandomVerticalFlip."""
    flip = flip_draws(images.shape[0], prob, generator).to(images.device)
    length = images.shape[dim]
    forward = torch.arange(length, device=images.device)
    index = torch.where(flip[:, None], forward.flip(0), forward)  # (B, length) source positions
    shape = [images.shape[0], 1, 1, 1]
    shape[dim] = length
    # One gather reads each pixel once (a flip of the whole batch plus a select reads it thrice).
    return images.gather(dim, index.view(shape).expand_as(images))


def normalize(levels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(B, 3, H, W) uint8 or float levels 0..255 -> float32, with the arithmetic of
    torchvision's ToTensor (divide by 255) then Normalize (subtract mean, divide by std)."""
    # One new contiguous tensor (a permuted view is transposed by the copy), then in place.
    images = torch.empty(levels.shape, dtype=torch.float32, device=levels.device)
    images.copy_(levels).div_(255)
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    return images.sub_(mean_t).div_(std_t)


class ErasingBoxes(NamedTuple):
    """random_erasing's draws, each (B,) on the generator's device."""

    erase: torch.Tensor  # bool: the sample gets its box
    top: torch.Tensor  # int64, as the three below
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor


def erasing_boxes(batch: int, height: int, width: int, prob: float,
                  generator: torch.Generator, area: Tuple[float, float] = (0.02, 1 / 3),
                  aspect: Tuple[float, float] = (0.3, 1 / 0.3)) -> ErasingBoxes:
    """timm's RandomErasing draws (mode 'const', one box) for every sample at once.

    With probability `prob` a sample gets one box: 10 tries of an area fraction in `area` and a
    log-uniform aspect ratio, the first box strictly smaller than the image wins, none if no
    try fits. Draws come from `generator`, not Python's random module.
    """
    tries = 10
    target = height * width * uniform((batch, tries), generator, *area, dtype=torch.float64)
    ratio = torch.exp(uniform((batch, tries), generator, math.log(aspect[0]),
                              math.log(aspect[1]), dtype=torch.float64))
    box_h = torch.round(torch.sqrt(target * ratio)).long()
    box_w = torch.round(torch.sqrt(target / ratio)).long()
    fits = (box_w < width) & (box_h < height)
    first = fits.long().argmax(dim=1, keepdim=True)
    box_h = box_h.gather(1, first).squeeze(1)
    box_w = box_w.gather(1, first).squeeze(1)
    corner = uniform((batch, 2), generator, dtype=torch.float64)
    top = torch.floor(corner[:, 0] * (height - box_h + 1)).long()
    left = torch.floor(corner[:, 1] * (width - box_w + 1)).long()
    erase = (uniform((batch,), generator) < prob) & fits.any(dim=1)
    return ErasingBoxes(erase, top, left, box_h, box_w)


def random_erasing(images: torch.Tensor, prob: float, generator: torch.Generator,
                   area: Tuple[float, float] = (0.02, 1 / 3),
                   aspect: Tuple[float, float] = (0.3, 1 / 0.3)) -> torch.Tensor:
    """(B, C, H, W) float: timm's RandomErasing (erasing_boxes) for every sample at once, each
    chosen sample's box set to 0."""
    batch, _, height, width = images.shape
    return erase(images, erasing_boxes(batch, height, width, prob, generator, area, aspect))


def erase(images: torch.Tensor, boxes: ErasingBoxes, inplace: bool = False) -> torch.Tensor:
    """(B, C, H, W) float with each chosen sample's box set to 0: `images` itself when
    `inplace`, else a copy. On a CPU a slice per erased sample (far cheaper than a masked fill
    of the whole batch); on a GPU one masked fill (no launch per sample)."""
    if images.device.type == "cpu":
        out = images if inplace else images.clone()
        for sample in boxes.erase.nonzero().flatten().tolist():
            top, left = int(boxes.top[sample]), int(boxes.left[sample])
            out[sample, :, top:top + int(boxes.height[sample]),
                left:left + int(boxes.width[sample])] = 0.0
        return out
    _, _, height, width = images.shape
    top, left = boxes.top, boxes.left
    rows = torch.arange(height, device=top.device)
    cols = torch.arange(width, device=top.device)
    inside_rows = (rows >= top[:, None]) & (rows < (top + boxes.height)[:, None])  # (B, H)
    inside_cols = (cols >= left[:, None]) & (cols < (left + boxes.width)[:, None])  # (B, W)
    mask = inside_rows[:, :, None] & inside_cols[:, None, :] & boxes.erase[:, None, None]
    mask = mask[:, None].to(images.device)
    return images.masked_fill_(mask, 0.0) if inplace else images.masked_fill(mask, 0.0)


def _random_crop(images: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    batch, _, height, width = images.shape
    top, left = random_crop_boxes(batch, height, width, size, generator)
    return crop(images, top, left, size)


def _resized_crop(images: torch.Tensor, generator: torch.Generator, size: int,
                  scale: Tuple[float, float]) -> torch.Tensor:
    return random_resized_crop(images, size, scale, (3 / 4, 4 / 3), generator).round_()


def _resize(images: torch.Tensor, generator: torch.Generator, size: List[int]) -> torch.Tensor:
    """torchvision's Resize on the batch: [n] sets the shorter side, [h, w] both."""
    height, width = images.shape[-2:]
    target = size if len(size) == 2 else (
        [size[0], int(size[0] * width / height)] if height <= width
        else [int(size[0] * height / width), size[0]])
    if list(target) == [height, width]:
        return images  # PIL returns the same pixels for a resize to the image's own size
    return tvf.resize(images.float(), target, antialias=True).round_().clamp_(0, 255)


def _pad_reflect(images: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    return tvf.pad(images.float(), [pad], padding_mode="reflect")  # no reflect pad of uint8


def _center_crop(images: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    return tvf.center_crop(images, [size, size])


class DeviceTransform:
    """(B, 3, H, W) uint8 on any device -> (B, 3, S, S) normalized `dtype` on that device.

    `geometry` steps (crops, resizes) take the uint8 batch, so that a crop converts only the
    pixels it keeps; `steps` then run on float32 levels; then normalization, random erasing (its
    boxes drawn first) and the cast. A generator on the images' device or the CPU supplies every random draw.
    """

    def __init__(self, size: int, geometry: Sequence[Step], steps: Sequence[Step],
                 mean: Sequence[float], std: Sequence[float], erasing: float = 0.0,
                 dtype: torch.dtype = torch.float32) -> None:
        self.size, self.geometry, self.steps = size, tuple(geometry), tuple(steps)
        self.mean, self.std, self.erasing, self.dtype = mean, std, erasing, dtype

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"expected a (B, 3, H, W) uint8 batch, got {tuple(images.shape)} "
                             f"{images.dtype}")
        # Autocast off: a caller's bf16 region would round the levels (sharpness convolves,
        # the geometric ops' sampling grid is a matrix product).
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            # The erasing boxes are drawn first: they depend only on the output size, so a
            # transform split across processes (local_eval.augment.host) can draw them
            # where it erases.
            boxes = (erasing_boxes(images.shape[0], self.size, self.size, self.erasing,
                                   generator) if self.erasing > 0 else None)
            levels = images.contiguous()
            for step in self.geometry:
                levels = step(levels, generator=generator)
            levels = levels.float()
            for step in self.steps:
                levels = step(levels, generator=generator)
            out = normalize(levels, self.mean, self.std)
            if boxes is not None:
                out = erase(out, boxes, inplace=True)  # `out` is normalize()'s new tensor
            return out.to(self.dtype)


def rand_augment_spec(config: EvalConfig) -> RandAugmentSpec:
    """config.rand_augment parsed, geometric ops filling with the normalization mean (as timm's
    create_transform asks)."""
    mean, _ = normalization(config.pretrain_normalize)
    return RandAugmentSpec.parse(config.rand_augment, tuple(min(255, round(255 * m)) for m in mean))


def _pretrain_steps(config: EvalConfig) -> Tuple[List[Step], List[Step]]:
    """(geometry, colour) steps of pre-training."""
    size = config.img_size
    if config.pretrain_crop == "random_crop":
        geometry: List[Step] = [functools.partial(_random_crop, size=size)]
    else:
        geometry = [functools.partial(_resized_crop, size=size,
                                      scale=(config.crop_scale_min, 1.0))]
    steps: List[Step] = []
    if config.hflip > 0:
        steps.append(functools.partial(random_flip, prob=config.hflip, dim=-1))
    if config.vflip > 0:
        steps.append(functools.partial(random_flip, prob=config.vflip, dim=-2))
    if config.rand_augment:
        # timm's create_transform drops colour jitter whenever RandAugment is on.
        steps.append(functools.partial(rand_augment, spec=rand_augment_spec(config)))
    elif config.color_jitter > 0:
        steps.append(functools.partial(color_jitter, strength=config.color_jitter))
    return geometry, steps


def _finetune_steps(config: EvalConfig, train: bool) -> Tuple[List[Step], List[Step]]:
    """(geometry, flip) steps of fine-tuning."""
    size = config.img_size
    if config.finetune_resize is None:
        geometry: List[Step] = [functools.partial(_resize, size=[size, size])]
        if train:
            geometry += [functools.partial(_pad_reflect, pad=size // 8),
                      functools.partial(_random_crop, size=size)]
    else:
        geometry = [functools.partial(_resize, size=[config.finetune_resize])]
        geometry.append(functools.partial(_random_crop if train else _center_crop, size=size))
    flips: List[Step] = []
    if train and config.finetune_hflip > 0:
        flips.append(functools.partial(random_flip, prob=config.finetune_hflip, dim=-1))
    return geometry, flips


def build_device_transform(config: EvalConfig, phase: str,
                           dtype: Optional[torch.dtype] = None) -> DeviceTransform:
    """The batched transform of `phase` (one of PHASES) under `config`; see the module doc."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    dtype = dtype or torch.float32
    if phase == "pretrain":
        mean, std = normalization(config.pretrain_normalize)
        return DeviceTransform(config.img_size, *_pretrain_steps(config), mean, std,
                               erasing=config.random_erasing, dtype=dtype)
    mean, std = normalization(config.finetune_normalize)
    return DeviceTransform(config.img_size, *_finetune_steps(config, phase == "finetune-train"),
                           mean, std, dtype=dtype)
