"""3D IFS fractal categories (MV-FractalDB / 3D-OFDB style) and the category bank.

A category is 2-7 affine maps x -> A x + b on R^3, each with 12 parameters drawn from U(-1, 1).
Its point cloud is the IFS orbit of the origin: at every step one map is chosen with probability
proportional to |det A|. The cloud is centred and scaled jointly (one factor for all axes) so its
longest axis spans [-1, 1] (`normalization = "longest_axis_midrange"`, ours) or, as the 4th place's
generator does, all coordinates are min-max scaled together to [-1, 1] and the mean subtracted
(`"global_minmax_mean"`). A category is rejected when any coordinate is NaN/inf or the variance of
the normalised cloud along any axis is below `MIN_AXIS_VARIANCE` (theirs: not above it).

Candidate j draws its parameters and its orbit's map choices from counter-based streams keyed by
(seed, j) (see seeding.counter_uniform), so candidates are independent: the recursion runs over
thousands of candidates at once with elementwise numpy ops, and a category's cloud does not
depend on how candidates were batched. Only the accepted candidates' parameters are stored.
"""
from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np
from tqdm import tqdm

from ...errors import UserError
from ...fileio import write_atomic
from ...limits import MAX_SEED
from ...seeding import STREAM_BANK, STREAM_IFS_POINTS, counter_keys, counter_uniform
from .config import MAX_POINTS, NORMALIZATIONS

MIN_MAPS, MAX_MAPS = 2, 7
MIN_AXIS_VARIANCE = 0.05
BANK_FORMAT_VERSION = 1
# A bank file without a "normalization" entry (written before the field existed) is ours; this is
# not the config default (the 4th place's since the switch): such banks store the entry.
DEFAULT_NORMALIZATION = NORMALIZATIONS[0]


