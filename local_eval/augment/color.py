"""Per-sample colour operations on (B, 3, H, W) float32 batches of whole levels 0..255.

PIL's ImageEnhance blends an image with a "degenerate" one (black, its grey mean, its greyscale,
its smoothed self) by a factor and rounds to uint8; these do the same with a factor per sample,
shape (B,), so one call serves a batch whose samples drew different factors. A factor of 1
returns the image unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .crops import uniform

# PIL's convert("L") weights (ITU-R 601-2 luma).
LUMA = (0.299, 0.587, 0.114)
# PIL's ImageFilter.SMOOTH kernel, which ImageEnhance.Sharpness blends against.
SMOOTH = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))


def blend(degenerate: torch.Tensor, images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """degenerate + factor * (images - degenerate), factor (B,), rounded and clipped to 0..255."""
    factor = factor.to(images.device, images.dtype).view(-1, 1, 1, 1)
    return (degenerate + factor * (images - degenerate)).floor_().clamp_(0, 255)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) levels -> (B, 1, H, W) rounded luma, as PIL's convert("L")."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True).round_()


def brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(torch.zeros_like(images), images, factor)


def contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean grey level, rounded to a whole level as PIL does."""
    mean = grayscale(images).mean(dim=(1, 2, 3), keepdim=True).add_(0.5).floor_()
    return blend(mean.expand_as(images), images, factor)


def saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's ImageEnhance.Color: blend with the greyscale image."""
    return blend(grayscale(images).expand_as(images), images, factor)


def sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the SMOOTH-filtered image; the one-pixel border keeps its values (PIL)."""
    kernel = torch.tensor(SMOOTH, dtype=images.dtype, device=images.device) / 13.0
    kernel = kernel.expand(images.shape[1], 1, 3, 3)
    smooth = F.conv2d(images, kernel, groups=images.shape[1]).round_()
    degenerate = images.clone()
    degenerate[..., 1:-1, 1:-1] = smooth
    return blend(degenerate, images, factor)


def color_jitter(images: torch.Tensor, generator: torch.Generator,
                 strength: float) -> torch.Tensor:
    """torchvision's ColorJitter(strength, strength, strength) as timm builds it (no hue), per
    sample: brightness, contrast and saturation factors uniform in [max(0, 1 - s), 1 + s],
    applied in an order drawn per sample."""
    batch = images.shape[0]
    low = max(0.0, 1.0 - strength)
    factors = uniform((3, batch), generator, low, 1.0 + strength)
    order = uniform((batch, 3), generator).argsort(dim=1)  # a random permutation per sample
    ops = (brightness, contrast, saturation)
    images = images.clone()  # each op then rewrites its own rows in place
    for position in range(3):
        for index, op in enumerate(ops):
            rows = (order[:, position] == index).nonzero().squeeze(1)
            images[rows.to(images.device)] = op(images[rows.to(images.device)],
                                                factors[index][rows])
    return images
