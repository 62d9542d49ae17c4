"""3D IFS fractal categories (MV-FractalDB / 3D-OFDB style) and the category bank.

A category is 2-7 affine maps x -> A x + b on R^3, each with 12 parameters drawn from U(-1, 1).
Its point cloud is the IFS orbit of the origin: at every step one map is chosen with probability
proportional to |det A|. The cloud is centred and scaled jointly (one factor for all axes) so its
longest axis spans [-1, 1]. A category is rejected when any coordinate is NaN/inf or the variance
along any axis is below `MIN_AXIS_VARIANCE`.

Every candidate category j draws its parameters from rng(seed, BANK, j) and its orbit from
rng(seed, IFS_POINTS, j), so candidates are independent: the recursion runs over many candidates
at once with elementwise numpy ops, and the result does not depend on how they were batched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from .errors import UserError
from .seeding import STREAM_BANK, STREAM_IFS_POINTS, rng_for

MIN_MAPS, MAX_MAPS = 2, 7
MIN_AXIS_VARIANCE = 0.05
BANK_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CategoryBank:
    """The accepted categories of one seed: small enough to ship in a submission's params/.

    seed:          base seed the orbits are drawn from
    points:        orbit length per category
    candidate_ids: (C,) int64, the candidate index j of each category (keys its orbit RNG)
    maps:          (C, MAX_MAPS, 3, 4) float64, [A | b] per map, unused maps zero
    probs:         (C, MAX_MAPS) float64, map probabilities (|det A| normalised), unused maps zero
    """

    seed: int
    points: int
    candidate_ids: np.ndarray
    maps: np.ndarray
    probs: np.ndarray

    def __len__(self) -> int:
        return int(self.candidate_ids.shape[0])

    def point_cloud(self, category: int) -> np.ndarray:
        """(points, 3) float32 normalised cloud of one category (recomputed, deterministic)."""
        if not 0 <= category < len(self):
            raise UserError(f"category {category} is outside this bank of {len(self)} categories")
        rng = rng_for(self.seed, STREAM_IFS_POINTS, int(self.candidate_ids[category]))
        choices = _draw_map_choices(self.probs[category], self.points, rng)[None]
        cloud = _normalize(_iterate(self.maps[category][None], choices))[0]
        return cloud.astype(np.float32)

    def save(self, path: Union[str, os.PathLike]) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, version=BANK_FORMAT_VERSION, seed=self.seed, points=self.points,
                            candidate_ids=self.candidate_ids, maps=self.maps, probs=self.probs)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "CategoryBank":
        try:
            with np.load(path) as data:
                version = int(data["version"])
                if version != BANK_FORMAT_VERSION:
                    raise UserError(f"category bank {path} has format version {version}, expected {BANK_FORMAT_VERSION}; rebuild it")
                return cls(seed=int(data["seed"]), points=int(data["points"]),
                           candidate_ids=data["candidate_ids"].astype(np.int64),
                           maps=data["maps"].astype(np.float64), probs=data["probs"].astype(np.float64))
        except (OSError, KeyError, ValueError) as exc:
            raise UserError(f"cannot read category bank {path}: {exc}; rebuild it with `python -m submission pack`") from None


def sample_candidates(seed: int, candidate_ids: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """IFS parameters of the given candidates.

    Returns maps (J, MAX_MAPS, 3, 4) float64 and probs (J, MAX_MAPS) float64 (NaN rows when every
    |det A| is zero, which `build_bank` rejects).
    """
    maps = np.zeros((len(candidate_ids), MAX_MAPS, 3, 4))
    for row, j in enumerate(candidate_ids):
        rng = rng_for(seed, STREAM_BANK, int(j))
        n_maps = int(rng.integers(MIN_MAPS, MAX_MAPS + 1))
        maps[row, :n_maps] = rng.uniform(-1.0, 1.0, size=(n_maps, 3, 4))
    dets = np.abs(np.linalg.det(maps[..., :3]))
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = dets / dets.sum(axis=1, keepdims=True)
    return maps, probs


def _draw_map_choices(probs: np.ndarray, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """(n_points,) int64 map index per orbit step, by inverse-CDF sampling of `probs`."""
    cdf = np.cumsum(probs)
    choices = np.searchsorted(cdf, rng.random(n_points) * cdf[-1], side="right")
    return np.minimum(choices, MAX_MAPS - 1)


def _iterate(maps: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """Orbit of the origin: maps (J, M, 3, 4), choices (J, N) -> points (J, N, 3) float64.

    The recursion is sequential in N but vectorised over J; elementwise ops only, so a
    category's orbit is bit-identical whether computed alone or in a batch.
    """
    n_cat, n_points = choices.shape
    rows = np.arange(n_cat)
    out = np.empty((n_cat, n_points, 3))
    x = np.zeros((n_cat, 3))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(n_points):
            m = maps[rows, choices[:, t]]  # (J, 3, 4)
            x = m[:, :, 0] * x[:, 0:1] + m[:, :, 1] * x[:, 1:2] + m[:, :, 2] * x[:, 2:3] + m[:, :, 3]
            out[:, t] = x
    return out


def _normalize(points: np.ndarray) -> np.ndarray:
    """Centre each cloud and scale jointly so its longest axis spans [-1, 1]: (J, N, 3) -> same."""
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = points.min(axis=1, keepdims=True), points.max(axis=1, keepdims=True)
        half_extent = (hi - lo).max(axis=2, keepdims=True) / 2
        return (points - (hi + lo) / 2) / half_extent


def is_valid_cloud(points: np.ndarray) -> np.ndarray:
    """(J, N, 3) normalised clouds -> (J,) bool: finite everywhere and axis variance >= threshold."""
    finite = np.isfinite(points).all(axis=(1, 2))
    with np.errstate(invalid="ignore", over="ignore"):
        variance_ok = (np.nan_to_num(points.var(axis=1), nan=0.0) >= MIN_AXIS_VARIANCE).all(axis=1)
    return finite & variance_ok


def build_bank(n_categories: int, seed: int = 0, points: int = 10_000, chunk: int = 512) -> CategoryBank:
    """The first `n_categories` valid candidates (in candidate order) of `seed`."""
    if n_categories < 1:
        raise UserError(f"a bank needs at least one category, got {n_categories}")
    accepted_ids, accepted_maps, accepted_probs = [], [], []
    next_candidate = 0
    while len(accepted_ids) < n_categories:
        # Roughly half the candidates survive; ask for a little more than is missing.
        size = min(chunk, max(16, 2 * (n_categories - len(accepted_ids))))
        ids = np.arange(next_candidate, next_candidate + size)
        next_candidate += size
        maps, probs = sample_candidates(seed, ids)
        has_probs = np.isfinite(probs).all(axis=1)
        ids, maps, probs = ids[has_probs], maps[has_probs], probs[has_probs]
        choices = np.stack([_draw_map_choices(p, points, rng_for(seed, STREAM_IFS_POINTS, int(j)))
                            for p, j in zip(probs, ids)]) if len(ids) else np.zeros((0, points), np.int64)
        valid = is_valid_cloud(_normalize(_iterate(maps, choices)))
        accepted_ids.extend(ids[valid].tolist())
        accepted_maps.extend(maps[valid])
        accepted_probs.extend(probs[valid])
    n = n_categories
    return CategoryBank(seed=seed, points=points, candidate_ids=np.asarray(accepted_ids[:n], np.int64),
                        maps=np.stack(accepted_maps[:n]), probs=np.stack(accepted_probs[:n]))
