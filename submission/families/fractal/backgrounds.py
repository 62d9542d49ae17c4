"""Image backgrounds the rendered points are composited over (point_augment.background).

"color_patch": a smooth random colour field (see color_patch_background).

"diamond_square": a colourised plasma fractal, the background of Anderson & Farrell, "Improving
Fractal Pre-training" (WACV 2022): a diamond-square height map (roughness decay U(0.4, 0.8)),
mapped to hue, saturation and value by random affine maps (hue wraps around; low saturation,
mid-to-high value), so every image gets a soft, coloured cloud-like backdrop. Each refinement
level is one vectorised step over the whole grid (no loops over pixels); draws come from the
image's own generator (seeding.STREAM_BACKGROUND).
"""
from __future__ import annotations

import numpy as np


def diamond_square(size: int, rng: np.random.Generator, decay: float) -> np.ndarray:
    """(size, size) float64 height map in [0, 1]: diamond-square on a periodic 2**n grid, cropped.

    Level k = 1..n halves the grid step: the diamond step sets each square's centre to the mean of
    its 4 corners, the square step each edge midpoint to the mean of its 4 neighbours (wrapping
    around), each plus uniform noise of amplitude 0.5 * exp(-decay * (k - 1)).
    """
    n = max(1, int(np.ceil(np.log2(size))))
    side = 1 << n
    height = np.zeros((side, side))
    height[0, 0] = rng.random()
    for k in range(1, n + 1):
        half = side >> k
        amplitude = 0.5 * np.exp(-decay * (k - 1))
        grid = height[::half, ::half]  # a view: the known points sit at even (row, col) of it
        corners = grid[0::2, 0::2]
        down, right = np.roll(corners, -1, axis=0), np.roll(corners, -1, axis=1)
        diagonal = np.roll(down, -1, axis=1)
        grid[1::2, 1::2] = 0.25 * (corners + down + right + diagonal) + rng.uniform(-amplitude, amplitude, corners.shape)
        around = (np.roll(grid, 1, axis=0) + np.roll(grid, -1, axis=0) + np.roll(grid, 1, axis=1)
                  + np.roll(grid, -1, axis=1))
        grid[0::2, 1::2] = 0.25 * around[0::2, 1::2] + rng.uniform(-amplitude, amplitude, corners.shape)
        grid[1::2, 0::2] = 0.25 * around[1::2, 0::2] + rng.uniform(-amplitude, amplitude, corners.shape)
    height = height[:size, :size]
    low, high = height.min(), height.max()
    return (height - low) / max(high - low, 1e-12)


def hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """(...) arrays in [0, 1] -> (..., 3) RGB in [0, 1] (each channel a clipped triangle wave of the hue)."""
    k = (np.array([5.0, 3.0, 1.0]) + hue[..., None] * 6.0) % 6.0
    return value[..., None] * (1.0 - saturation[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def diamond_square_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) float32 RGB in [0, 1]: a colourised diamond-square plasma."""
    height = diamond_square(size, rng, decay=rng.uniform(0.4, 0.8))
    hue_scale, hue_shift = rng.uniform(0.25, 1.0), rng.random()
    sat_scale, sat_shift = rng.uniform(0.1, 0.3), rng.uniform(0.4, 0.6)
    val_scale, val_shift = rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.6)
    rgb = hsv_to_rgb((height * hue_scale + hue_shift) % 1.0, np.minimum(height * sat_scale + sat_shift, 1.0),
                     np.minimum(height * val_scale + val_shift, 1.0))
    return rgb.astype(np.float32)


def diamond_square_4th(n: int, rng: np.random.Generator, decay: float) -> np.ndarray:
    """(2**n + 1, 2**n + 1) float64 height map as the 4th place's notebooks/_diamondsquare.py makes it
    (not normalised): random corners U(0, 1), level k's noise U(+-0.5 exp(decay (1 - k))), the square
    step wrapping the first row/column round to the last-but-one, and the last row and column left
    at 0 between the corners (their index ranges never reach them; the crop to `size` drops them,
    but the diamond centres next to them average the zeros in). Their row loop is one vectorised
    step per parity here: the square step reads only points set before it.
    """
    s = (1 << n) + 1
    height = np.zeros((s, s))
    height[0::s - 1, 0::s - 1] = rng.random((2, 2))
    for k in range(1, n + 1):
        amplitude, step, count = 0.5 * np.exp(decay * (1 - k)), s >> k, 1 << k
        centre = np.arange(0, count, 2) * step + step  # diamond step: centres of the level's squares
        r, c = np.ix_(centre, centre)
        height[r, c] = 0.25 * (height[r - step, c - step] + height[r - step, c + step] + height[r + step, c - step]
                               + height[r + step, c + step]) + rng.uniform(-amplitude, amplitude, (len(centre),) * 2)
        line = np.arange(count) * step
        before, after = np.where(line > 0, line - step, s - step - 1), line + step
        for parity in (0, 1):  # even grid rows take odd columns, odd rows even columns
            i, j = np.ix_(np.arange(parity, count, 2), np.arange(1 - parity, count, 2))
            mean = 0.25 * (height[before[i], line[j]] + height[line[i], before[j]] + height[line[i], after[j]]
                           + height[after[i], line[j]])
            height[line[i], line[j]] = mean + rng.uniform(-amplitude, amplitude, mean.shape)
    return height


def diamond_square_background_4th(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) float32 RGB in [0, 1]: their `colorized_ds(size)` (_diamondsquare.py): the raw
    height map cropped to size, each HSV channel `clip(h * U(lo, hi) * 255 + U(lo, hi) * 255, 0, 255)`
    truncated to uint8, then OpenCV's uint8 HSV -> RGB (hue in 0-180 units: values above wrap)."""
    import cv2

    n = max(1, int(np.ceil(np.log2(size))))
    height = diamond_square_4th(n, rng, decay=rng.uniform(0.4, 0.8))[:size, :size]
    scales = rng.uniform([0.25, 0.1, 0.3], [1.0, 0.3, 0.6]) * 255
    shifts = rng.uniform([0.0, 0.4, 0.4], [1.0, 0.6, 0.6]) * 255
    hsv = np.clip(height[:, :, None] * scales + shifts, 0, 255).astype(np.uint8)
    return (cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32) / 255).astype(np.float32)


def color_patch_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour field (issue 29's lever 2; not diamond-square, which the 4th place measured
    worse, pc exp 022): a g x g grid of RGB colours uniform in [0, 0.5] (dark, so the instances'
    full-value colours stand out), g uniform in 3..8, bicubically enlarged to the image and clipped."""
    import cv2

    grid = int(rng.integers(3, 9))
    colors = rng.uniform(0.0, 0.5, size=(grid, grid, 3)).astype(np.float32)
    return np.clip(cv2.resize(colors, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


# (name, point_augment.background_style) -> (size, rng) -> (size, size, 3) float32
BACKGROUNDS = {("diamond_square", "ours"): diamond_square_background,
               ("diamond_square", "4th"): diamond_square_background_4th,
               ("color_patch", "ours"): color_patch_background,
               ("color_patch", "4th"): color_patch_background}  # one style: the style field does not apply


def background_image(name: str, size: int, rng: np.random.Generator, style: str = "ours") -> np.ndarray:
    """(size, size, 3) float32 RGB in [0, 1] of the background `name` (one of config.BACKGROUNDS but "black")."""
    return BACKGROUNDS[name, style](size, rng)
