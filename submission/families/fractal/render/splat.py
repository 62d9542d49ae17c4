"""The fast backend: PyTorch3D's points renderer re-done as vectorized splatting in plain torch.

PyTorch3D's CPU rasterizer tests every point against every pixel. Here each point only visits the
pixels whose centres can lie within its radius, a `window x window` block, and the per-pixel
choice of the K nearest points becomes K rounds of a scatter-min. The float32 maths is PyTorch3D's,
operation for operation (see `camera.py`), so fragments and images match it bit for bit in practice.
As in PyTorch3D the work is split in two, with a small NamedTuple between them:

`rasterize_points` -> `SplatFragments` (per covered pixel: K point indices, depths, squared distances)
-> `composite_fragments` (PyTorch3D's `AlphaCompositor`: front to back, weight 1 - d^2 / r^2).

1. project: NDC x, y and view depth per point (`camera.project_points`); a point is drawn when it
   is within its cloud's length, has depth >= 0 (PyTorch3D skips depth < 0) and finite NDC x, y.
2. order: rank each cloud's drawable points by depth, ties to the lower index (PyTorch3D's
   priority-queue order), with one sort of int64 keys; the int32 rank is a point's key.
3. candidates: a point covers the pixels whose centre c has |p - c|^2 < r^2 (strict, as PyTorch3D).
4. select: round k gives every pixel its k-th nearest fragment (scatter-min of the keys, then the
   winners drop out); pixels covered by nothing in round 0 stay background.

Fragments are sparse (covered pixels only), which is what makes this fast; `to_dense` gives
PyTorch3D's (B, H, W, K) layout for the parity tests. Everything is elementwise or keyed by
(cloud, pixel), so a cloud's image depends neither on the other clouds in the batch nor on the
padding beyond its length. Clouds go through in chunks of `CLOUDS_PER_CHUNK`, which bounds memory
(`chunk_bytes`) and keeps the working set in cache.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import torch

from ....errors import UserError
from .base import check_inputs
from .camera import project_points, projection_scale
from .settings import RenderSettings

CLOUDS_PER_CHUNK = 8
CHUNK_BUDGET_BYTES = 512 * 2 ** 20  # working memory aimed at per chunk (one cloud may exceed it)
# Each window reaches this many pixels further on both sides than the radius, so float rounding
# in the window bounds never drops a pixel the exact test would hit (the exact test still decides).
WINDOW_SLACK_PX = 1e-3
NO_KEY = torch.iinfo(torch.int32).max  # "no point": larger than every depth rank
UNDRAWN_BITS = NO_KEY  # above the bits of every float32 depth >= 0, +inf included
MAX_POINTS = 2 ** 28  # per cloud: a sort key packs chunk index (< 16 clouds), 31 depth bits, point index


class SplatFragments(NamedTuple):
    """The K nearest points of every covered pixel of a chunk of B clouds (P covered pixels).

    pixels: (P,) int64 flat pixel ids into (B, S, S), rows from the top, columns from the left
    idx:    (P, K) int64 point index within its cloud, nearest first; -1 where fewer than K cover it
    zbuf:   (P, K) float32 view depth of those points; -1 where idx is -1
    dists:  (P, K) float32 squared NDC distance from the pixel centre; -1 where idx is -1
    """

    pixels: torch.Tensor
    idx: torch.Tensor
    zbuf: torch.Tensor
    dists: torch.Tensor


class SplatRenderer:
    """PyTorch3D-equivalent points renderer in pure torch; runs on CPU or CUDA tensors."""

    def __init__(self, settings: RenderSettings):
        self.settings = settings

    def __call__(self, points: torch.Tensor, colors: torch.Tensor,
                 lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        s = self.settings
        points, colors, lengths = check_inputs(points, colors, lengths, s.device)
        if points.shape[1] > MAX_POINTS:
            raise UserError(f"the splat backend takes at most {MAX_POINTS} points per cloud, got {points.shape[1]}")
        batch, size = points.shape[0], s.image_size
        # Fewer clouds per chunk when large windows (big radius or image) would exceed the budget.
        per_chunk = max(1, min(CLOUDS_PER_CHUNK, CHUNK_BUDGET_BYTES // chunk_bytes(s, points.shape[1], clouds=1)))
        images = torch.zeros((batch * size * size, 3), dtype=torch.float32, device=points.device)
        for start in range(0, batch, per_chunk):
            stop = min(start + per_chunk, batch)
            fragments = rasterize_points(points[start:stop], lengths[start:stop], s)
            values = composite_fragments(fragments, colors[start:stop, :, :3], lengths[start:stop], s)
            images.index_copy_(0, fragments.pixels + start * size * size, values)
        return images.view(batch, size, size, 3).clamp_(0.0, 1.0)


def rasterize_points(points: torch.Tensor, lengths: torch.Tensor, settings: RenderSettings) -> SplatFragments:
    """points (B, N, 3) float32, lengths (B,) int64 -> the `SplatFragments` of the B clouds."""
    s = settings
    size, window = s.image_size, window_size(s)
    batch, n_points = points.shape[:2]
    device = points.device

    # 1-2. project, then rank each cloud's drawable points by depth, ties by index: PyTorch3D's
    # priority-queue order. One flat int64 sort of (cloud, depth bits, index): the bits of a
    # float32 >= 0 order like its value; undrawable points get the largest depth bits.
    x, y, depth = project_points(points.reshape(-1, 3), s.camera_distance, projection_scale(s.fov_degrees, s.znear))
    index = torch.arange(n_points, device=device).repeat(batch)
    cloud = torch.arange(batch, device=device).repeat_interleave(n_points)
    drawable = (index < lengths.repeat_interleave(n_points)) & (depth >= 0) & torch.isfinite(x) & torch.isfinite(y)
    depth_bits = torch.where(drawable, (depth + 0.0).view(torch.int32), UNDRAWN_BITS).long()  # + 0.0: -0.0 -> +0.0
    index_bits = max(1, (n_points - 1).bit_length())
    assert (batch - 1).bit_length() + 31 + index_bits <= 63, "chunk too large for the int64 sort key"
    order = torch.sort((((cloud << 31) | depth_bits) << index_bits) | index)[1]  # (BN,) keys are unique
    rank = torch.empty_like(order).scatter_(0, order, index)  # (BN,) depth rank within the cloud
    point_key = torch.where(drawable, rank, NO_KEY).int()  # (BN,) int32

    # 3. candidates: window offsets outermost so broadcasting runs over long contiguous rows.
    dx2, col_first = _axis_distances(x, drawable, s)  # (W, BN) float32, (BN,) int64
    dy2, row_first = _axis_distances(y, drawable, s)
    dist2 = (dy2[:, None, :] + dx2[None, :, :]).view(window * window, -1)  # (W*W, BN): dx^2 + dy^2
    offset, slot = torch.nonzero(dist2 < _radius2(s), as_tuple=True)  # (F,) each: window offset, point row
    # Pixel ids count image rows from the top and columns from the left, NDC runs the other way.
    corner_pixel = (cloud * size + (size - 1 - row_first)) * size + (size - 1 - col_first)  # (BN,)
    steps = torch.arange(window, device=device)
    offset_pixel = (steps[:, None] * size + steps[None, :]).view(-1)  # (W*W,) for (row, col) steps
    frag_pixel = corner_pixel.index_select(0, slot) - offset_pixel.index_select(0, offset)  # (F,) int64
    frag_key = point_key.index_select(0, slot)  # (F,) int32

    # 4. select: round k gives every pixel its k-th nearest fragment (scatter-min of the keys,
    # then the winners drop out). After round 0 only covered pixels matter: index those.
    nearest = torch.full((batch * size * size,), NO_KEY, dtype=torch.int32, device=device)
    nearest.scatter_reduce_(0, frag_pixel, frag_key, reduce="amin")
    covered = torch.nonzero(nearest != NO_KEY, as_tuple=True)[0]  # (P,) int64 pixel ids
    nearest_keys = [nearest.index_select(0, covered)]
    frag_slot = torch.empty_like(nearest, dtype=torch.int64).index_copy_(0, covered, torch.arange(covered.shape[0], device=device))
    frag_slot = frag_slot.index_select(0, frag_pixel)  # (F,) int64 row in `covered`
    for _ in range(1, s.points_per_pixel):
        frag_key.masked_fill_(frag_key == nearest_keys[-1].index_select(0, frag_slot), NO_KEY)
        nearest = torch.full_like(nearest_keys[0], NO_KEY)
        nearest_keys.append(nearest.scatter_reduce_(0, frag_slot, frag_key, reduce="amin"))
    keys = torch.stack(nearest_keys, dim=1)  # (P, K) int32 depth ranks

    # Back from depth ranks to points; the distance is recomputed exactly as the rasterizer does.
    present = keys != NO_KEY
    cloud_of_pixel = torch.div(covered, size * size, rounding_mode="floor")
    ranked = cloud_of_pixel[:, None] * n_points + torch.where(present, keys, 0).long()  # (P, K) rows of `order`
    point = order.index_select(0, ranked.view(-1)).view_as(ranked)  # (P, K) flat point rows
    ndc_of_col = -1 + (2 * torch.arange(size - 1, -1, -1, device=device) + 1).float() / size  # (S,)
    col = covered % size
    row = torch.div(covered, size, rounding_mode="floor") % size
    dx = x.index_select(0, point.view(-1)).view_as(point) - ndc_of_col.index_select(0, col)[:, None]
    dy = y.index_select(0, point.view(-1)).view_as(point) - ndc_of_col.index_select(0, row)[:, None]
    missing = torch.tensor(-1.0, device=device)
    return SplatFragments(
        pixels=covered,
        idx=torch.where(present, point - cloud_of_pixel[:, None] * n_points, -1),
        zbuf=torch.where(present, depth.index_select(0, point.view(-1)).view_as(point), missing),
        dists=torch.where(present, dx * dx + dy * dy, missing))


def composite_fragments(fragments: SplatFragments, colors: torch.Tensor, lengths: torch.Tensor,
                        settings: RenderSettings) -> torch.Tensor:
    """PyTorch3D's `AlphaCompositor` over black: colors (B, N, 3) float32 -> (P, 3) float32, one
    colour per covered pixel: `pixel += transmittance * w * colour; transmittance *= 1 - w`."""
    s = settings
    batch, n_points = colors.shape[:2]
    present = fragments.idx >= 0
    weight = torch.where(present, 1 - fragments.dists / (s.radius * s.radius), 0.0)  # (P, K)
    cloud_of_pixel = torch.div(fragments.pixels, s.image_size * s.image_size, rounding_mode="floor")
    colors_flat = colors.reshape(batch * n_points, -1)
    if _uniform_colors(colors, lengths):
        point_colors = colors_flat.index_select(0, cloud_of_pixel * n_points)[:, None, :]  # (P, 1, 3)
    else:
        rows = cloud_of_pixel[:, None] * n_points + fragments.idx.clamp(min=0)  # (P, K)
        point_colors = colors_flat.index_select(0, rows.view(-1)).view(*rows.shape, -1)  # (P, K, 3)
    pixel_colors = torch.zeros((fragments.pixels.shape[0], 3), dtype=torch.float32, device=colors.device)
    transmittance = torch.ones(fragments.pixels.shape[0], dtype=torch.float32, device=colors.device)
    for k in range(s.points_per_pixel):
        w = weight[:, k]
        pixel_colors = pixel_colors + (transmittance * w)[:, None] * point_colors[:, min(k, point_colors.shape[1] - 1)]
        transmittance = transmittance * (1 - w)
    return pixel_colors


def to_dense(fragments: SplatFragments, batch: int, image_size: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyTorch3D's fragment layout: idx (B, S, S, K) int64 (index within the cloud), zbuf and
    dists (B, S, S, K) float32; -1 where no point covers the pixel."""
    k = fragments.idx.shape[1]
    out = []
    for values in fragments[1:]:
        dense = torch.full((batch * image_size * image_size, k), -1, dtype=values.dtype, device=values.device)
        out.append(dense.index_copy_(0, fragments.pixels, values).view(batch, image_size, image_size, k))
    return tuple(out)  # type: ignore[return-value]


