"""Render settings shared by every backend."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ....limits import DEFAULT_IMAGE_SIZE
from ..config import FractalConfig

_DEFAULTS = FractalConfig  # the one home of the family's defaults: these read its class attributes


@dataclass(frozen=True)
class RenderSettings:
    """Camera, point and image parameters; both backends read exactly these.

    The camera is PyTorch3D's `FoVPerspectiveCameras` placed by
    `look_at_view_transform(dist=camera_distance, elev=0, azim=0)`: it sits on +z looking at the
    origin. Points are spheres of `radius` in NDC units, weighted `1 - d^2 / radius^2`; the
    `points_per_pixel` nearest in depth are alpha-composited front to back over black.
    `device` is a concrete torch device name ("cpu", "cuda", "cuda:1"), never "auto".
    """

    image_size: int = DEFAULT_IMAGE_SIZE
    radius: float = _DEFAULTS.radius
    points_per_pixel: int = _DEFAULTS.points_per_pixel
    camera_distance: float = _DEFAULTS.camera_distance
    fov_degrees: float = _DEFAULTS.fov_degrees
    znear: float = 1.0
    zfar: float = 100.0
    device: str = "cpu"

    @classmethod
    def from_config(cls, config: Any, device: str) -> "RenderSettings":
        """Settings from a `GenerationConfig` (its image size and fractal settings); `device` already resolved."""
        fractal = config.fractal
        return cls(image_size=config.image_size, radius=fractal.radius, points_per_pixel=fractal.points_per_pixel,
                   camera_distance=fractal.camera_distance, fov_degrees=fractal.fov_degrees, device=device)
