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


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, stream, *keys)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, *keys])))


def int_seed(seed: int, stream: int, *keys: int) -> int:
    """A 32-bit integer seed for libraries that take one (albumentations)."""
    return int(np.random.SeedSequence([seed, stream, *keys]).generate_state(1, np.uint32)[0])
