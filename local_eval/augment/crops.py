"""Batched crops on the device: the kit's random crop without resize and timm's random-resized crop.

Every random draw comes from the `generator` passed in (on the images' device or the CPU), so a
seeded generator repeats a batch exactly; each sample gets its own box. The box samplers are
separate functions so that a loader can draw boxes first and read only the rows they touch.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torchvision.ops import roi_align

from submission.errors import UserError


def uniform(shape: Tuple[int, ...], generator: torch.Generator, low: float = 0.0,
            high: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform [low, high) draws of `shape` on the generator's device."""
    draw = torch.rand(shape, generator=generator, device=generator.device, dtype=dtype)
    return low + (high - low) * draw


def random_crop_boxes(batch: int, height: int, width: int, size: int,
                      generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """(top, left), each (batch,) int64 on the generator's device: torchvision RandomCrop's
    uniform corner of a size x size box; no draw when the image is already that size."""
    if height < size or width < size:
        raise UserError(f"images of {width}x{height} px are smaller than the {size} px crop "
                        f"that random_crop cuts without resizing; lower --img-size or pass "
                        f"--pretrain-crop random_resized_crop")
    zeros = torch.zeros(batch, dtype=torch.int64, device=generator.device)
    if height == size and width == size:
        return zeros, zeros.clone()
    top = torch.randint(0, height - size + 1, (batch,), generator=generator,
                        device=generator.device)
    left = torch.randint(0, width - size + 1, (batch,), generator=generator,
                         device=generator.device)
    return top, left


def crop(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) any dtype -> (B, C, size, size): sample b's rows top[b]..+size, columns
    left[b]..+size, an exact slice (one gather through an unfold view, no copy of the rest)."""
    windows = images.unfold(2, size, 1).unfold(3, size, 1)  # (B, C, H-s+1, W-s+1, s, s) view
    batch = torch.arange(images.shape[0], device=images.device)
    return windows[batch, :, top.to(images.device), left.to(images.device)]


def random_resized_crop_boxes(batch: int, height: int, width: int,
                              scale: Tuple[float, float], ratio: Tuple[float, float],
                              generator: torch.Generator) -> Tuple[torch.Tensor, ...]:
    """(top, left, box_height, box_width), each (batch,) int64 on the generator's device.

    torchvision's RandomResizedCrop.get_params for every sample at once: 10 tries of an area
    fraction in `scale` and a log-uniform aspect ratio in `ratio`, the first box that fits wins,
    else the centre crop clipped to `ratio`. Box arithmetic in float64 so that the rounding
    matches the Python floats of the reference.
    """
    tries = 10
    area = height * width
    target = area * uniform((batch, tries), generator, *scale, dtype=torch.float64)
    log_ratio = uniform((batch, tries), generator, math.log(ratio[0]), math.log(ratio[1]),
                        dtype=torch.float64)
    aspect = torch.exp(log_ratio)
    box_w = torch.round(torch.sqrt(target * aspect)).long()
    box_h = torch.round(torch.sqrt(target / aspect)).long()
    fits = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
    first = fits.long().argmax(dim=1, keepdim=True)  # the first try that fits (0 if none)
    found = fits.any(dim=1)
    box_w = box_w.gather(1, first).squeeze(1)
    box_h = box_h.gather(1, first).squeeze(1)
    # Centre-crop fallback, as torchvision computes it (the same for every sample).
    in_ratio = width / height
    if in_ratio < min(ratio):
        fall_w, fall_h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fall_w, fall_h = int(round(height * max(ratio))), height
    else:
        fall_w, fall_h = width, height
    box_w = torch.where(found, box_w, torch.full_like(box_w, fall_w))
    box_h = torch.where(found, box_h, torch.full_like(box_h, fall_h))
    corner = uniform((batch, 2), generator, dtype=torch.float64)
    top = torch.floor(corner[:, 0] * (height - box_h + 1)).long()
    left = torch.floor(corner[:, 1] * (width - box_w + 1)).long()
    top = torch.where(found, top, (height - box_h) // 2)
    left = torch.where(found, left, (width - box_w) // 2)
    return top, left, box_h, box_w


def resized_crop(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
                 box_height: torch.Tensor, box_width: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size) float32: each sample's box resized bilinearly.

    roi_align with aligned=True puts pixel centres where PIL's resize does; its adaptive
    sampling (ceil(box / size) points per output pixel and axis, averaged) smooths a shrinking
    box roughly as PIL's widened bilinear filter does.
    """
    device = images.device
    x1 = left.to(device, torch.float32)
    y1 = top.to(device, torch.float32)
    rois = torch.stack([torch.arange(images.shape[0], device=device, dtype=torch.float32), x1, y1,
                        x1 + box_width.to(device, torch.float32),
                        y1 + box_height.to(device, torch.float32)], dim=1)
    return roi_align(images.float(), rois, output_size=size, spatial_scale=1.0,
                     sampling_ratio=-1, aligned=True)


def random_resized_crop(images: torch.Tensor, size: int, scale: Tuple[float, float],
                        ratio: Tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size) float32 in the input's value range: a random box per
    sample (random_resized_crop_boxes), resized bilinearly (resized_crop)."""
    batch, _, height, width = images.shape
    boxes = random_resized_crop_boxes(batch, height, width, scale, ratio, generator)
    return resized_crop(images, *boxes, size)
