"""timm's RandAugment ('rand-m9-mstd0.5-inc1' style strings) with per-sample draws on a batch.

Per layer, every sample draws its own operation (uniformly, with replacement, as timm does),
whether it applies (probability p), its magnitude (Gaussian around m, clipped to 0..mmax) and
its sign; each operation then runs once on the samples that drew it. The 15 operations follow
timm's PIL ones (local_eval/augment/color.py for the ImageEnhance blends); the geometric ones
resample bilinearly with the normalization mean as fill, as timm's create_transform asks.
Images are (B, 3, H, W) float32 whole levels 0..255 throughout.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import List, NamedTuple, Tuple

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as tv2

from submission.errors import UserError

from . import color
from .crops import uniform

# timm's _RAND_INCREASING_TRANSFORMS and _RAND_TRANSFORMS, in its order.
INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
                  "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
                  "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY",
                  "TranslateXRel", "TranslateYRel")
PLAIN_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize",
             "SolarizeAdd", "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY",
             "TranslateXRel", "TranslateYRel")
GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
# timm's argument at magnitude 10 of the operations whose sign it draws at random (its level
# functions: magnitude / 10 x this, negated half the time), and of the Increasing enhancements
# (1 +- magnitude / 10 x this); the PIL route (local_eval.augment.host) uses the same.
SIGNED_RANGE = {"Rotate": 30.0, "ShearX": 0.3, "ShearY": 0.3, "TranslateXRel": 0.45,
                "TranslateYRel": 0.45}
ENHANCE_INCREASING_RANGE = 0.9
ENHANCE = {"Color": color.saturation, "Contrast": color.contrast,
           "Brightness": color.brightness, "Sharpness": color.sharpness}


@dataclass(frozen=True)
class RandAugmentSpec:
    """A parsed timm RandAugment string plus the fill (R, G, B) levels of geometric ops."""

    ops: Tuple[str, ...]
    magnitude: float = 10.0
    magnitude_std: float = 0.0
    magnitude_max: float = 10.0
    num_layers: int = 2
    prob: float = 0.5
    fill: Tuple[int, int, int] = (128, 128, 128)

    @classmethod
    def parse(cls, text: str, fill: Tuple[int, ...]) -> "RandAugmentSpec":
        """Parse as timm's rand_augment_transform does (sections m, n, p, mstd, mmax, inc)."""
        sections = text.split("-")
        if sections[0] != "rand":
            raise UserError(f"augmentation on the device runs timm RandAugment strings "
                            f"('rand-m9-mstd0.5-inc1'), not {text!r}; pass --loader pil for "
                            f"other timm auto-augment policies")
        values = dict(magnitude=10.0, magnitude_std=0.0, magnitude_max=10.0, num_layers=2,
                      prob=0.5)
        increasing = False
        for section in sections[1:]:
            if section.startswith("t"):
                raise UserError(f"augmentation on the device runs timm's standard RandAugment "
                                f"operation set; {text!r} names another ({section!r}); pass "
                                f"--loader pil")
            parts = re.split(r"(\d.*)", section)
            if len(parts) < 2:
                continue  # timm ignores a section without a number
            key, value = parts[:2]
            try:
                if key == "mstd":
                    values["magnitude_std"] = math.inf if float(value) > 100 else float(value)
                elif key == "mmax":
                    values["magnitude_max"] = float(int(value))
                elif key == "inc":
                    increasing = True  # timm tests bool() of the text, so inc0 counts too
                elif key in ("m", "n", "p"):
                    name = {"m": "magnitude", "n": "num_layers", "p": "prob"}[key]
                    values[name] = float(value) if key == "p" else int(value)
                else:
                    raise UserError(f"unknown RandAugment section {section!r} in {text!r}")
            except ValueError:
                raise UserError(f"RandAugment section {section!r} of {text!r} is not a "
                                f"number") from None
        return cls(ops=INCREASING_OPS if increasing else PLAIN_OPS,
                   fill=(int(fill[0]), int(fill[1]), int(fill[2])), **values)


