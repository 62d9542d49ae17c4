"""Building a store: decode every image of an ImageFolder once, in parallel, into images.u8.

The images are split into chunks of CHUNK images; a worker decodes a chunk into the memory map,
flushes it, and only then is the chunk's number appended to `chunks-done`. A killed build
therefore resumes where it stopped (a chunk half written is not listed and is decoded again),
provided `building.json` still describes the same source; otherwise it starts over. The manifest
is written last, so a store without one is never used.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from submission.errors import UserError
from submission.fileio import make_dirs, write_atomic

from .layout import (
    BUILDING,
    CHUNKS_DONE,
    FORMAT_VERSION,
    IMAGES,
    LABELS,
    LOCK,
    MANIFEST,
    Store,
    check_source,
    check_store_folder,
    read_json,
    read_store,
)

CHUNK = 256  # images per unit of work (and of resumption)
_worker_images: Optional[np.memmap] = None  # each decoding process's writable memory map


def _open_for_writing(folder: Path, shape: Tuple[int, ...]) -> np.memmap:
    global _worker_images
    _worker_images = np.memmap(folder / IMAGES, dtype=np.uint8, mode="r+", shape=shape)
    return _worker_images


def _decode_chunk(job: Tuple[int, int, Sequence[str]]) -> Tuple[int, Optional[str]]:
    """Decode images [start, start + len(paths)) into the memory map; (chunk, None) or
    (chunk, one-line reason) for an image that cannot be read or has another size."""
    from PIL import Image

    chunk, start, paths = job
    images = _worker_images
    assert images is not None
    height, width = images.shape[1:3]
    for offset, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, zlib errors
            return chunk, (f"--data: cannot read {path} ({error or type(error).__name__}), so "
                           f"the image store cannot hold it; regenerate or delete it (--loader "
                           f"pil skips such a file with a warning)")
        if pixels.shape[:2] != (height, width):
            return chunk, (f"--data images differ in size: {path} is {pixels.shape[1]}x"
                           f"{pixels.shape[0]} px, the first is {width}x{height}; a store holds "
                           f"images of one size (use --loader pil for mixed sizes)")
        images[start + offset] = pixels
    images.flush()
    return chunk, None


def _check_disk(folder: Path, needed: int) -> None:
    existing = (folder / IMAGES).stat().st_size if (folder / IMAGES).is_file() else 0
    free = shutil.disk_usage(folder).free
    if needed - existing > free:
        raise UserError(f"the store needs {needed / 1e9:.2f} GB and {folder} has "
                        f"{free / 1e9:.2f} GB free; free space, or set LOCAL_EVAL_STORES (or "
                        f"--out) to a larger disk")


def _start(folder: Path, plan: Dict) -> List[int]:
    """Chunks already decoded by a build of this same plan; a build of anything else is
    discarded (these are the store's own files: check_store_folder refused anything else)."""
    if read_json(folder / BUILDING) == plan and (folder / IMAGES).is_file():
        done = folder / CHUNKS_DONE
        lines = done.read_text().split() if done.is_file() else []
        return sorted({int(v) for v in lines if v.isdigit()})
    for name in (MANIFEST, IMAGES, LABELS, CHUNKS_DONE, BUILDING):
        (folder / name).unlink(missing_ok=True)
    np.memmap(folder / IMAGES, dtype=np.uint8, mode="w+", shape=tuple(plan["shape"])).flush()
    write_atomic(folder / BUILDING, _json(plan))
    return []


def _json(value: Dict) -> bytes:
    import json

    return (json.dumps(value, indent=2) + "\n").encode()


def _first_size(path: str) -> Tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception as error:
        raise UserError(f"cannot read {path} ({error}); regenerate or delete it") from None


def build_store(data: Path, folder: Path, workers: int, progress: bool = True) -> Store:
    """Decode ImageFolder `data` into a store in `folder` (resuming a build of the same data);
    returns the finished store."""
    from tqdm import tqdm

    from ..datasets.common import ClassFolders, check_image_folder
    from ..datasets.fingerprint import folder_fingerprint

    check_image_folder(data, "--data", "--data")
    check_store_folder(folder)
    make_dirs(folder, "store folder")
    scan = ClassFolders(str(data), allow_empty=True)  # lists files; decodes nothing
    paths = [path for path, _ in scan.samples]
    labels = np.asarray(scan.targets, dtype=np.int64)  # (N,) int64
    width, height = _first_size(paths[0])
    shape = [len(paths), height, width, 3]
    counts = np.bincount(labels, minlength=len(scan.classes)).tolist()
    plan = {"format": FORMAT_VERSION, "source": str(Path(data).resolve()),
            "fingerprint": folder_fingerprint(data), "shape": shape, "classes": scan.classes,
            "per_class": counts}
    _check_disk(folder, int(np.prod(shape)))
    done = set(_start(folder, plan))
    chunks = [(c, c * CHUNK, paths[c * CHUNK:(c + 1) * CHUNK])
              for c in range(-(-len(paths) // CHUNK)) if c not in done]
    bar = tqdm(total=len(paths), initial=len(paths) - sum(len(j[2]) for j in chunks),
               desc=f"store {data.name}", unit="image", disable=not progress)
    try:
        with open(folder / CHUNKS_DONE, "a") as record:
            for chunk, problem in _decode(chunks, folder, tuple(shape), workers):
                if problem:
                    raise UserError(problem)
                record.write(f"{chunk}\n")
                record.flush()
                bar.update(min(CHUNK, len(paths) - chunk * CHUNK))
    finally:
        bar.close()
    buffer = __import__("io").BytesIO()
    np.save(buffer, labels)
    write_atomic(folder / LABELS, buffer.getvalue())
    write_atomic(folder / MANIFEST, _json(plan))  # last: the store is finished
    (folder / BUILDING).unlink(missing_ok=True)
    (folder / CHUNKS_DONE).unlink(missing_ok=True)
    store = read_store(folder)
    assert store is not None
    return store


def _decode(jobs, folder: Path, shape: Tuple[int, ...], workers: int):
    """(chunk, problem) per job as they finish: in this process (workers <= 1) or a pool."""
    if workers <= 1 or len(jobs) <= 1:
        _open_for_writing(folder, shape)
        yield from map(_decode_chunk, jobs)
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(workers, initializer=_open_for_writing, initargs=(folder, shape)) as pool:
        yield from pool.imap_unordered(_decode_chunk, jobs)


def open_store(data: Path, folder: Path, workers: int, progress: bool = True,
               log=print) -> Store:
    """The up-to-date store of `data` in `folder`: the existing one, or a new build (a stale one,
    made before `data` changed, is rebuilt; the store of another folder is refused)."""
    check_store_folder(folder)
    if not folder.is_dir():
        make_dirs(folder, "store folder")
    with _locked(folder):  # a second run on the same data waits, then finds the store built
        store = read_store(folder)
        if store is not None:
            if check_source(store, data):
                return store
            log(f"--data {data} changed since its store {folder} was built; rebuilding it")
        return build_store(data, folder, workers, progress)


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive lock on the store folder (POSIX; elsewhere nothing)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(folder / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
