"""The store path's pre-training augmentation, per sample in PIL, for loader workers on a CPU.

On a CPU the batched transform (local_eval.augment.device) costs more than PIL's uint8
operations wherever it resamples: every step is a float pass over the whole batch, and the
random-resized crop's roi_align needs the whole source batch in float32. `HostTransform` makes
exactly the batched transform's draws (the same functions, from the same generator, in the same
order) and applies them one sample at a time with PIL, as the PIL path does: crop, then resize
bilinearly (torchvision's resized_crop on a PIL image); transposes for the flips; timm's own
RandAugment operations; then the normalization arithmetic of ToTensor + Normalize and the
erasing box. From one batch seed the two transforms give the same images within the tolerance
the batched one keeps to PIL (docs/evaluator.md); only the speed differs. In a loader it is
split as a GPU loader is: `prepare` (the workers) hands over uint8 levels, `finish` (the
training process) normalizes and erases; both seed their generator from the batch's seed and
draw the erasing boxes first, so together they equal one call. Reading an image from the store
replaces the PIL path's PNG decoding.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from ..core.config import EvalConfig
from ..core.recipe import normalization
from .device import (
    ErasingBoxes,
    erase,
    erasing_boxes,
    flip_draws,
    normalize,
    rand_augment_spec,
    random_crop_boxes,
    random_resized_crop_boxes,
)
from .randaugment import (
    ENHANCE,
    ENHANCE_INCREASING_RANGE,
    SIGNED_RANGE,
    RandAugmentSpec,
    draw_rand_augment,
)


def pil_op_arguments(name: str, magnitude: float, sign: float) -> Tuple[float, ...]:
    """The arguments timm's RandAugment passes to its PIL operation `name` at `magnitude`
    (0..mmax) when its random negation comes out as `sign` (+1 or -1): its own level
    function where it draws no sign, its arithmetic with `sign` where it does."""
    from timm.data import auto_augment

    if name in SIGNED_RANGE:
        return (sign * ((magnitude / 10) * SIGNED_RANGE[name]),)
    if name.endswith("Increasing") and name[:-len("Increasing")] in ENHANCE:
        return (max(0.1, 1.0 + sign * ((magnitude / 10) * ENHANCE_INCREASING_RANGE)),)
    level = auto_augment.LEVEL_TO_ARG[name]
    return tuple(level(magnitude, {})) if level is not None else ()


class HostTransform:
    """(B, 3, H, W) uint8 CPU batch -> (B, 3, S, S) normalized float32: the batched
    pre-training transform's draws, applied per sample in PIL (see the module doc)."""

    def __init__(self, size: int, resized_crop: bool, scale: Tuple[float, float],
                 hflip: float, vflip: float, rand_augment: Optional[RandAugmentSpec],
                 mean: Sequence[float], std: Sequence[float], erasing: float) -> None:
        self.size, self.resized_crop, self.scale = size, resized_crop, scale
        self.hflip, self.vflip, self.rand_augment = hflip, vflip, rand_augment
        self.mean, self.std = tuple(mean), tuple(std)
        self.erasing = erasing

    def _draws(self, batch: int, height: int, width: int, generator: torch.Generator):
        """The batched transform's draws, in its order: box, flips, RandAugment layers."""
        if self.resized_crop:
            boxes = random_resized_crop_boxes(batch, height, width, self.scale, (3 / 4, 4 / 3),
                                              generator)
        else:
            top, left = random_crop_boxes(batch, height, width, self.size, generator)
            side = torch.full_like(top, self.size)
            boxes = (top, left, side, side)
        flips = [flip_draws(batch, prob, generator).tolist() if prob > 0 else [False] * batch
                 for prob in (self.hflip, self.vflip)]
        layers = ([] if self.rand_augment is None
                  else draw_rand_augment(batch, generator, self.rand_augment))
        return [box.tolist() for box in boxes], flips, layers

    def _augment(self, image: Image.Image, sample: int, layers: List) -> Image.Image:
        from timm.data.auto_augment import NAME_TO_OP

        spec = self.rand_augment
        for op, magnitude, sign in layers:
            index = int(op[sample])
            if index < 0:
                continue
            name = spec.ops[index]
            image = NAME_TO_OP[name](image, *pil_op_arguments(name, float(magnitude[sample]),
                                                              float(sign[sample])),
                                     fillcolor=spec.fill, resample=Image.BILINEAR)
        return image

    def _erasing_draws(self, batch: int, generator: torch.Generator) -> Optional[ErasingBoxes]:
        """Drawn first, as the batched transform does: they need only the output size."""
        if self.erasing <= 0:
            return None
        return erasing_boxes(batch, self.size, self.size, self.erasing, generator)

    def _levels(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, 3, H, W) uint8 -> (B, 3, S, S) uint8: crop, resize,
        flips and RandAugment, per sample in PIL."""
        if (images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8
                or images.device.type != "cpu"):
            raise ValueError(f"expected a (B, 3, H, W) uint8 CPU batch, got "
                             f"{tuple(images.shape)} {images.dtype} on {images.device}")
        batch, _, height, width = images.shape
        (tops, lefts, box_hs, box_ws), (hflips, vflips), layers = self._draws(
            batch, height, width, generator)
        pixels = images.permute(0, 2, 3, 1).numpy()  # (B, H, W, 3) uint8, a view of NHWC
        levels = np.empty((batch, 3, self.size, self.size), dtype=np.uint8)
        for sample in range(batch):
            top, left = tops[sample], lefts[sample]
            image = Image.fromarray(np.ascontiguousarray(pixels[sample])).crop(
                (left, top, left + box_ws[sample], top + box_hs[sample]))
            if self.resized_crop:
                image = image.resize((self.size, self.size), Image.BILINEAR)
            if hflips[sample]:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            if vflips[sample]:
                image = image.transpose(Image.FLIP_TOP_BOTTOM)
            # channels first while the image is in cache: the float conversion then reads
            # contiguous memory (a transposing copy of the whole batch costs far more)
            levels[sample] = np.asarray(self._augment(image, sample, layers)).transpose(2, 0, 1)
        return torch.from_numpy(levels)

    def _finish(self, levels: torch.Tensor, boxes: Optional[ErasingBoxes]) -> torch.Tensor:
        """(B, 3, S, S) uint8 -> normalized float32, each drawn erasing box set to 0."""
        out = normalize(levels, self.mean, self.std)
        return out if boxes is None else erase(out, boxes, inplace=True)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The whole chain in one process, as DeviceTransform is called."""
        boxes = self._erasing_draws(images.shape[0], generator)
        return self._finish(self._levels(images, generator), boxes)

    def prepare(self, images: torch.Tensor, seed: int) -> torch.Tensor:
        """The loader workers' part: (B, 3, H, W) uint8 -> (B, 3, S, S) uint8 levels."""
        generator = torch.Generator().manual_seed(seed)
        self._erasing_draws(images.shape[0], generator)  # finish() draws them; keep in step
        return self._levels(images, generator)

    def finish(self, levels: torch.Tensor, seed: int) -> torch.Tensor:
        """The training process's part: prepare()'s levels -> (B, 3, S, S) float32, the same
        as __call__ with a generator seeded by `seed`."""
        return self._finish(levels, self._erasing_draws(levels.shape[0],
                                                        torch.Generator().manual_seed(seed)))


def build_host_transform(config: EvalConfig) -> Optional[HostTransform]:
    """The pre-training transform of `config` per sample in PIL, for CPU loader workers; None
    where the batched transform is the one to use there: the kit's random crop with no
    RandAugment (batched, it converts only the pixels it keeps and outruns PIL), or colour
    jitter without RandAugment (a step this one does not run)."""
    resized_crop = config.pretrain_crop != "random_crop"
    if not (resized_crop or config.rand_augment):
        return None
    if not config.rand_augment and config.color_jitter > 0:
        return None
    mean, std = normalization(config.pretrain_normalize)
    spec = rand_augment_spec(config) if config.rand_augment else None
    return HostTransform(config.img_size, resized_crop, (config.crop_scale_min, 1.0),
                         config.hflip, config.vflip, spec, mean, std, config.random_erasing)
