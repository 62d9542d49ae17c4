"""`stats --plot`: one row of random crops per dataset, as pre-training's RandomCrop sees them,
blank ones (pixel std < 4) framed red."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np

from submission.fileio import write_atomic

from ..core.outputs import figure_png
from .images import BLANK_STD, load, sample_files

CROPS_PER_ROW = 8


def random_crops(images: np.ndarray, crop: int, seed: int) -> np.ndarray:
    """One seeded random crop x crop window of each (N, H, W, 3) uint8 image: (N, crop, crop, 3)
    (the whole image when the crop does not fit)."""
    n, h, w, _ = images.shape
    if crop > min(h, w):
        return images
    rng = np.random.default_rng(seed)
    tops, lefts = rng.integers(0, h - crop + 1, n), rng.integers(0, w - crop + 1, n)
    rows = tops[:, None] + np.arange(crop)  # (N, crop)
    cols = lefts[:, None] + np.arange(crop)
    return images[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def plot_samples(named: Dict[str, Path], results: Dict[str, Dict[str, Any]], path: Path,
                 crop: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(named), CROPS_PER_ROW, squeeze=False, dpi=100,
                                figsize=(1.3 * CROPS_PER_ROW, 1.55 * len(named)))
    for row, (name, root) in enumerate(named.items()):
        seed = results[name]["seed"]
        images, _, _ = load(sample_files(root, CROPS_PER_ROW, 1, seed)[0])
        crops = random_crops(images, crop, seed)
        blank = crops.reshape(len(crops), -1).astype(np.float64).std(1) < BLANK_STD
        blank_share = results[name]["blank_fraction"].get(str(crop))
        share = "" if blank_share is None else f", {100 * blank_share:.0f}% blank"
        for column, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if column >= len(crops):
                ax.axis("off")
                continue
            ax.imshow(crops[column], interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_color("red" if blank[column] else "0.7")
                spine.set_linewidth(3 if blank[column] else 0.5)
        axes[row][0].set_title(f"{name}: {crop} px crops{share}", fontsize=8, loc="left")
    figure.tight_layout()
    write_atomic(path, figure_png(figure))
