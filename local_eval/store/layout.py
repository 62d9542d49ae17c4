"""A store folder: `images.u8` (N, H, W, 3) uint8 raw bytes, `labels.npy` (N,) int64 and
`manifest.json` (format version, source folder and fingerprint, shape, class names, per-class
counts, and the content hashes that integrity.py checks on every open). The manifest is written
last, through a temporary name: a folder without one is a build in progress (`building.json` says
of what; `chunks-done` lists the decoded chunks and their hashes).

Stores live in a cache folder keyed by the source folder's resolved path, never inside the
user's data: $LOCAL_EVAL_STORES, else $XDG_CACHE_HOME/local_eval/stores, else
~/.cache/local_eval/stores. One path has one store, so a folder regenerated in place replaces
its stale store instead of leaving one more copy behind.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from submission.errors import UserError
from submission.fileio import loads_json

from .integrity import (
    StoreDamaged,
    check_image_chunks,
    check_labels,
    check_manifest,
    check_regular_files,
    chunks_to_check,
)

FORMAT_VERSION = 2  # 2: content hashes (integrity.py)
MANIFEST = "manifest.json"
IMAGES = "images.u8"
LABELS = "labels.npy"
BUILDING = "building.json"
CHUNKS_DONE = "chunks-done"
LOCK = "lock"  # held while a process checks or builds the store
STORE_FILES = (MANIFEST, IMAGES, LABELS, BUILDING, CHUNKS_DONE, LOCK)
ENV_ROOT = "LOCAL_EVAL_STORES"


def stores_root() -> Path:
    if os.environ.get(ENV_ROOT):
        return Path(os.environ[ENV_ROOT])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "local_eval" / "stores"


def default_store_dir(data: Path) -> Path:
    """The cache folder of the store of ImageFolder `data` (keyed by its resolved path)."""
    key = hashlib.sha256(str(Path(data).resolve()).encode("utf-8", "surrogateescape"))
    return stores_root() / key.hexdigest()[:16]


def foreign_entries(folder: Path) -> List[str]:
    """Names in `folder` that no store holds (temporary names of our own atomic writes aside)."""
    if not folder.is_dir():
        return []
    return sorted(e.name for e in folder.iterdir()
                  if e.name not in STORE_FILES and not e.name.endswith(".tmp"))


def check_store_folder(folder: Path, flag: str = "--out") -> None:
    """Refuse a folder that holds something other than a store (or a file where one goes)."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder} is a file, not a store folder; pass a new folder")
    foreign = foreign_entries(folder)
    if foreign:
        raise UserError(f"{flag} {folder} is not an image store (it holds {foreign[0]}"
                        f"{' and more' if len(foreign) > 1 else ''}); pass a new or empty folder, "
                        f"or a store made by python -m local_eval store")


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    """The JSON object in `path`; None when there is none; StoreDamaged when it is damaged."""
    check_regular_files(path.parent, [path.name])
    if not path.is_file():
        return None
    try:
        value = loads_json(path.read_bytes())
    except (ValueError, OSError) as error:  # json's errors, a repeated key, bad UTF-8
        raise StoreDamaged(path.parent, f"damaged: {path.name} is not valid JSON ({error})") \
            from None
    if not isinstance(value, dict):
        raise StoreDamaged(path.parent, f"damaged: {path.name} is not a JSON object")
    return value


@dataclass(frozen=True)
class Store:
    """A finished store: what its manifest says, and its arrays opened read-only."""

    folder: Path
    manifest: Dict[str, Any]

    @property
    def shape(self) -> Tuple[int, int, int, int]:
        return tuple(self.manifest["shape"])  # type: ignore[return-value]

    @property
    def classes(self) -> List[str]:
        return list(self.manifest["classes"])

    def images(self) -> np.memmap:
        """(N, H, W, 3) uint8, read-only; pages are read from disk only when touched."""
        return np.memmap(self.folder / IMAGES, dtype=np.uint8, mode="r", shape=self.shape)

    def labels(self) -> np.ndarray:
        """(N,) int64."""
        return np.load(self.folder / LABELS)


def read_store(folder: Path, images: str = "sample") -> Optional[Store]:
    """The finished store in `folder`, checked against its manifest (integrity.py): sizes, the
    manifest's own hash, the labels (hash, range, per-class counts) and the image chunks named by
    `images`: "sample" (every open), "all" (store --verify) or "none" (just built). None when the
    folder holds no finished store of this format; StoreDamaged for a damaged or truncated one."""
    check_regular_files(folder, STORE_FILES)
    manifest = read_json(folder / MANIFEST)
    if manifest is None or manifest.get("format") != FORMAT_VERSION:
        return None  # a build in progress, or an older layout (rebuilt like a stale store)
    check_manifest(folder, manifest)
    try:
        shape = tuple(int(v) for v in manifest["shape"])
        count = int(np.prod(shape))
        str(manifest["source"]), str(manifest["fingerprint"])
    except (KeyError, TypeError, ValueError):
        raise StoreDamaged(folder, "damaged: manifest.json lacks fields") from None
    size = (folder / IMAGES).stat().st_size if (folder / IMAGES).is_file() else None
    if size != count:
        raise StoreDamaged(folder, f"truncated or corrupt: {IMAGES} holds "
                                   f"{'no file' if size is None else f'{size:,} bytes'}, its "
                                   f"manifest says {shape} = {count:,}")
    if not (folder / LABELS).is_file():
        raise StoreDamaged(folder, f"truncated: it has no {LABELS}")
    check_labels(folder, manifest, (folder / LABELS).read_bytes())
    store = Store(folder, manifest)
    chunks = chunks_to_check(len(manifest["image_sha256"]), images)
    if chunks:
        check_image_chunks(folder, manifest, store.images(), chunks)
    return store


def check_source(store: Store, data: Path) -> bool:
    """True when `store` was made from `data` as it is now; False when it is stale (same folder,
    other files since); UserError when it is the store of another folder."""
    from ..datasets.fingerprint import dataset_fingerprint

    source = str(Path(data).resolve())
    if store.manifest["source"] != source:
        raise UserError(f"store {store.folder} holds {store.manifest['source']}, not {source}; "
                        f"pass that folder's store, or another --out")
    return store.manifest["fingerprint"] == dataset_fingerprint(data)