@dataclass(frozen=True)
class CategoryBank:
    """The accepted categories of one seed: small enough to ship in a submission's params/.

    seed:          base seed the orbits are drawn from
    n_points:      orbit length (points) per category
    candidate_ids: (C,) int64, the candidate index j of each category (keys its orbit RNG)
    maps:          (C, MAX_MAPS, 3, 4) float64, [A | b] per map, unused maps zero
    probs:         (C, MAX_MAPS) float64, map probabilities (|det A| normalised), unused maps zero
    normalization: how clouds are normalised (and so which candidates the filter accepted)
    """

    seed: int
    n_points: int
    candidate_ids: np.ndarray
    maps: np.ndarray
    probs: np.ndarray
    normalization: str = DEFAULT_NORMALIZATION

    def __len__(self) -> int:
        return int(self.candidate_ids.shape[0])

    def point_cloud(self, category: int) -> np.ndarray:
        """(points, 3) float32 normalised cloud of one category (recomputed, deterministic)."""
        if not 0 <= category < len(self):
            raise UserError(f"category {category} is outside this bank of {len(self)} categories")
        return orbit_cloud(self.seed, int(self.candidate_ids[category]), self.maps[category],
                           self.probs[category], self.n_points, self.normalization)

    def check_fits(self, config: Any, source: str = "category bank") -> None:
        """Raise `UserError` unless this bank can serve `config` (a `GenerationConfig`): enough
        categories, drawn from the config's seed, with its number of points and normalisation."""
        fc = config.fractal
        if (len(self) < config.classes or self.seed != config.seed or self.n_points != fc.points
                or self.normalization != fc.normalization):
            raise UserError(f"{source} ({len(self)} categories, seed {self.seed}, {self.n_points} points, "
                            f"{self.normalization} normalization) does not fit the config ({config.classes} classes, "
                            f"seed {config.seed}, {fc.points} points, {fc.normalization} normalization); "
                            "rebuild it (`python -m submission pack`) or drop it to build one from the config")

    @classmethod
    def for_config(cls, config: Any, categories: Optional[int] = None, progress: bool = False) -> "CategoryBank":
        """The bank a `GenerationConfig` needs: its first `categories` (default: all its classes)
        categories drawn from its seed with its number of points and normalisation."""
        return build_bank(config.classes if categories is None else categories, seed=config.seed,
                          points=config.fractal.points, progress=progress, normalization=config.fractal.normalization)

    def to_bytes(self) -> bytes:
        """The bank as a compressed .npz file's bytes."""
        buffer = io.BytesIO()
        # The normalisation is stored only when it is not the default, so default banks keep their bytes.
        extra = {} if self.normalization == DEFAULT_NORMALIZATION else {"normalization": np.str_(self.normalization)}
        np.savez_compressed(buffer, version=BANK_FORMAT_VERSION, seed=self.seed, points=self.n_points,
                            candidate_ids=self.candidate_ids, maps=self.maps, probs=self.probs, **extra)
        return buffer.getvalue()

    def save(self, path: Union[str, os.PathLike]) -> Path:
        path = Path(path)
        write_atomic(path, self.to_bytes())
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "CategoryBank":
        """Read a bank written by `save`; a file that is not one, or whose arrays have the wrong
        shapes or non-finite values, is a one-line `UserError` (nothing downstream sees it)."""
        try:
            with open(path, "rb") as f:
                if f.read(4) != b"PK\x03\x04":
                    raise ValueError("not an .npz archive")
            with np.load(path) as data:
                arrays = {name: data[name] for name in ("version", "seed", "points", "candidate_ids", "maps", "probs")}
                if "normalization" in data.files:  # absent: the default (written before the field existed)
                    arrays["normalization"] = data["normalization"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise UserError(f"cannot read category bank {path}: {exc}; rebuild it with `python -m submission pack`") from None
        return cls(**_checked_bank_arrays(arrays, path))


def _checked_bank_arrays(arrays: Dict[str, np.ndarray], path: Any) -> Dict[str, Any]:
    """The `CategoryBank` fields from a loaded .npz, after checking every array's shape and values."""

    def bad(problem: str) -> UserError:
        return UserError(f"category bank {path} is malformed: {problem}; rebuild it with `python -m submission pack`")

    def scalar_int(name: str) -> int:
        value = arrays[name]
        if value.shape != () or value.dtype.kind not in "iu":
            raise bad(f"{name} must be one integer, got a {value.dtype} array of shape {value.shape}")
        return int(value)

    version = scalar_int("version")
    if version != BANK_FORMAT_VERSION:
        raise UserError(f"category bank {path} has format version {version}, expected {BANK_FORMAT_VERSION}; rebuild it")
    seed, points = scalar_int("seed"), scalar_int("points")
    if not 0 <= seed <= MAX_SEED:
        raise bad(f"seed {seed} is outside [0, 2**56 - 1]")
    if not 1 <= points <= MAX_POINTS:
        raise bad(f"points {points} is outside [1, {MAX_POINTS}]")
    ids, maps, probs = arrays["candidate_ids"], arrays["maps"], arrays["probs"]
    for name, value in (("candidate_ids", ids), ("maps", maps), ("probs", probs)):
        if value.dtype.kind not in ("iu" if name == "candidate_ids" else "iuf"):
            raise bad(f"{name} has dtype {value.dtype}, expected {'integers' if name == 'candidate_ids' else 'numbers'}")
    n = ids.shape[0] if ids.ndim == 1 else -1
    if n < 1:
        raise bad(f"candidate_ids must be a non-empty 1-D array, got shape {ids.shape}")
    for name, value, shape in (("maps", maps, (n, MAX_MAPS, 3, 4)), ("probs", probs, (n, MAX_MAPS))):
        if value.shape != shape:
            raise bad(f"{name} has shape {value.shape}, expected {shape} for {n} categories")
    if (ids < 0).any() or len(np.unique(ids)) != n:
        raise bad("candidate_ids must be distinct non-negative integers")
    normalization = arrays.get("normalization", np.str_(DEFAULT_NORMALIZATION))
    if normalization.shape != () or normalization.dtype.kind != "U" or str(normalization) not in NORMALIZATIONS:
        raise bad(f"normalization must be one of {list(NORMALIZATIONS)}")
    maps, probs = maps.astype(np.float64), probs.astype(np.float64)
    if not (np.isfinite(maps).all() and np.isfinite(probs).all()):
        raise bad("maps and probs must be finite (NaN or inf found)")
    if (np.abs(maps) > 1).any():
        raise bad("maps entries must lie in [-1, 1] (IFS parameters are drawn from U(-1, 1))")
    if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-6):
        raise bad("every row of probs must be non-negative and sum to 1")
    return dict(seed=seed, n_points=points, candidate_ids=ids.astype(np.int64), maps=maps, probs=probs,
                normalization=str(normalization))


