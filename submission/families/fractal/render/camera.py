"""PyTorch3D's fixed camera, in plain torch: world points -> (NDC x, NDC y, view depth).

The camera is `FoVPerspectiveCameras` at `look_at_view_transform(dist=d, elev=0, azim=0)`: it sits
at (0, 0, d) looking at the origin with +y up, so world -> view is (x, y, z) -> (-x, y, d - z).
The projection scales view x and y by 1 / tan(fov / 2) and divides by view depth. NDC has +x to
the left and +y up; pixel (0, 0), the top-left corner, is centred near NDC (+1, +1).

Every float32 operation below is the one PyTorch3D performs (its 4x4 matrices hold only 0, +-1,
d and the scale here, so its matrix products round exactly like these products), which makes
the projected coordinates bit-identical to PyTorch3D's and lets the splat backend reproduce its
fragment selection and depth order exactly (tested in tests/test_render_parity.py).
"""
from __future__ import annotations

import math
from typing import Tuple

import torch


def projection_scale(fov_degrees: float, znear: float = 1.0) -> torch.Tensor:
    """() float32: PyTorch3D's K[0, 0] = 2 znear / (max_x - min_x) = 1 / tan(fov / 2).

    Computed with PyTorch3D's float32 operation sequence so the value matches its bit for bit.
    """
    fov = (math.pi / 180) * torch.tensor([fov_degrees], dtype=torch.float32)
    znear_t = torch.tensor([znear], dtype=torch.float32)
    max_y = torch.tan(fov / 2) * znear_t
    max_x = max_y * 1.0  # aspect ratio 1
    return torch.div(2.0 * znear_t, max_x - (-max_x))[0]


def project_points(points: torch.Tensor, camera_distance: float, scale: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """points (..., 3) float32 world -> x_ndc, y_ndc, depth, each (...) float32.

    `depth` is the view-space z (distance along the viewing axis); points with depth < 0 are
    behind the camera and a depth of 0 gives non-finite NDC: the caller drops both.
    """
    scale = scale.to(points.device)
    depth = camera_distance - points[..., 2]
    x_ndc = (-points[..., 0] * scale) / depth
    y_ndc = (points[..., 1] * scale) / depth
    return x_ndc, y_ndc, depth
