"""Render settings shared by every backend, and device resolution."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import UserError


@dataclass(frozen=True)
class RenderSettings:
    """Camera, point and image parameters; both backends read exactly these.

    The camera is PyTorch3D's `FoVPerspectiveCameras` placed by
    `look_at_view_transform(dist=camera_distance, elev=0, azim=0)`: it sits on +z looking at the
    origin. Points are spheres of `radius` in NDC units, weighted `1 - d^2 / radius^2`; the
    `points_per_pixel` nearest in depth are alpha-composited front to back over black.
    """

    image_size: int = 224
    radius: float = 0.015
    points_per_pixel: int = 4
    camera_distance: float = 10.0
    fov_degrees: float = 10.0
    znear: float = 1.0
    zfar: float = 100.0
    device: str = "cpu"

    @classmethod
    def from_config(cls, config: Any, device: str = "cpu") -> "RenderSettings":
        """Settings from a `GenerationConfig` (or anything with the same field names)."""
        return cls(image_size=config.image_size, radius=config.radius, points_per_pixel=config.points_per_pixel,
                   camera_distance=config.camera_distance, fov_degrees=config.fov_degrees, device=device)


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cuda' without CUDA is a `UserError`."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError("CUDA was asked for (--device cuda) but torch sees no CUDA device; use --device cpu or auto")
        return name
    raise UserError(f"unknown device {name!r}; choose one of ['auto', 'cpu', 'cuda']")
