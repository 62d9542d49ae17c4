"""Per-image point-cloud augmentation: random subsample, rotation, scale and shift, optional noise
and z-based colouring. All draws come from the image's own generator (see seeding)."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .config import PointAugmentConfig

WHITE_HALF_ALPHA = np.array([1.0, 1.0, 1.0, 0.5], np.float32)  # the 4th-place point colour (RGBA)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) float64 rotation, uniform on SO(3): a normalised Gaussian quaternion."""
    w, x, y, z = rng.standard_normal(4) / 1.0
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def z_colors(points: np.ndarray) -> np.ndarray:
    """(M, 3) -> (M, 4) float32 RGBA: hue follows z (full saturation and value), alpha 0.5."""
    z = points[:, 2]
    hue = (z - z.min()) / max(float(z.max() - z.min()), 1e-12)  # [0, 1]
    # HSV -> RGB with S = V = 1: each channel is a clipped triangle wave of the hue.
    k = (np.array([5.0, 3.0, 1.0]) + hue[:, None] * 6.0) % 6.0
    rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return np.concatenate([rgb, np.full((len(z), 1), 0.5)], axis=1).astype(np.float32)


def augment_cloud(points: np.ndarray, cfg: PointAugmentConfig, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """One augmented view of a category: points (N, 3) float32 -> (points (M, 3), colors (M, 4)) float32."""
    pts = points.astype(np.float64)
    if cfg.subsample:
        keep = rng.uniform(cfg.keep_min, cfg.keep_max)
        m = max(1, int(round(keep * len(pts))))
        pts = pts[np.sort(rng.permutation(len(pts))[:m])]
    if cfg.rotate:
        pts = pts @ random_rotation(rng).T
    if cfg.scale_shift:
        # Per-axis scale and shift, as in ModelNet-style point-cloud augmentation.
        pts = pts * rng.uniform(cfg.scale_min, cfg.scale_max, size=3) + rng.uniform(-cfg.shift, cfg.shift, size=3)
    if cfg.noise_std > 0:
        pts = pts + rng.normal(0.0, cfg.noise_std, size=pts.shape)
    pts = pts.astype(np.float32)
    colors = z_colors(pts) if cfg.colorize else np.broadcast_to(WHITE_HALF_ALPHA, (len(pts), 4)).copy()
    return pts, colors


def pad_views(views: List[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack views of different sizes into one renderer batch, zero-padded to the longest:
    points (B, N, 3) float32, colors (B, N, 4) float32, lengths (B,) int64."""
    lengths = np.array([len(p) for p, _ in views], np.int64)
    points = np.zeros((len(views), lengths.max(), 3), np.float32)
    colors = np.zeros((len(views), lengths.max(), 4), np.float32)
    for row, (p, c) in enumerate(views):
        points[row, :len(p)], colors[row, :len(c)] = p, c
    return points, colors, lengths