def sample_candidates(seed: int, candidate_ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """IFS parameters of the given candidates (vectorised over candidates).

    Returns maps (J, MAX_MAPS, 3, 4) float64, [A | b] with unused maps zero, and probs
    (J, MAX_MAPS) float64 proportional to |det A| (NaN rows when every det is zero).
    """
    draws = counter_uniform(counter_keys(seed, STREAM_BANK, candidate_ids), 0, 1 + MAX_MAPS * 12).T  # (J, 85)
    n_maps = MIN_MAPS + np.minimum((draws[:, 0] * (MAX_MAPS - MIN_MAPS + 1)).astype(np.int64), MAX_MAPS - MIN_MAPS)
    maps = (draws[:, 1:] * 2.0 - 1.0).reshape(-1, MAX_MAPS, 3, 4)
    maps[np.arange(MAX_MAPS)[None, :] >= n_maps[:, None]] = 0.0
    dets = np.abs(np.linalg.det(maps[..., :3]))
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = dets / dets.sum(axis=1, keepdims=True)
    return maps, probs


def _orbit_blocks(seed: int, candidate_ids: np.ndarray, maps: np.ndarray, probs: np.ndarray,
                  n_points: int, block: int = 256) -> Iterator[np.ndarray]:
    """The orbit of the origin, in consecutive (T, 3, J) float64 blocks (T <= block).

    At step t candidate j applies the map picked by draw t of its counter stream. The recursion
    is sequential in t but vectorised over J with elementwise ops only, so a candidate's orbit is
    bit-identical whether computed alone or in a batch. Coordinates are stored (3, J) so every
    op runs on contiguous rows.
    """
    return orbit_blocks_keyed(counter_keys(seed, STREAM_IFS_POINTS, candidate_ids), maps, probs, n_points, block)


def orbit_blocks_keyed(keys: np.ndarray, maps: np.ndarray, probs: np.ndarray, n_points: int,
                       block: int = 256) -> Iterator[np.ndarray]:
    """`_orbit_blocks` with the map choices of orbit j drawn from counter stream `keys[j]` (J,) uint64."""
    n_cat = len(keys)
    cdf = np.cumsum(probs, axis=1)
    cdf = cdf[:, :-1] / cdf[:, -1:]  # (J, M-1): map m is chosen when cdf[m-1] <= u < cdf[m]
    # (12, J*M): coefficient row 4 i + k is A_ik, row 4 i + 3 is b_i, one column per (candidate, map).
    coefs = np.ascontiguousarray(maps.reshape(n_cat * MAX_MAPS, 12).T)
    column_offset = np.arange(n_cat) * MAX_MAPS
    x = np.zeros((3, n_cat))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n_points, block):
            count = min(block, n_points - start)
            u = counter_uniform(keys, start, count)  # (T, J)
            columns = np.broadcast_to(column_offset, u.shape).copy()
            for m in range(MAX_MAPS - 1):
                columns += u >= cdf[:, m]
            out = np.empty((count, 3, n_cat))
            for t in range(count):
                c = coefs.take(columns[t], axis=1)  # (12, J)
                for i in range(3):
                    row = out[t, i]
                    np.multiply(c[4 * i], x[0], out=row)
                    row += c[4 * i + 1] * x[1]
                    row += c[4 * i + 2] * x[2]
                    row += c[4 * i + 3]
                x = out[t]
            yield out


