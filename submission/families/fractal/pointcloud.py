"""Per-image point-cloud augmentation: random subsample, rotation, scale and shift, optional noise,
PointWOLF deformation and z-based colouring. All draws come from the image's own generator (see
seeding), in a fixed order where every optional step draws after the default ones: switching one on
keeps the subsample, rotation, scale and shift of each image, so variants show the same views."""
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


def z_colors_4th(points: np.ndarray, saturation: float, value: float) -> np.ndarray:
    """(M, 3) -> (M, 4) float32 RGBA as the 4th place's colorize_point_cloud (_point_cloud.py:74-106):
    OpenCV uint8 HSV with hue uint8(z_norm * 255) read in OpenCV's 0-180 hue units (so hues past 180
    wrap round), S = uint8(saturation * 255), V = uint8(value * 255) for the whole view (the uint8
    casts truncate, as their assignment into a uint8 array does); alpha 0.5 as our white points."""
    import cv2

    z = points[:, 2]
    hsv = np.empty((1, len(z), 3), np.uint8)
    hsv[0, :, 0] = ((z - z.min()) / max(float(z.max() - z.min()), 1e-12) * 255).astype(np.uint8)
    hsv[0, :, 1], hsv[0, :, 2] = int(saturation * 255), int(value * 255)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float32) / 255
    return np.concatenate([rgb, np.full((len(z), 1), 0.5, np.float32)], axis=1)


