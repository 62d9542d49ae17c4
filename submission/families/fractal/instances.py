"""Lever 2 of issue 29, after Anderson & Farrell ("Improving Fractal Pre-training", WACV 2022; their
multi-instance images draw 1-5 fractals at 0.15-0.6 of the image side): an image shows 1..n views of
its class, each framed by the camera to a random share of the image and placed wholly inside it,
optionally each in its own colour, over the background of `point_augment.background`.

Framing: the camera (render/camera.py) sits at (0, 0, d) looking down -z with a field of view f, so
the plane z = 0 shows x, y in [-w, w], w = d tan(f / 2). A view is centred on its x-y box, scaled so
the box's longer side is `size` x 2w, and moved to a uniform centre that keeps the box inside the
frame (size <= 1) or the frame inside the box (size > 1: a zoomed-in view that fills the frame, as
their classification generator's scale 0.5-2 does); its depth is centred on 0 (perspective makes the
near half a few per cent larger).
"""
from __future__ import annotations

import colorsys
import math
from typing import List, Tuple

import numpy as np

from .config import FractalConfig


def instance_count(fc: FractalConfig, rng: np.random.Generator) -> int:
    """How many instances an image shows: uniform in 1..fc.instances."""
    return int(rng.integers(1, fc.instances + 1))


def frame_view(points: np.ndarray, size: float, half_width: float, rng: np.random.Generator) -> np.ndarray:
    """(M, 3) float32 view scaled so its x-y box's longer side is `size` x the frame, placed inside it
    (size <= 1) or over all of it (size > 1)."""
    pts = points.astype(np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = max(float((hi - lo)[:2].max()), 1e-6)
    scale = size * 2 * half_width / extent
    pts = (pts - (hi + lo) / 2) * scale
    # The box's centre may move this far from the middle on each axis: keeping a box up to the frame
    # inside it, or a box larger than the frame over all of it (no empty margin).
    room = half_width * abs(1 - size)
    centre = rng.uniform(-room, room, size=2)
    pts[:, :2] += centre
    return pts.astype(np.float32)


def instance_rgb(rng: np.random.Generator) -> np.ndarray:
    """(3,) float32 a saturated colour of uniform hue (saturation U(0.6, 1), value 1)."""
    hue, saturation = rng.uniform(0, 1), rng.uniform(0.6, 1.0)
    return np.asarray(colorsys.hsv_to_rgb(hue, saturation, 1.0), np.float32)


def compose_instances(views: List[Tuple[np.ndarray, np.ndarray]], fc: FractalConfig,
                      rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """One image's cloud from its instance views ((points, colors) each): framed, coloured, joined."""
    half_width = fc.camera_distance * math.tan(math.radians(fc.fov_degrees) / 2)
    points, colors = [], []
    for view_points, view_colors in views:
        size = rng.uniform(fc.instance_size_min, fc.instance_size_max)
        points.append(frame_view(view_points, size, half_width, rng))
        view_colors = view_colors.copy()
        if fc.instance_color == "random_hue":
            view_colors[:, :3] = instance_rgb(rng)
        colors.append(view_colors)
    return np.concatenate(points), np.concatenate(colors)
