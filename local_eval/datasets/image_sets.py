"""Caltech-101, Caltech-256 and Omniglot: image files of many sizes, listed in torchvision's
layouts, split by a fixed per-class rule, and decoded once into (N, S, S, 3) uint8 arrays.

None of the three has an official test split. Ours follows the organizer kit's script
(chatflip/ImageRecognitionDataset, fetched by the kit's set_data.sh), made deterministic: the kit
shuffles each class with Python's random.seed(0) and takes 30 training and the next 30 test images
(Caltech) or leaves out 4 of the 20 drawings per character as test (Omniglot, fold 0 of 5); we take
the files in sorted order instead of shuffled, so the split needs no random state and does not
change with the Python version. The files of a class are numbered in sorted order by torchvision
(Caltech's image_0001.jpg ..., Omniglot's <char>_<drawer>.png), so "sorted order" is the index.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

from submission.errors import UserError
from submission.system import available_cores

from .common import UnreadableImage, read_rgb

# Caltech: per class, the first 30 files (sorted) train and the next 30 test, as the kit's
# 30 / 30. Caltech-101's smallest class has 31 images (1 test image), Caltech-256's 80.
CALTECH_TRAIN_PER_CLASS = 30
CALTECH_TEST_PER_CLASS = 30
# Omniglot: each character has 20 drawings, one per drawer (files <char>_01.png .. _20.png);
# drawers 01-04 are the test split, 05-20 training (the kit's fold 0: 16 train, 4 test).
OMNIGLOT_TEST_DRAWINGS = 4

FileSplit = Tuple[List[str], np.ndarray, List[str]]  # paths, labels (N,) int64, class names


def _rank_in_class(labels: np.ndarray) -> np.ndarray:
    """(N,) position of each sample among the samples of its class, in list order."""
    order = np.argsort(labels, kind="stable")
    first = np.searchsorted(labels[order], labels[order], side="left")
    rank = np.empty_like(labels)
    rank[order] = np.arange(len(labels)) - first
    return rank


def _take(paths: Sequence[str], labels: np.ndarray, keep: np.ndarray) -> Tuple[List[str], np.ndarray]:
    chosen = np.flatnonzero(keep)
    return [paths[i] for i in chosen], labels[chosen]


def caltech_files(root: Path, which: str, split: str) -> FileSplit:
    """Caltech-101 or -256 (`which`) files of `split`, listed by torchvision's class: its
    categories (Caltech-101 without BACKGROUND_Google, which torchvision and the kit both drop;
    Caltech-256 with 257.clutter, which both keep as a class) and per-class file numbers."""
    import torchvision.datasets

    try:  # torchvision's file names: image_0001.jpg (101), 001_0001.jpg (256)
        if which == "caltech101":
            listing = torchvision.datasets.Caltech101(str(root), download=False)
            folder, pattern = Path(listing.root) / "101_ObjectCategories", "image_{i:04d}.jpg"
        else:
            listing = torchvision.datasets.Caltech256(str(root), download=False)
            folder, pattern = Path(listing.root) / "256_ObjectCategories", "{c3}_{i:04d}.jpg"
    except (RuntimeError, ValueError, OSError) as error:  # e.g. no BACKGROUND_Google folder
        raise UserError(f"downstream set {which}: {root / which} is not the unpacked archive "
                        f"torchvision's class reads ({type(error).__name__}: {error}); get it "
                        f"again with --download") from error
    paths = [str(folder / c / pattern.format(i=i, c3=c[:3]))
             for c, i in zip((listing.categories[y] for y in listing.y), listing.index)]
    labels = np.asarray(listing.y, dtype=np.int64)  # (N,) int64, grouped by class
    rank = np.asarray(listing.index, dtype=np.int64) - 1  # file number 1.. in the class
    if split == "train":
        keep = rank < CALTECH_TRAIN_PER_CLASS
    else:
        keep = (rank >= CALTECH_TRAIN_PER_CLASS) & (
            rank < CALTECH_TRAIN_PER_CLASS + CALTECH_TEST_PER_CLASS)
    return (*_take(paths, labels, keep), list(listing.categories))


def omniglot_files(root: Path, split: str) -> FileSplit:
    """Omniglot's background set (964 characters of 30 alphabets; the classes are the
    characters, named alphabet/character) in torchvision's layout:
    ROOT/omniglot-py/images_background/<alphabet>/<character>/*.png.

    Listed here rather than by torchvision's Omniglot class, which insists on the downloaded zip
    with its md5 next to the unpacked folder on every load, and orders alphabets, characters and
    files as os.listdir returns them (which differs between file systems); ours are sorted."""
    folder = root / "omniglot-py" / "images_background"
    characters = [f"{a.name}/{c.name}" for a in sorted(folder.iterdir()) if a.is_dir()
                  for c in sorted(a.iterdir()) if c.is_dir()]
    paths, labels = [], []
    for label, character in enumerate(characters):
        files = sorted(p for p in (folder / character).iterdir() if p.suffix == ".png")
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    labels = np.asarray(labels, dtype=np.int64)  # (N,) int64
    is_test = _rank_in_class(labels) < OMNIGLOT_TEST_DRAWINGS
    return (*_take(paths, labels, is_test if split == "test" else ~is_test), characters)


def decode(paths: Sequence[str], size: int, name: str, fetch: str) -> np.ndarray:
    """The images at `paths` as RGB (grayscale repeated), resized to size x size:
    (N, size, size, 3) uint8. Files are decoded on threads (PIL releases the GIL)."""

    def one(path: str) -> np.ndarray:
        try:
            image = read_rgb(path)
        except UnreadableImage as error:
            raise UserError(f"downstream set {name}: {error.path} cannot be read "
                            f"({error.reason}); delete it and get the set again with {fetch}") \
                from error
        # Bilinear with PIL's antialiasing: what transforms.Resize((size, size)) does.
        return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)

    if not paths:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=max(1, available_cores())) as pool:
        return np.stack(list(pool.map(one, paths)))