def affine(images: torch.Tensor, matrices: torch.Tensor, fill: Tuple[int, ...]) -> torch.Tensor:
    """(n, 3, H, W) levels, (n, 2, 3) float: output pixel (x, y) (continuous coordinates, pixel
    centres at i + 0.5, PIL's convention) reads the input at matrices @ (x, y, 1), bilinearly.

    As PIL's Image.transform: a pixel whose source point lies outside the image takes `fill`,
    one inside reads its neighbours with the edge pixels repeated.
    """
    n, _, height, width = images.shape
    ys, xs = torch.meshgrid(torch.arange(height, device=images.device) + 0.5,
                            torch.arange(width, device=images.device) + 0.5, indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).to(matrices.dtype)  # (H, W, 3)
    source = torch.einsum("hwk,njk->nhwj", points, matrices)  # (n, H, W, 2) input x, y
    inside = ((source[..., 0] >= 0) & (source[..., 0] < width)
              & (source[..., 1] >= 0) & (source[..., 1] < height))
    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=source.dtype, device=source.device)
    grid = (source * scale - 1.0).to(images.dtype)
    sampled = F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
    fill_t = torch.tensor(fill, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    # PIL truncates; the epsilon keeps a float32 result a hair under a whole level (where PIL's
    # double arithmetic lands on it) from dropping a level.
    return torch.where(inside[:, None], sampled.add_(1e-3).floor_().clamp_(0, 255), fill_t)


def _geometric_matrices(names: Tuple[str, ...], op: torch.Tensor, level: torch.Tensor,
                        sign: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(n, 2, 3) float64 matrices of timm's geometric ops, per sample (op indexes `names`)."""
    matrices = torch.zeros(op.shape[0], 2, 3, dtype=torch.float64, device=op.device)
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
    never = torch.zeros_like(op, dtype=torch.bool)
    is_op = {name: op == names.index(name) if name in names else never for name in GEOMETRIC}
    matrices[:, 0, 1] = torch.where(is_op["ShearX"], level * SIGNED_RANGE["ShearX"] * sign, 0.0)
    matrices[:, 1, 0] = torch.where(is_op["ShearY"], level * SIGNED_RANGE["ShearY"] * sign, 0.0)
    matrices[:, 0, 2] = torch.where(is_op["TranslateXRel"],
                                    level * SIGNED_RANGE["TranslateXRel"] * sign * width, 0.0)
    matrices[:, 1, 2] = torch.where(is_op["TranslateYRel"],
                                    level * SIGNED_RANGE["TranslateYRel"] * sign * height, 0.0)
    # PIL's rotate(degrees) about the centre: the inverse map turns by -degrees.
    angle = -torch.deg2rad(level * SIGNED_RANGE["Rotate"] * sign)
    cos, sin = torch.cos(angle), torch.sin(angle)
    cx, cy = width / 2.0, height / 2.0
    rotation = torch.stack([torch.stack([cos, sin, cx - cos * cx - sin * cy], dim=1),
                            torch.stack([-sin, cos, cy + sin * cx - cos * cy], dim=1)], dim=1)
    return torch.where(is_op["Rotate"][:, None, None], rotation, matrices)


def apply_op(name: str, images: torch.Tensor, level: torch.Tensor, sign: torch.Tensor,
             fill: Tuple[int, ...]) -> torch.Tensor:
    """timm operation `name` on (n, 3, H, W) levels at per-sample level (n,) = magnitude / 10
    and sign (n,) (+1 or -1, timm's random negation)."""
    view = (-1, 1, 1, 1)
    if name in GEOMETRIC:
        names = (name,)
        matrices = _geometric_matrices(names, torch.zeros_like(level, dtype=torch.long), level,
                                       sign, *images.shape[-2:])
        return affine(images, matrices.float(), fill)
    if name == "AutoContrast":  # per channel, stretch min..max to 0..255 (PIL's int() floors)
        low = images.amin(dim=(2, 3), keepdim=True)
        high = images.amax(dim=(2, 3), keepdim=True)
        stretched = ((images - low) * (255.0 / (high - low).clamp(min=1))).floor_().clamp_(0, 255)
        return torch.where(high > low, stretched, images)
    if name == "Equalize":
        return tv2.equalize(images.to(torch.uint8)).float()
    if name == "Invert":
        return 255.0 - images
    if name.startswith("Posterize"):
        steps = torch.floor(level * 4)
        bits = 4 - steps if name == "PosterizeIncreasing" else steps
        step = torch.pow(2.0, 8 - bits).to(images.dtype).view(view)
        return torch.floor(images / step) * step
    if name.startswith("Solarize") and name != "SolarizeAdd":
        threshold = torch.clamp(torch.floor(level * 256), max=256)
        if name == "SolarizeIncreasing":
            threshold = 256 - threshold
        threshold = threshold.to(images.dtype).view(view)
        return torch.where(images >= threshold, 255.0 - images, images)
    if name == "SolarizeAdd":
        add = torch.clamp(torch.floor(level * 110), max=128).to(images.dtype).view(view)
        return torch.where(images < 128, (images + add).clamp(max=255), images)
    base = name.replace("Increasing", "")
    if name.endswith("Increasing"):
        factor = torch.clamp(1.0 + sign * level * ENHANCE_INCREASING_RANGE, min=0.1)
    else:
        factor = level * 1.8 + 0.1
    return ENHANCE[base](images, factor)


class RandAugmentLayer(NamedTuple):
    """One layer's per-sample draws, each (B,) on the generator's device."""

    op: torch.Tensor  # int64 index into spec.ops, -1 where the layer is skipped
    magnitude: torch.Tensor  # float64, clipped to 0..spec.magnitude_max (level = magnitude / 10)
    sign: torch.Tensor  # float64, +1 or -1 (timm's random negation)


def draw_rand_augment(batch: int, generator: torch.Generator,
                      spec: RandAugmentSpec) -> List[RandAugmentLayer]:
    """Every layer's draws for `batch` samples, in the order rand_augment makes them."""
    layers = []
    for _ in range(spec.num_layers):
        op = torch.randint(0, len(spec.ops), (batch,), generator=generator,
                           device=generator.device)
        skip = uniform((batch,), generator) > spec.prob
        if math.isinf(spec.magnitude_std):
            magnitude = uniform((batch,), generator, 0.0, spec.magnitude, dtype=torch.float64)
        else:
            noise = torch.randn((batch,), generator=generator, device=generator.device,
                                dtype=torch.float64)
            magnitude = spec.magnitude + spec.magnitude_std * noise
        sign = torch.where(uniform((batch,), generator) > 0.5, -1.0, 1.0).double()
        layers.append(RandAugmentLayer(torch.where(skip, -1, op),
                                       magnitude.clamp(0.0, spec.magnitude_max), sign))
    return layers


def rand_augment(images: torch.Tensor, generator: torch.Generator,
                 spec: RandAugmentSpec) -> torch.Tensor:
    """(B, 3, H, W) levels -> same, each sample through spec.num_layers drawn operations."""
    batch, _, height, width = images.shape
    images = images.clone()  # the rows of each layer's ops are then rewritten in place
    geometric = [spec.ops.index(name) for name in GEOMETRIC]
    for layer in draw_rand_augment(batch, generator, spec):
        op = layer.op.to(images.device)
        level = (layer.magnitude / 10.0).to(images.device)
        sign = layer.sign.to(images.device)
        present = set(op.unique().tolist()) - {-1}  # one sync per layer, not per sample
        if present & set(geometric):
            rows = torch.isin(op, torch.tensor(geometric, device=op.device)).nonzero().squeeze(1)
            matrices = _geometric_matrices(spec.ops, op[rows], level[rows], sign[rows],
                                           height, width)
            images[rows] = affine(images[rows], matrices.float(), spec.fill)
        for index in sorted(present - set(geometric)):
            rows = (op == index).nonzero().squeeze(1)
            images[rows] = apply_op(spec.ops[index], images[rows], level[rows], sign[rows],
                                    spec.fill)
    return images
