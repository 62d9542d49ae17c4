"""The statistics of `python -m local_eval stats` (local_eval.stats.table), measured on a
fixed seeded sample of an ImageFolder without training.

Per dataset: image size, classes and images, mean and std intensity per channel (0-255, pooled
over pixels), colourfulness (Hasler and Suesstrunk 2003, mean over images), the fraction of
blank crops at each crop size (pixel std over the crop's values < 4: over every position, i.e.
the chance that a uniform RandomCrop is blank), edge density (the fraction of pixels whose Sobel
gradient magnitude on grey exceeds 100, a step of 25 grey levels), and class separability: the
two-fold nearest-centroid accuracy on 16 x 16 box-downsampled pixels, beside chance.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from submission.errors import UserError
from submission.paths import open_regular_file

BLANK_STD = 4.0
EDGE_THRESHOLD = 100.0  # Sobel magnitude; a vertical step of h grey levels gives 4 h
SMALL_SIDE = 16  # side of the downsampled images the nearest-centroid classifier uses
KIT_CROPS = (32, 224)  # the kit presets' RandomCrop sizes (kit-mobilenet*, kit-resnet)
CHUNK = 16  # images per integral-image block: bounds memory for large images


def sample_files(root: Path, classes: int, per_class: int, seed: int
                 ) -> Tuple[List[List[Path]], int, int]:
    """Seeded choice of up to `classes` class folders and `per_class` images of each; also the
    folder's class and image counts."""
    from ..datasets.folders import check_image_folder, dataset_files

    check_image_folder(root, "DATA", "DATA")
    listing = dataset_files(root)  # the files a run trains on (submission.dataset_files)
    class_dirs = listing.classes
    rng = random.Random(seed)
    files = [[root / name / image for image in images]
             for name, images in zip(listing.classes, listing.images)]
    chosen = sorted(rng.sample(range(len(class_dirs)), min(classes, len(class_dirs))))
    picked = [sorted(rng.sample(files[c], min(per_class, len(files[c])))) for c in chosen]
    return picked, len(class_dirs), sum(map(len, files))


