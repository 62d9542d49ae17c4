"""What a store's manifest records of its content, and the checks that a store is what it says.

A store is trusted by content, not by size: a `labels.npy` of zeros or an `images.u8` zeroed in
place have the right sizes. So the build records, in the manifest (format 2):

- `labels_sha256`: sha256 of the bytes of `labels.npy`;
- `chunk_images` and `image_sha256`: sha256 of each chunk of `chunk_images` rows of `images.u8`
  (the build's unit of work, 256 images: 0.8 MB at 32 px, 38.5 MB at 224 px, 113 MB at 384 px),
  computed by the decoding worker right after it writes the chunk, so hashing needs no second
  pass over the file, runs in parallel with decoding and resumes with the chunk; the manifest
  holds N / 256 hashes (3,907 for the contest's million images, about 260 KB);
- `manifest_sha256`: sha256 of every other field, so an edited `classes` list, per-class count or
  recorded hash is seen.

Every open checks the manifest's own hash, the labels' hash, that the labels lie in
0..classes-1 and match the per-class counts, and the hashes of a sample of image chunks: the
first, the last (a file zeroed, replaced or swapped for another of the same shape differs there)
and two drawn at random on each open (so repeated opens cover the rest). `store --verify`
hashes every chunk. sha256 rather than blake2b: with the SHA instructions of current x86 and ARM
CPUs it is 2-3x faster (1.3 vs 0.5 GB/s measured on the build machine's AMD EPYC).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from submission.errors import UserError

SAMPLED_CHUNKS = 4  # image chunks hashed on every open: the first, the last, two at random


class StoreDamaged(UserError):
    """A store whose files disagree with its manifest: rebuilt when it is the cache's store of
    the data, refused elsewhere (and always when a file is in the way that we would not delete)."""

    def __init__(self, folder: Path, what: str, rebuildable: bool = True) -> None:
        super().__init__(f"store {folder} is {what}; remove {folder} to rebuild it")
        self.folder, self.what, self.rebuildable = folder, what, rebuildable


def sha256(data) -> str:
    """Hex sha256 of bytes or of a C-contiguous array's memory (hashlib releases the GIL)."""
    return hashlib.sha256(memoryview(data).cast("B")).hexdigest()


def manifest_digest(manifest: Dict[str, Any]) -> str:
    """sha256 of the manifest's fields but its own hash, in a canonical JSON form (so the file's
    layout, indentation or key order, does not count; its values do)."""
    fields = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def seal(manifest: Dict[str, Any]) -> Dict[str, Any]:
    """The manifest with its own hash added."""
    return {**manifest, "manifest_sha256": manifest_digest(manifest)}


def check_regular_files(folder: Path, names) -> None:
    """Refuse a store file that exists but is not a regular file (a folder, a FIFO, a dangling
    link): reading it would fail or block, and a rebuild would have to delete what is there."""
    for name in names:
        path = folder / name
        if path.is_file() or not (path.exists() or path.is_symlink()):
            continue
        try:
            mode = path.stat().st_mode
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "not a regular file")
        except OSError:
            kind = "a dangling symlink"
        raise StoreDamaged(folder, f"damaged: {name} is {kind}", rebuildable=False)


def check_manifest(folder: Path, manifest: Dict[str, Any]) -> None:
    """The manifest's own hash, and its fields consistent with each other."""
    if manifest.get("manifest_sha256") != manifest_digest(manifest):
        raise StoreDamaged(folder, "damaged: manifest.json differs from what was recorded at "
                                   "build time (its manifest_sha256 does not match; edited?)")
    try:
        count, chunk = int(manifest["shape"][0]), int(manifest["chunk_images"])
        classes, per_class = list(manifest["classes"]), list(manifest["per_class"])
        hashes = list(manifest["image_sha256"])
        str(manifest["labels_sha256"])
    except (KeyError, TypeError, ValueError, IndexError):
        raise StoreDamaged(folder, "damaged: manifest.json lacks fields") from None
    if chunk < 1 or len(hashes) != -(-count // chunk) or len(per_class) != len(classes) \
            or sum(per_class) != count:
        raise StoreDamaged(folder, "damaged: manifest.json's counts disagree with each other")


def check_labels(folder: Path, manifest: Dict[str, Any], raw: bytes) -> np.ndarray:
    """The labels in `raw` (the bytes of labels.npy) as recorded: their hash, shape, range
    0..classes-1 and per-class counts. Returns them, (N,) int64."""
    name = "labels.npy"
    if sha256(raw) != manifest["labels_sha256"]:
        raise StoreDamaged(folder, f"damaged: {name} differs from what was recorded at build "
                                   f"time (its sha256 does not match)")
    try:
        labels = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError) as error:
        raise StoreDamaged(folder, f"damaged: {name} cannot be read ({error})") from None
    count, classes = int(manifest["shape"][0]), len(manifest["classes"])
    if labels.shape != (count,) or labels.dtype != np.int64:
        raise StoreDamaged(folder, f"damaged: {name} holds {labels.shape} {labels.dtype}, not "
                                   f"({count},) int64")
    if count and (labels.min() < 0 or labels.max() >= classes):
        raise StoreDamaged(folder, f"damaged: {name} holds labels {labels.min()}..{labels.max()}"
                                   f", outside 0..{classes - 1} for its {classes} classes")
    counts = np.bincount(labels, minlength=classes).tolist()
    if counts != list(manifest["per_class"]):
        first = next(i for i, (a, b) in enumerate(zip(counts, manifest["per_class"])) if a != b)
        raise StoreDamaged(folder, f"damaged: {name} holds {counts[first]} images of class "
                                   f"{first}, its manifest says {manifest['per_class'][first]}")
    return labels


def chunks_to_check(chunks: int, which: str) -> List[int]:
    """Image chunks to hash: "all", "sample" (first, last, two at random) or "none"."""
    if which == "all" or (which == "sample" and chunks <= SAMPLED_CHUNKS):
        return list(range(chunks))
    if which == "none" or chunks == 0:
        return []
    middle = np.random.default_rng().choice(np.arange(1, chunks - 1), SAMPLED_CHUNKS - 2,
                                            replace=False)
    return sorted({0, chunks - 1, *middle.tolist()})


def check_image_chunks(folder: Path, manifest: Dict[str, Any], images: np.ndarray,
                       chunks: List[int]) -> None:
    """Each chunk in `chunks` of `images` ((N, H, W, 3) memory map) hashes as recorded."""
    size = int(manifest["chunk_images"])
    for chunk in chunks:
        rows = images[chunk * size:(chunk + 1) * size]
        if sha256(rows) != manifest["image_sha256"][chunk]:
            last = chunk * size + len(rows) - 1
            raise StoreDamaged(folder, f"damaged: images {chunk * size}..{last} of images.u8 "
                                       f"(chunk {chunk} of {len(manifest['image_sha256'])}) "
                                       f"differ from what was recorded at build time")


def same_folder(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
