"""The interface every renderer backend implements, and the input checks they share."""
from __future__ import annotations

from typing import Optional, Protocol, Tuple

import torch

from ....errors import UserError
from .settings import RenderSettings


class PointRenderer(Protocol):
    """Renders a batch of point clouds to RGB images.

    Args:
        points:  (B, N, 3) float32 world coordinates (clouds padded to a common N).
        colors:  (B, N, C) float32 per-point features, C = 3 (RGB) or 4 (RGBA; the 4th channel
                 is composited like the others and dropped from the output, as in PyTorch3D).
        lengths: (B,) int64 number of valid points per cloud, or None when all N are valid.
    Returns:
        (B, H, W, 3) float32 images in [0, 1] on the renderer's device, H = W = image_size.
    """

    settings: RenderSettings

    def __call__(self, points: torch.Tensor, colors: torch.Tensor,
                 lengths: Optional[torch.Tensor] = None) -> torch.Tensor: ...


def check_inputs(points: torch.Tensor, colors: torch.Tensor, lengths: Optional[torch.Tensor],
                 device: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate shapes; return (points, colors, lengths) as float32/float32/int64 on `device`."""
    if not isinstance(points, torch.Tensor) or points.dim() != 3 or points.shape[-1] != 3:
        raise UserError(f"points must be a (B, N, 3) tensor, got shape {tuple(getattr(points, 'shape', ()))}")
    batch, n_points = points.shape[:2]
    if batch == 0 or n_points == 0:
        raise UserError(f"cannot render an empty batch (points shape {tuple(points.shape)}); pass at least one cloud with one point")
    if not isinstance(colors, torch.Tensor) or colors.dim() != 3 or colors.shape[:2] != points.shape[:2] or colors.shape[-1] not in (3, 4):
        raise UserError(f"colors must be a (B, N, 3 or 4) tensor matching points {tuple(points.shape)}, got {tuple(getattr(colors, 'shape', ()))}")
    if lengths is None:
        lengths = torch.full((batch,), n_points, dtype=torch.int64)
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    if lengths.shape != (batch,) or bool((lengths < 1).any()) or bool((lengths > n_points).any()):
        raise UserError(f"lengths must be (B,) with 1 <= length <= N={n_points}, got {lengths.tolist()}")
    return (points.to(device=device, dtype=torch.float32), colors.to(device=device, dtype=torch.float32),
            lengths.to(device))
