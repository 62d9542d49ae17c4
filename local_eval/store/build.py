"""Building a store: decode every image of an ImageFolder once, in parallel, into images.u8.

The images are split into chunks of CHUNK images; a worker decodes a chunk into the memory map,
flushes it and hashes it (integrity.py), and only then are the chunk's number and hash appended
to `chunks-done`. A killed build therefore resumes where it stopped (a chunk half written is not
listed and is decoded again), provided `building.json` still describes the same source and chunk
size; otherwise it starts over. The manifest, with the hashes, is written last, so a store
without one is never used. A damaged store (integrity.py) is rebuilt when it is the cache's store
of the data, refused with one line elsewhere.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from submission.errors import UserError
from submission.fileio import make_dirs, write_atomic
from submission.paths import open_regular_file

from ..core.worker_lifetime import tie_to_parent
from .integrity import StoreDamaged, check_regular_files, same_folder, seal, sha256
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
    default_store_dir,
    read_json,
    read_store,
)

CHUNK = 256  # images per unit of work (and of resumption)
_worker_images: Optional[np.memmap] = None  # each decoding process's writable memory map


def _open_for_writing(folder: Path, shape: Tuple[int, ...]) -> np.memmap:
    global _worker_images
    _worker_images = np.memmap(folder / IMAGES, dtype=np.uint8, mode="r+", shape=shape)
    return _worker_images


def _start_decoder(creator: int, folder: Path, shape: Tuple[int, ...]) -> None:
    """A decoding worker's initializer: it dies with the build's process (a pool worker waits on
    its task queue forever otherwise), then opens the memory map."""
    tie_to_parent(creator)
    _open_for_writing(folder, shape)


def _decode_chunk(job: Tuple[int, int, Sequence[str]]) -> Tuple[int, str, Optional[str]]:
    """Decode images [start, start + len(paths)) into the memory map; (chunk, sha256 of its
    rows, None) or (chunk, "", one-line reason) for an image that cannot be read or has another
    size."""
    from PIL import Image

    chunk, start, paths = job
    images = _worker_images
    assert images is not None
    height, width = images.shape[1:3]
    for offset, path in enumerate(paths):
        try:  # opened without blocking: a FIFO put in an image's place is refused, never waited on
            with open_regular_file(path, path, "replace it with the image") as handle, \
                    Image.open(handle) as image:
                pixels = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
        except UserError as error:
            return chunk, "", f"--data: {error}"
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, zlib errors
            return chunk, "", (f"--data: cannot read {path} ({error or type(error).__name__}), "
                               f"so the image store cannot hold it; regenerate or delete it "
                               f"(--loader pil skips such a file with a warning)")
        if pixels.shape[:2] != (height, width):
            return chunk, "", (f"--data images differ in size: {path} is {pixels.shape[1]}x"
                               f"{pixels.shape[0]} px, the first is {width}x{height}; a store "
                               f"holds images of one size (use --loader pil for mixed sizes)")
        images[start + offset] = pixels
    images.flush()
    return chunk, sha256(images[start:start + len(paths)]), None


def _check_disk(folder: Path, needed: int) -> None:
    existing = (folder / IMAGES).stat().st_size if (folder / IMAGES).is_file() else 0
    free = shutil.disk_usage(folder).free
    if needed - existing > free:
        raise UserError(f"the store needs {needed / 1e9:.2f} GB and {folder} has "
                        f"{free / 1e9:.2f} GB free; free space, or set LOCAL_EVAL_STORES (or "
                        f"--out) to a larger disk")


def _start(folder: Path, plan: Dict) -> Dict[int, str]:
    """{chunk: sha256} of the chunks already decoded by a build of this same plan; a build of
    anything else is discarded (these are the store's own files: check_store_folder refused
    anything else, read_store anything that is not a regular file)."""
    try:
        building = read_json(folder / BUILDING)
    except StoreDamaged as damage:
        if not damage.rebuildable:  # not a file: not ours to delete
            raise
        building = None  # a damaged record of a build: start over
    if building == plan and (folder / IMAGES).is_file():
        done = folder / CHUNKS_DONE
        lines = [line.split() for line in done.read_text().splitlines()] if done.is_file() else []
        return {int(line[0]): line[1] for line in lines
                if len(line) == 2 and line[0].isdigit() and len(line[1]) == 64}
    _discard(folder)
    np.memmap(folder / IMAGES, dtype=np.uint8, mode="w+", shape=tuple(plan["shape"])).flush()
    write_atomic(folder / BUILDING, _json(plan))
    return {}


def _discard(folder: Path) -> None:
    for name in (MANIFEST, IMAGES, LABELS, CHUNKS_DONE, BUILDING):
        (folder / name).unlink(missing_ok=True)


def _json(value: Dict) -> bytes:
    import json

    return (json.dumps(value, indent=2) + "\n").encode()


def _first_size(path: str) -> Tuple[int, int]:
    from PIL import Image

    try:
        with open_regular_file(path, path, "replace it with the image") as handle, \
                Image.open(handle) as image:
            return image.size
    except UserError:
        raise
    except Exception as error:
        raise UserError(f"cannot read {path} ({error}); regenerate or delete it") from None


def build_store(data: Path, folder: Path, workers: int, progress: bool = True) -> Store:
    """Decode ImageFolder `data` into a store in `folder` (resuming a build of the same data);
    returns the finished store."""
    from tqdm import tqdm

    from ..datasets.common import ClassFolders, check_image_folder
    from ..datasets.fingerprint import dataset_fingerprint

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
            "fingerprint": dataset_fingerprint(data), "shape": shape, "classes": scan.classes,
            "per_class": counts, "chunk_images": CHUNK}
    _check_disk(folder, int(np.prod(shape)))
    done = _start(folder, plan)  # {chunk: sha256}
    chunks = [(c, c * CHUNK, paths[c * CHUNK:(c + 1) * CHUNK])
              for c in range(-(-len(paths) // CHUNK)) if c not in done]
    bar = tqdm(total=len(paths), initial=len(paths) - sum(len(j[2]) for j in chunks),
               desc=f"store {data.name}", unit="image", disable=not progress)
    try:
        with open(folder / CHUNKS_DONE, "a") as record:
            for chunk, digest, problem in _decode(chunks, folder, tuple(shape), workers):
                if problem:
                    raise UserError(problem)
                done[chunk] = digest
                record.write(f"{chunk} {digest}\n")
                record.flush()
                bar.update(min(CHUNK, len(paths) - chunk * CHUNK))
    finally:
        bar.close()
    buffer = __import__("io").BytesIO()
    np.save(buffer, labels)
    write_atomic(folder / LABELS, buffer.getvalue())
    manifest = seal({**plan, "labels_sha256": sha256(buffer.getvalue()),
                     "image_sha256": [done[c] for c in range(-(-len(paths) // CHUNK))]})
    write_atomic(folder / MANIFEST, _json(manifest))  # last: the store is finished
    (folder / BUILDING).unlink(missing_ok=True)
    (folder / CHUNKS_DONE).unlink(missing_ok=True)
    store = read_store(folder, images="none")  # hashed as written
    assert store is not None
    return store


def _decode(jobs, folder: Path, shape: Tuple[int, ...], workers: int):
    """(chunk, problem) per job as they finish: in this process (workers <= 1) or a pool."""
    if workers <= 1 or len(jobs) <= 1:
        _open_for_writing(folder, shape)
        yield from map(_decode_chunk, jobs)
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(workers, initializer=_start_decoder,
                      initargs=(os.getpid(), folder, shape)) as pool:
        yield from pool.imap_unordered(_decode_chunk, jobs)


def open_store(data: Path, folder: Path, workers: int, progress: bool = True,
               log=print, verify: bool = False) -> Store:
    """The up-to-date store of `data` in `folder`: the existing one, checked (integrity.py;
    every image chunk with `verify`), or a new build. A stale one, made before `data` changed,
    or one of an older format is rebuilt; a damaged one is rebuilt in the cache
    (default_store_dir) and refused elsewhere; the store of another folder is refused."""
    check_store_folder(folder)
    if not folder.is_dir():
        make_dirs(folder, "store folder")
    check_regular_files(folder, [LOCK])  # opening a FIFO to lock it would block
    with _locked(folder):  # a second run on the same data waits, then finds the store built
        try:
            store = read_store(folder, images="all" if verify else "sample")
        except StoreDamaged as damage:
            if not damage.rebuildable or not same_folder(folder, default_store_dir(data)):
                raise
            log(f"store {folder} is {damage.what}; rebuilding it")
            _discard(folder)  # nothing of it is trusted, a record of chunks done included
            return build_store(data, folder, workers, progress)
        if store is not None:
            if check_source(store, data):
                return store
            log(f"--data {data} changed since its store {folder} was built; rebuilding it")
        else:
            manifest = read_json(folder / MANIFEST)
            if manifest is not None:  # finished, but of another format
                log(f"store {folder} was made by another version of local_eval (format "
                    f"{manifest.get('format')}, this one reads {FORMAT_VERSION}); rebuilding it")
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
