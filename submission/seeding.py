"""Seeds derive from (base seed, stream, class, image index): any image can be regenerated alone
and no two workers ever share RNG state. No global RNG is touched anywhere in the package."""
from __future__ import annotations

import numpy as np

# Distinct streams so the category bank, point augmentation and image augmentation never
# draw from the same sequence.
STREAM_BANK = 0
STREAM_IFS_POINTS = 1
STREAM_POINT_AUGMENT = 2
STREAM_IMAGE_AUGMENT = 3
STREAM_BACKGROUND = 4  # point_augment.background (the fractal family's diamond-square backdrop)
# The visualatom family: class parameters from (seed, class), image draws from (seed, class, image).
STREAM_VISUALATOM_CLASS = 20
STREAM_VISUALATOM_IMAGE = 21
STREAM_GLYPHS = 30  # the glyph family's per-image draws (fonts, sizes, angles, offsets, mixes)


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, stream, *keys)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, *keys])))


def int_seed(seed: int, *keys: int) -> int:
    """A 32-bit integer seed derived from (seed, *keys), for libraries that take one (albumentations);
    callers pass a stream and item keys, e.g. ``int_seed(seed, STREAM_IMAGE_AUGMENT, c, j)``."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint32)[0])


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective avalanche hash on uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def counter_keys(seed: int, stream: int, ids: np.ndarray) -> np.ndarray:
    """(J,) uint64 stream keys for items `ids` of (seed, stream); feed them to `counter_uniform`."""
    with np.errstate(over="ignore"):
        base = _mix64(np.asarray([seed * 0x100 + stream], np.uint64) * _GOLDEN + _GOLDEN)
        return _mix64(base ^ (np.asarray(ids, np.uint64) * _GOLDEN))


def counter_uniform(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """(count, J) float64 in [0, 1): draws start..start+count-1 of each key's stream.

    Counter-based (a hash of key and position), so a stream can be read from any position and
    an item's draws never depend on which other items are computed alongside it.
    """
    positions = np.arange(start + 1, start + count + 1, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        bits = _mix64(keys[None, :] + positions * _GOLDEN)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
# The fractal family's levers (issue 29): per-image IFS perturbations (parameter noise and the
# perturbed orbit's map choices) and the instances per image (count, framing, colour).
STREAM_PERTURB = 5
STREAM_PERTURB_POINTS = 6
STREAM_INSTANCES = 7
STREAM_MIX = 40  # the mix family: one derived seed per component recipe