def load(picked: List[List[Path]]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 images, (N,) int64 labels and (N, 16*16*3) float64 small images."""
    images, small, labels, size = [], [], [], None
    for label, files in enumerate(picked):
        for path in files:
            try:
                with open_regular_file(path, str(path), "replace it with the image") as handle, \
                        Image.open(handle) as opened:  # never blocks on a FIFO
                    rgb = opened.convert("RGB")
            except OSError as error:
                raise UserError(f"cannot read {path} ({error}); every image must open with "
                                f"PIL") from None
            if size is not None and rgb.size != size:
                raise UserError(f"{path} is {rgb.size[0]}x{rgb.size[1]} but {picked[0][0]} is "
                                f"{size[0]}x{size[1]}; stats needs one image size per dataset")
            size = rgb.size
            images.append(np.asarray(rgb))
            small.append(np.asarray(rgb.resize((SMALL_SIDE, SMALL_SIDE), Image.BOX)).ravel())
            labels.append(label)
    return np.stack(images), np.asarray(labels), np.stack(small).astype(np.float64)


def blank_fraction(images: np.ndarray, crop: int) -> Optional[float]:
    """Fraction of all crop x crop windows of (N, H, W, 3) uint8 images whose std over their
    crop*crop*3 values is below BLANK_STD (window sums from integral images); None when the
    crop does not fit."""
    n, h, w, _ = images.shape
    if crop > min(h, w):
        return None
    blank = 0
    for start in range(0, n, CHUNK):  # blocks of images, each block vectorised
        x = images[start:start + CHUNK].astype(np.float64)
        sums = [np.pad(v, ((0, 0), (1, 0), (1, 0))).cumsum(1).cumsum(2)
                for v in (x.sum(axis=3), (x * x).sum(axis=3))]  # (B, H+1, W+1) each
        box = [s[:, crop:, crop:] - s[:, :-crop, crop:] - s[:, crop:, :-crop]
               + s[:, :-crop, :-crop] for s in sums]  # (B, H-crop+1, W-crop+1)
        count = crop * crop * 3
        mean = box[0] / count
        variance = np.maximum(box[1] / count - mean * mean, 0.0)
        blank += int((variance < BLANK_STD ** 2).sum())
    return blank / (n * (h - crop + 1) * (w - crop + 1))


def colourfulness(images: np.ndarray) -> np.ndarray:
    """(N,) Hasler-Suesstrunk colourfulness: sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 +
    mean(yb)^2) with rg = R - G, yb = (R + G) / 2 - B; 0 for grey images."""
    x = images.reshape(len(images), -1, 3).astype(np.float64)
    rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return np.hypot(rg.std(1), yb.std(1)) + 0.3 * np.hypot(rg.mean(1), yb.mean(1))


def edge_density(images: np.ndarray) -> float:
    """Fraction of interior pixels whose 3x3 Sobel gradient magnitude on grey (ITU-R 601 luma)
    exceeds EDGE_THRESHOLD."""
    grey = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # (N, H, W)
    if min(grey.shape[1:]) < 3:
        return 0.0
    smooth_rows = grey[:, :-2] + 2 * grey[:, 1:-1] + grey[:, 2:]  # (N, H-2, W)
    smooth_cols = grey[:, :, :-2] + 2 * grey[:, :, 1:-1] + grey[:, :, 2:]  # (N, H, W-2)
    gx = smooth_rows[:, :, 2:] - smooth_rows[:, :, :-2]
    gy = smooth_cols[:, 2:, :] - smooth_cols[:, :-2, :]
    return float((np.hypot(gx, gy) > EDGE_THRESHOLD).mean())


def nearest_centroid_accuracy(features: np.ndarray, labels: np.ndarray) -> Optional[float]:
    """Two-fold nearest-centroid accuracy of (N, D) features: each class's images alternate
    between the folds; the centroids of one fold classify the other. (Leaving one image out
    instead is biased below chance: its own class's centroid, made without it, lies farther away
    than the others.) None with fewer than two classes of at least two images."""
    counts = np.bincount(labels)
    if len(counts) < 2 or counts.min() < 2:
        return None
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(labels)
    rank[order] = np.arange(len(labels)) - np.repeat(np.cumsum(counts) - counts, counts)
    correct = 0
    for fold in (0, 1):  # two folds, each vectorised
        train, test = rank % 2 == fold, rank % 2 != fold
        sums = np.zeros((len(counts), features.shape[1]))
        np.add.at(sums, labels[train], features[train])
        centroids = sums / np.bincount(labels[train], minlength=len(counts))[:, None]  # (C, D)
        x = features[test]
        distances = (x ** 2).sum(1)[:, None] - 2 * x @ centroids.T + (centroids ** 2).sum(1)
        correct += int((distances.argmin(1) == labels[test]).sum())
    return correct / len(labels)


def dataset_stats(root: Path, classes: int = 20, per_class: int = 10, seed: int = 0,
                  crops: Sequence[int] = KIT_CROPS) -> Dict[str, Any]:
    """Every statistic of one ImageFolder, measured on a seeded sample (raises UserError)."""
    picked, total_classes, total_images = sample_files(root, classes, per_class, seed)
    images, labels, small = load(picked)
    pixels = images.reshape(-1, 3).astype(np.float64)
    accuracy = nearest_centroid_accuracy(small, labels)
    return {"path": str(root), "image_size": [int(images.shape[2]), int(images.shape[1])],
            "classes": total_classes, "images": total_images,
            "sampled_classes": len(picked), "sampled_images": int(len(images)), "seed": seed,
            "mean": pixels.mean(0).tolist(), "std": pixels.std(0).tolist(),
            "colourfulness": float(colourfulness(images).mean()),
            "blank_fraction": {str(c): blank_fraction(images, c) for c in crops},
            "edge_density": edge_density(images),
            "nearest_centroid_accuracy": accuracy, "chance": 1.0 / len(picked)}
