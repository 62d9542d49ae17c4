"""Tiny fakes of the kit's named downstream sets in torchvision's layouts (no network, no real
data): MNIST / Fashion-MNIST IDX files, Caltech-101 / -256 JPEG folders, Omniglot PNG folders."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict

import numpy as np
from PIL import Image

IDX_NAMES = {("train", "images"): "train-images-idx3-ubyte",
             ("train", "labels"): "train-labels-idx1-ubyte",
             ("test", "images"): "t10k-images-idx3-ubyte",
             ("test", "labels"): "t10k-labels-idx1-ubyte"}


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes: 0, 0, 8, ndim, the dimensions (big-endian), the data."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def make_mnist(root: Path, folder: str = "MNIST", classes: int = 4, train_per_class: int = 8,
               test_per_class: int = 4, seed: int = 0) -> Path:
    """ROOT/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (folder MNIST or
    FashionMNIST): 28 x 28 grey images, class c lights quadrant c % 4; labels shuffled."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(classes), per_class)).astype(np.uint8)
        images = rng.integers(0, 50, size=(len(labels), 28, 28), dtype=np.uint8)  # (N, 28, 28)
        for label in range(classes):
            row, col = divmod(label % 4, 2)
            images[labels == label, row * 14:(row + 1) * 14, col * 14:(col + 1) * 14] = 230
        write_idx(raw / IDX_NAMES[(split, "images")], images)
        write_idx(raw / IDX_NAMES[(split, "labels")], labels)
    return root


def _jpeg(path: Path, value: int, size: tuple, grey: bool) -> None:
    """A flat image of `value` (JPEG keeps a flat colour within a grey level or two)."""
    mode, colour = ("L", value) if grey else ("RGB", (value, 255 - value, 128))
    Image.new(mode, size, colour).save(path, quality=95)


def make_caltech(root: Path, which: str, counts: Dict[str, int]) -> Path:
    """ROOT/caltech101/101_ObjectCategories/<class>/image_0001.jpg ... (`which` caltech101) or
    ROOT/caltech256/256_ObjectCategories/<NNN.class>/NNN_0001.jpg ... (caltech256); the image
    numbered i is flat with value 4 * i and a size that varies with i; every 3rd is greyscale."""
    top = root / which / ("101_ObjectCategories" if which == "caltech101" else
                          "256_ObjectCategories")
    for name, count in counts.items():
        folder = top / name
        folder.mkdir(parents=True)
        for i in range(1, count + 1):
            file = f"image_{i:04d}.jpg" if which == "caltech101" else f"{name[:3]}_{i:04d}.jpg"
            _jpeg(folder / file, 4 * i, (40 + i, 30 + 2 * i), grey=i % 3 == 0)
    return root


def make_omniglot(root: Path, alphabets: Dict[str, int], drawers: int = 20) -> Path:
    """ROOT/omniglot-py/images_background/<alphabet>/character<k>/<id>_<drawer>.png, 105 x 105
    binary images; drawer d's image has a black square of side 3 * d."""
    top = root / "omniglot-py" / "images_background"
    number = 0
    for alphabet, characters in alphabets.items():
        for k in range(1, characters + 1):
            number += 1
            folder = top / alphabet / f"character{k:02d}"
            folder.mkdir(parents=True)
            for drawer in range(1, drawers + 1):
                image = np.full((105, 105), 255, dtype=np.uint8)
                image[:3 * drawer, :3 * drawer] = 0
                Image.fromarray(image).convert("1").save(folder / f"{number:04d}_{drawer:02d}.png")
    return root