def window_size(settings: RenderSettings) -> int:
    """Side in pixels of the block of pixel centres a point can reach."""
    return int(math.floor(settings.radius * settings.image_size + 2 * WINDOW_SLACK_PX)) + 1


def _radius2(settings: RenderSettings) -> float:
    r32 = torch.tensor(settings.radius, dtype=torch.float32)
    return float(r32 * r32)  # the rasterizer's float32 radius * radius


def _axis_distances(coord: torch.Tensor, drawable: torch.Tensor, settings: RenderSettings
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """coord (BN,) float32 NDC -> squared distances (W, BN) float32 from each point to the pixel
    centres of its window (NaN where off-image or undrawable, which fails every `<` test), and
    the window's first pixel (BN,) int64, counted from NDC -1."""
    size, window = settings.image_size, window_size(settings)
    half = size / 2
    # Continuous pixel coordinate; undrawable and far-off points park where every window
    # pixel is off-image (which also keeps NaN/inf out of the integer conversion).
    park = float(window + 2)
    centre = torch.where(drawable, (coord + 1) * half - 0.5, torch.full_like(coord, -park)).clamp_(-park, size + park)
    first = torch.ceil(centre - (settings.radius * half + WINDOW_SLACK_PX)).long()  # (BN,)
    # Pixel-centre NDC by table lookup: entry PAD + p holds pixel p's centre, NaN off-image.
    pad = 2 * window + 4
    pixel = torch.arange(-pad, size + pad, device=coord.device)
    table = torch.where((pixel >= 0) & (pixel < size), -1 + (2 * pixel + 1).float() / size, math.nan)  # PixToNonSquareNdc
    lookup = (first + pad)[None, :] + torch.arange(window, device=coord.device)[:, None]  # (W, BN)
    delta = coord[None, :] - table.index_select(0, lookup.view(-1)).view(window, -1)
    return delta * delta, first


def _uniform_colors(colors: torch.Tensor, lengths: torch.Tensor) -> bool:
    """True when every drawable point of each cloud has its cloud's first colour (e.g. all white),
    so colours can be looked up per cloud instead of per point; the result is the same."""
    valid = torch.arange(colors.shape[1], device=colors.device)[None, :] < lengths[:, None]
    return bool(((colors == colors[:, :1]).all(dim=2) | ~valid).all())


def chunk_bytes(settings: RenderSettings, n_points: int, clouds: int = CLOUDS_PER_CHUNK) -> int:
    """Approximate peak working memory of one chunk, calibrated by peak RSS on CPU (8 clouds of
    10k points at 224 px: ~60 MiB). The W*W candidates per point dominate: squared distance, mask,
    their nonzero indices and the int64 fragment arrays, about 40 bytes each; then ~16 bytes a pixel."""
    window = window_size(settings)
    return clouds * (n_points * window * window * 40 + settings.image_size ** 2 * 16)