def _normalization(lo: np.ndarray, hi: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Centre (..., 3) and joint half-extent (..., 1) that map a cloud's longest axis to [-1, 1]."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (hi + lo) / 2, (hi - lo).max(axis=-1, keepdims=True) / 2


def _global_half_range(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(..., 1) half of the range over all coordinates at once (the 4th place's scale, `axis=None`)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (hi.max(axis=-1, keepdims=True) - lo.min(axis=-1, keepdims=True)) / 2


def orbit_cloud(seed: int, candidate_id: int, maps: np.ndarray, probs: np.ndarray, n_points: int,
                normalization: str = DEFAULT_NORMALIZATION) -> np.ndarray:
    """(n_points, 3) float32 normalised cloud of one candidate: maps (M, 3, 4), probs (M,)."""
    ids = np.asarray([candidate_id])
    orbit = np.concatenate(list(_orbit_blocks(seed, ids, maps[None], probs[None], n_points)))[:, :, 0]  # (N, 3)
    return normalise_orbit(orbit, normalization)


def normalise_orbit(orbit: np.ndarray, normalization: str) -> np.ndarray:
    """(N, 3) float64 orbit -> (N, 3) float32 cloud normalised as `normalization` says."""
    lo, hi = orbit.min(axis=0), orbit.max(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        if normalization == "global_minmax_mean":
            # 4th place, _fractal.py:26-30 then :40-53: every coordinate min-max scaled together to
            # [-1, 1] (one min and max over all axes), then the mean point subtracted. The longest
            # axis then spans less than 2 whenever the axes' ranges are offset from each other.
            low, span = lo.min(), hi.max() - lo.min()
            scaled = (orbit - low) / span * 2 - 1
            return (scaled - scaled.mean(axis=0)).astype(np.float32)
        centre, half_extent = _normalization(lo, hi)
        return ((orbit - centre) / half_extent).astype(np.float32)


def valid_candidates(seed: int, candidate_ids: np.ndarray, maps: np.ndarray, probs: np.ndarray,
                     n_points: int, normalization: str = DEFAULT_NORMALIZATION) -> np.ndarray:
    """(J,) bool: the normalised orbit is finite and its variance is >= MIN_AXIS_VARIANCE on every axis
    (with "global_minmax_mean", as the 4th place's generator.py:71-73: above it, on their scaling).

    Streams the orbit through running min/max/sums, so memory stays O(J) whatever n_points is.
    """
    n_cat = len(candidate_ids)
    lo, hi = np.full((3, n_cat), np.inf), np.full((3, n_cat), -np.inf)
    total, total_sq = np.zeros((3, n_cat)), np.zeros((3, n_cat))
    finite = np.ones(n_cat, bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for block in _orbit_blocks(seed, candidate_ids, maps, probs, n_points):  # (T, 3, J)
            finite &= np.isfinite(block).all(axis=(0, 1))
            lo, hi = np.minimum(lo, block.min(axis=0)), np.maximum(hi, block.max(axis=0))
            total += block.sum(axis=0)
            total_sq += (block * block).sum(axis=0)
        if normalization == "global_minmax_mean":
            half_extent = _global_half_range(lo.T, hi.T)  # (J, 1)
        else:
            _, half_extent = _normalization(lo.T, hi.T)  # (J, 1)
        total, total_sq = total.T, total_sq.T
        mean = total / n_points
        variance = (total_sq / n_points - mean * mean) / (half_extent * half_extent)
        wide = variance > MIN_AXIS_VARIANCE if normalization == "global_minmax_mean" else variance >= MIN_AXIS_VARIANCE
        return finite & np.isfinite(variance).all(axis=1) & wide.all(axis=1)


def build_bank(n_categories: int, seed: int = 0, points: int = 10_000, chunk: int = 4096,
               progress: bool = False, normalization: str = DEFAULT_NORMALIZATION) -> CategoryBank:
    """The first `n_categories` valid candidates (in candidate order) of `seed`.

    `progress` shows a tqdm bar (on stderr) counting accepted categories: about a minute for the
    contest's 1000 categories of 10k points. It does not change the bank.
    """
    if n_categories < 1:
        raise UserError(f"a bank needs at least one category, got {n_categories}")
    accepted_ids, accepted_maps, accepted_probs = [], [], []
    next_candidate = 0
    bar = tqdm(total=n_categories, desc="category bank", unit="category", disable=not progress)
    try:
        while len(accepted_ids) < n_categories:
            # About 1.7% of candidates survive the variance filter (1.2% under the 4th place's normalisation); big blocks amortise numpy overhead.
            size = min(chunk, max(256, 100 * (n_categories - len(accepted_ids))))
            ids = np.arange(next_candidate, next_candidate + size)
            next_candidate += size
            maps, probs = sample_candidates(seed, ids)
            keep = np.isfinite(probs).all(axis=1)
            ids, maps, probs = ids[keep], maps[keep], probs[keep]
            valid = valid_candidates(seed, ids, maps, probs, points, normalization)
            bar.update(min(int(valid.sum()), n_categories - len(accepted_ids)))
            accepted_ids.extend(ids[valid].tolist())
            accepted_maps.extend(maps[valid])
            accepted_probs.extend(probs[valid])
    finally:
        bar.close()
    n = n_categories
    return CategoryBank(seed=seed, n_points=points, candidate_ids=np.asarray(accepted_ids[:n], np.int64),
                        maps=np.stack(accepted_maps[:n]), probs=np.stack(accepted_probs[:n]), normalization=normalization)
