"""The reference backend: PyTorch3D's points rasterizer and alpha compositor."""
from __future__ import annotations

from typing import Optional

import torch

from ....errors import UserError
from .base import check_inputs
from .settings import RenderSettings


class PyTorch3DRenderer:
    """`PointsRenderer(PointsRasterizer, AlphaCompositor)` with the camera of `RenderSettings`."""

    def __init__(self, settings: RenderSettings):
        try:
            from pytorch3d.renderer import (
                AlphaCompositor,
                FoVPerspectiveCameras,
                PointsRasterizationSettings,
                PointsRasterizer,
                PointsRenderer,
                look_at_view_transform,
            )
            from pytorch3d.structures import Pointclouds
        except ImportError as exc:
            raise UserError(f"the 'pytorch3d' backend needs PyTorch3D, which failed to import ({exc}); "
                            "install easypytorch3d or use --backend splat") from None
        self.settings = settings
        self._pointclouds = Pointclouds
        self._raster_settings_cls = PointsRasterizationSettings
        R, T = look_at_view_transform(dist=settings.camera_distance, elev=0.0, azim=0.0)
        self._cameras = FoVPerspectiveCameras(device=settings.device, R=R, T=T, fov=settings.fov_degrees,
                                              znear=settings.znear, zfar=settings.zfar)
        self._rasterizer_cls = PointsRasterizer
        self._compositor = AlphaCompositor()
        self._renderer_cls = PointsRenderer

    def __call__(self, points: torch.Tensor, colors: torch.Tensor,
                 lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        s = self.settings
        points, colors, lengths = check_inputs(points, colors, lengths, s.device)
        n_list = lengths.tolist()
        clouds = self._pointclouds(points=[p[:n] for p, n in zip(points, n_list)],
                                   features=[c[:n] for c, n in zip(colors, n_list)])
        on_cpu = points.device.type == "cpu"
        raster_settings = self._raster_settings_cls(
            image_size=s.image_size, radius=s.radius, points_per_pixel=s.points_per_pixel,
            # The CPU rasterizer has only the naive path; on CUDA, size bins so none overflows.
            bin_size=0 if on_cpu else None, max_points_per_bin=None if on_cpu else max(n_list))
        renderer = self._renderer_cls(rasterizer=self._rasterizer_cls(cameras=self._cameras, raster_settings=raster_settings),
                                      compositor=self._compositor)
        images = renderer(clouds)  # (B, H, W, C)
        return images[..., :3].clamp_(0.0, 1.0)
