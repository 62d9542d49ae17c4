"""MNIST-style IDX files (torchvision's raw MNIST and Fashion-MNIST), checked without decoding
an image: the header (magic, dimension count), the size it implies, that the images and labels
files are not swapped, that they hold as many items, and that every label is a class."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Tuple

import numpy as np

from submission.errors import UserError

# Their headers: 0, 0, 8 (unsigned bytes), the number of dimensions: 3 for images (N, rows,
# cols), 1 for labels (N,). Both sets have 10 classes, labels 0..9.
IDX_NDIM = {"images": 3, "labels": 1}
MNIST_CLASSES = 10


def idx_dims(path: Path, what: str, name: str, fetch: str, layout: str) -> Tuple[int, ...]:
    """An IDX file's dimensions, after checking that it holds `what` (images or labels) and that
    its header fits its size (UserError naming the file otherwise: missing, still
    gzip-compressed, swapped with its partner, truncated or corrupt). `name` starts each
    message, `fetch` says how to get the file again, `layout` where it belongs."""
    again = f"delete it and get it again with {fetch}"
    if not path.is_file():
        raise UserError(f"{name}: {path} is missing (expected torchvision's layout {layout}); "
                        f"get it with {fetch}")
    with open(path, "rb") as handle:
        head = handle.read(4)  # 0, 0, 8 (unsigned bytes), number of dimensions
        ndim = head[3] if len(head) == 4 else 0
        dims_bytes = handle.read(4 * ndim)  # each dimension, big-endian uint32
    if head[:2] == b"\x1f\x8b":
        raise UserError(f"{name}: {path} is gzip-compressed; torchvision reads "
                        f"it unpacked (gunzip it, or get it with {fetch})")
    size = path.stat().st_size
    if head[:3] != b"\x00\x00\x08" or ndim == 0 or len(dims_bytes) != 4 * ndim:
        raise UserError(f"{name}: {path} is not an IDX file of unsigned bytes "
                        f"(corrupt); {again}")
    dims = struct.unpack(f">{ndim}I", dims_bytes)
    if ndim != IDX_NDIM[what]:
        other = next((k for k, v in IDX_NDIM.items() if v == ndim), None)
        swapped = (f" (it holds {other}: the images and labels files look swapped)"
                   if other else "")
        raise UserError(f"{name}: {path} has {ndim} dimension(s) "
                        f"({'x'.join(map(str, dims))}), but an IDX file of {what} has {IDX_NDIM[what]}"
                        f"{swapped}; {again}")
    if min(dims) < 1:
        raise UserError(f"{name}: {path} has an empty dimension "
                        f"({'x'.join(map(str, dims))}); {again}")
    expected = 4 + len(dims_bytes) + int(np.prod(dims, dtype=np.int64))
    if size != expected:
        raise UserError(f"{name}: {path} holds {size} bytes, its header says "
                        f"{expected} (truncated or corrupt); {again}")
    return dims


def check_label_range(path: Path, name: str, fetch: str) -> None:
    """Every label names one of the set's classes (a corrupt byte would train and score a class
    that does not exist)."""
    labels = np.fromfile(path, dtype=np.uint8, offset=8)  # after the 1-dimension header
    outside = labels >= MNIST_CLASSES
    if outside.any():
        raise UserError(f"{name}: {path} holds label {int(labels[outside][0])} "
                        f"({int(outside.sum())} of {len(labels)} labels lie outside 0.."
                        f"{MNIST_CLASSES - 1} of its {MNIST_CLASSES} classes: corrupt); delete "
                        f"it and get it again with {fetch}")


def check_idx_pair(images: Path, labels: Path, name: str, fetch: str, layout: str) -> None:
    count = idx_dims(images, "images", name, fetch, layout)[0]
    labelled = idx_dims(labels, "labels", name, fetch, layout)[0]
    if count != labelled:
        raise UserError(f"{name}: {images} holds {count} images but {labels} {labelled} labels; "
                        f"delete both and get them again with {fetch}")
    check_label_range(labels, name, fetch)