def augment_cloud(points: np.ndarray, cfg: PointAugmentConfig, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """One augmented view of a category: points (N, 3) float32 -> (points (M, 3), colors (M, 4)) float32.

    Applied in this order: subsample, PointWOLF (deforms the object in its own frame), rotation,
    per-axis scale and shift, noise. Draws are taken in the order of the steps but PointWOLF's last.
    The 4th place's scale/shift (`isotropic_scale`, `scale_shift_first`, `scale_shift_p` < 1) draws
    one scale instead of three, runs before the rotation, and its coin is drawn after the noise;
    the noise coin (`noise_p` < 1) and their colouring's saturation/value (`colorize_style` "4th")
    follow it, so the default draws never move.
    """
    pts = points.astype(np.float64)
    if cfg.subsample:
        keep = rng.uniform(cfg.keep_min, cfg.keep_max)
        m = max(1, int(round(keep * len(pts))))
        pts = pts[np.sort(rng.permutation(len(pts))[:m])]
    rotation = random_rotation(rng) if cfg.rotate else None
    # Per-axis scale and shift, as in ModelNet-style point-cloud augmentation.
    scale = rng.uniform(cfg.scale_min, cfg.scale_max, size=1 if cfg.isotropic_scale else 3) if cfg.scale_shift else None
    shift = rng.uniform(-cfg.shift, cfg.shift, size=3) if cfg.scale_shift else None
    noise = rng.normal(0.0, cfg.noise_std, size=pts.shape) if cfg.noise_std > 0 else None
    if scale is not None and cfg.scale_shift_p < 1 and rng.random() >= cfg.scale_shift_p:
        scale = shift = None  # this view keeps scale 1 and shift 0
    if noise is not None and cfg.noise_p < 1 and rng.random() >= cfg.noise_p:
        noise = None  # this view keeps its points where they are
    # The 4th place's colouring draws one saturation and value per view (their defaults' ranges).
    sat_val = rng.uniform((0.3, 0.5), 1.0) if cfg.colorize and cfg.colorize_style == "4th" else None
    if cfg.pointwolf:
        pts = pointwolf(pts, rng, anchors=cfg.pointwolf_anchors, sigma=cfg.pointwolf_sigma, rotate=cfg.pointwolf_rotate,
                        scale=cfg.pointwolf_scale, translate=cfg.pointwolf_translate, rescale=cfg.pointwolf_rescale)
    if scale is not None and cfg.scale_shift_first:
        pts = pts * scale + shift
    if rotation is not None:
        pts = pts @ rotation.T
    if scale is not None and not cfg.scale_shift_first:
        pts = pts * scale + shift
    if noise is not None:
        pts = pts + noise
    pts = pts.astype(np.float32)
    if sat_val is not None:
        colors = z_colors_4th(pts, *sat_val)
    else:
        colors = z_colors(pts) if cfg.colorize else np.broadcast_to(WHITE_HALF_ALPHA, (len(pts), 4)).copy()
    return pts, colors


def random_axes(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 3) float64 0/1 masks, each a uniformly drawn non-empty subset of the x, y, z axes."""
    codes = rng.integers(1, 8, size=count)  # 1..7: the bits say which axes
    return ((codes[:, None] >> np.arange(3)) & 1).astype(np.float64)


def euler_rotations(angles: np.ndarray) -> np.ndarray:
    """(M, 3) radians about x, y, z -> (M, 3, 3) rotations Rz @ Ry @ Rx."""
    c, s = np.cos(angles), np.sin(angles)
    one, zero = np.ones(len(angles)), np.zeros(len(angles))

    def stack(rows):  # 3 x 3 nested lists of (M,) -> (M, 3, 3)
        return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)

    rx = stack([[one, zero, zero], [zero, c[:, 0], -s[:, 0]], [zero, s[:, 0], c[:, 0]]])
    ry = stack([[c[:, 1], zero, s[:, 1]], [zero, one, zero], [-s[:, 1], zero, c[:, 1]]])
    rz = stack([[c[:, 2], -s[:, 2], zero], [s[:, 2], c[:, 2], zero], [zero, zero, one]])
    return rz @ ry @ rx


def farthest_points(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count,) indices by farthest-point sampling from a random first point (a loop over the
    `count` picks only; each pick is one vectorised pass over the points)."""
    picks = np.empty(count, np.int64)
    picks[0] = rng.integers(len(points))
    nearest = np.full(len(points), np.inf)
    for i in range(1, count):
        nearest = np.minimum(nearest, ((points - points[picks[i - 1]]) ** 2).sum(axis=1))
        picks[i] = int(nearest.argmax())
    return picks


def pointwolf(points: np.ndarray, rng: np.random.Generator, anchors: int = 4, sigma: float = 0.5,
              rotate: float = 10.0, scale: float = 3.0, translate: float = 0.25, rescale: str = "restore") -> np.ndarray:
    """PointWOLF (Kim et al., "Point Cloud Augmentation with Weighted Local Transformations",
    ICCV 2021): (N, 3) -> (N, 3) float64, a smooth non-rigid deformation of the cloud.

    The cloud is first moved to the unit sphere (the paper's inputs). `anchors` anchor points are
    picked by farthest-point sampling; each gets a local transformation about itself: rotation
    angles U(-rotate, rotate) degrees per axis, scale U(1, scale) and translation
    U(-translate, translate) on a random non-empty subset of the axes, each of the three kept with
    probability 1/2. Every point moves to the average of its anchor-transformed positions weighted
    by a Gaussian kernel (bandwidth `sigma`) of its distance to the anchors, measured on a random
    non-empty subset of the axes. As in the paper's code the result is re-centred and rescaled to
    the unit sphere, then mapped back to the input's centroid and radius so the framing is kept.
    `rescale="unit_sphere"` is the 4th place's copy of that code (notebooks/_point_wolf.py): no move
    to the unit sphere first (the kernel and translations act in the input's units) and the result
    left centred at the origin with radius 0.999999. Defaults are the paper's. All arrays are
    (anchors, N, 3) at most.
    """
    centre = points.mean(axis=0)
    radius = max(float(np.sqrt(((points - centre) ** 2).sum(axis=1)).max()), 1e-12)
    if rescale == "unit_sphere":
        radius = 1.0  # deform in the input's units (the local transforms commute with the centring)
    pos = (points - centre) / radius
    m = min(anchors, len(pos))
    anchor = pos[farthest_points(pos, m, rng)]  # (M, 3)
    keep = rng.integers(0, 2, size=(m, 3)).astype(np.float64)  # per anchor: rotation, scale, translation on/off
    axes = random_axes(rng, m)  # (M, 3)
    angles = np.deg2rad(rng.uniform(-rotate, rotate, size=(m, 3))) * keep[:, 0:1]
    scales = rng.uniform(1.0, scale, size=(m, 3)) * keep[:, 1:2] * axes
    scales = np.where(scales == 0, 1.0, scales)  # axes left alone keep scale 1
    shifts = rng.uniform(-translate, translate, size=(m, 3)) * keep[:, 2:3] * axes
    kernel_axes = random_axes(rng, 1)  # (1, 3)
    offsets = pos[None, :, :] - anchor[:, None, :]  # (M, N, 3)
    moved = (offsets @ euler_rotations(angles)) * scales[:, None, :] + shifts[:, None, :] + anchor[:, None, :]
    log_w = -0.5 * ((offsets * kernel_axes) ** 2).sum(axis=2) / (sigma * sigma)  # (M, N)
    weight = np.exp(log_w - log_w.max(axis=0))  # same ratios; the nearest anchor weighs 1, so no 0 / 0
    out = (weight[:, :, None] * moved).sum(axis=0) / weight.sum(axis=0)[:, None]
    out = out - out.mean(axis=0)
    out = out / max(float(np.sqrt((out ** 2).sum(axis=1)).max()), 1e-12)
    return out * 0.999999 if rescale == "unit_sphere" else out * radius + centre


def pad_views(views: List[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack views of different sizes into one renderer batch, zero-padded to the longest:
    points (B, N, 3) float32, colors (B, N, 4) float32, lengths (B,) int64."""
    lengths = np.array([len(p) for p, _ in views], np.int64)
    points = np.zeros((len(views), lengths.max(), 3), np.float32)
    colors = np.zeros((len(views), lengths.max(), 4), np.float32)
    for row, (p, c) in enumerate(views):
        points[row, :len(p)], colors[row, :len(c)] = p, c
    return points, colors, lengths
