"""Lever 1 of issue 29, after 1p-frac (Nakamura et al., "Scaling Backwards: Minimal Synthetic
Pre-training?", ECCV 2024): a class is one IFS of the bank and each of its images draws its own IFS,
the class's with every parameter of every map (the 9 entries of A and the 3 of b) plus independent
uniform noise in [-delta, delta]. Unused map slots stay zero; the map probabilities are recomputed
from the perturbed |det A| as the bank does. The perturbed orbit is normalised like the class's.

A perturbed IFS must pass the bank's own filter (a finite orbit whose normalised variance clears
`MIN_AXIS_VARIANCE` on every axis); a draw that fails is redrawn, up to `ATTEMPTS` times, and an
image whose draws all fail shows the class's own cloud. Every draw comes from the image's own
generator (seed, class, image), so an image's cloud never depends on its batch.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...seeding import STREAM_PERTURB, STREAM_PERTURB_POINTS, counter_keys, rng_for
from .bank import MIN_AXIS_VARIANCE, normalise_orbit, orbit_blocks_keyed

ATTEMPTS = 8  # draws per image before it falls back to the class's own IFS
_IMAGE_KEY_SPAN = 1 << 17  # > MAX_IMAGES_PER_CLASS: (class, image, attempt) -> one orbit stream id


def perturbed_maps(maps: np.ndarray, delta: float, rng: np.random.Generator) -> np.ndarray:
    """(MAX_MAPS, 3, 4) maps + U(-delta, delta) on every parameter of the used maps (unused stay zero)."""
    used = np.abs(maps).sum(axis=(1, 2)) > 0
    noise = rng.uniform(-delta, delta, size=maps.shape)
    return maps + noise * used[:, None, None]


def map_probabilities(maps: np.ndarray) -> Optional[np.ndarray]:
    """(MAX_MAPS,) map probabilities proportional to |det A| (the bank's rule); None when all are zero."""
    dets = np.abs(np.linalg.det(maps[:, :, :3]))
    total = dets.sum()
    return dets / total if np.isfinite(total) and total > 0 else None


def passes_filter(cloud: np.ndarray, normalization: str) -> bool:
    """The bank's filter on a normalised cloud: finite, and wide enough on every axis."""
    if not np.isfinite(cloud).all():
        return False
    variance = cloud.astype(np.float64).var(axis=0)
    wide = variance > MIN_AXIS_VARIANCE if normalization == "global_minmax_mean" else variance >= MIN_AXIS_VARIANCE
    return bool(wide.all())


def perturbed_clouds(seed: int, category: int, indices: Sequence[int], maps: np.ndarray, delta: float,
                     n_points: int, normalization: str, fallback: np.ndarray,
                     tally: Optional[Dict[str, int]] = None) -> List[np.ndarray]:
    """One (n_points, 3) float32 cloud per image of `indices`: the class's IFS `maps` perturbed by
    `delta`, its first draw that passes the filter. The orbits run vectorised over a batch in two
    passes: every image's first draw, then all remaining draws of the images still without a cloud
    (the same clouds as trying draw after draw, in far fewer sequential orbit loops).
    `tally`, when given, counts "accepted" draws, "rejected" draws (those before an image's first
    accepted one, or all its draws) and "fallback" images."""
    rngs = {j: rng_for(seed, STREAM_PERTURB, category, j) for j in indices}
    clouds: Dict[int, np.ndarray] = {}
    pending = list(indices)
    for attempts in (range(0, 1), range(1, ATTEMPTS)):
        if not pending:
            break
        jobs = []  # (image, attempt, maps, probabilities): draw `attempt` of the image's generator, in order
        for j in pending:
            for attempt in attempts:
                moved = perturbed_maps(maps, delta, rngs[j])
                probs = map_probabilities(moved)
                if probs is not None:
                    jobs.append((j, attempt, moved, probs))
        accepted = _accepted_clouds(seed, category, jobs, n_points, normalization)
        for j in pending:
            tried = [a for a in attempts if (j, a) in accepted]
            if tried:
                clouds[j] = accepted[j, tried[0]]
            if tally is not None:
                tally["accepted"] = tally.get("accepted", 0) + bool(tried)
                tally["rejected"] = tally.get("rejected", 0) + ((tried[0] - attempts[0]) if tried else len(attempts))
        pending = [j for j in pending if j not in clouds]
    for j in pending:  # every draw failed: the class's own cloud
        clouds[j] = fallback
    if tally is not None:
        tally["fallback"] = tally.get("fallback", 0) + len(pending)
    return [clouds[j] for j in indices]


def _accepted_clouds(seed: int, category: int, jobs: List[Tuple[int, int, np.ndarray, np.ndarray]],
                     n_points: int, normalization: str) -> Dict[Tuple[int, int], np.ndarray]:
    """(image, attempt) -> normalised cloud, for the jobs whose orbit passes the filter. Orbit j's map
    choices come from the counter stream of (seed, STREAM_PERTURB_POINTS, (class, image, attempt))."""
    if not jobs:
        return {}
    ids = np.asarray([(category * _IMAGE_KEY_SPAN + j) * ATTEMPTS + a for j, a, _, _ in jobs], np.uint64)
    keys = counter_keys(seed, STREAM_PERTURB_POINTS, ids)
    with np.errstate(over="ignore", invalid="ignore"):
        orbits = np.concatenate(list(orbit_blocks_keyed(keys, np.stack([job[2] for job in jobs]),
                                                        np.stack([job[3] for job in jobs]), n_points)))  # (N, 3, J)
    accepted = {}
    for column, (j, a, _, _) in enumerate(jobs):
        with np.errstate(over="ignore", invalid="ignore"):
            cloud = normalise_orbit(orbits[:, :, column], normalization)
        if passes_filter(cloud, normalization):
            accepted[j, a] = cloud
    return accepted


__all__ = ["ATTEMPTS", "perturbed_clouds", "perturbed_maps", "map_probabilities", "passes_filter"]
