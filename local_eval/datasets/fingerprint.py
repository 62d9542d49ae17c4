"""What a data folder holds, cheaply: the fingerprint that ties a run to the data it trained on.

A fingerprint is the sha256 of every counted file's relative path, size and mtime_ns (symlinks
followed: a link to an image is recorded with its target's size and mtime), in sorted order. It
costs one `stat` per file and reads no image, so it stays cheap for the contest's million files,
where hashing the bytes would read tens of GB; and, unlike a sample of hashes, it sees a change to
any one file: regenerating in place (other seed, `--overwrite`) rewrites every file, and
replacing an image gives it a new mtime. It errs on the safe side: touching a file without
changing it counts as a change (the run is redone). What it cannot see is a file rewritten
with the same size and an mtime set back to the old one (`cp -p` of other bytes).

Which files count:
- `dataset_fingerprint` (an ImageFolder: --data, a compared folder, a store's source, a
  downstream folder pair): exactly the files local_eval.datasets.folders counts, the ones the
  store and the PIL loader read, so a hidden `00000/.extra.png` or a subfolder changes nothing
  that is trained and nothing that is fingerprinted;
- `folder_fingerprint` (a named downstream set's own folder, read by its own reader): every
  visible file under the folder, each folder visited once (a loop of links is not walked twice).

A command fingerprints each folder once, when it starts (`forget()` clears the memo so that a
new command in the same process looks again).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, List, Optional, Set, Tuple

from submission.errors import UserError

from .folders import dataset_files


def _digest(root: str, relative_paths: Iterable[str]) -> str:
    entries = []
    for relative in relative_paths:
        try:
            status = os.stat(os.path.join(root, relative))
        except OSError:  # removed meanwhile, or (folder_fingerprint) a dangling link: holds nothing
            continue
        entries.append((os.path.normpath(relative), status.st_size, status.st_mtime_ns))
    digest = hashlib.sha256()
    for path, size, mtime_ns in sorted(entries):
        digest.update(f"{path}\0{size}\0{mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return f"{len(entries)}:{digest.hexdigest()[:16]}"


def _visible_files(resolved: str) -> List[str]:
    """Every visible file under `resolved`, relative to it; links followed, each folder once."""
    seen: Set[Tuple[int, int]] = set()
    found = []
    for directory, folders, files in os.walk(resolved, followlinks=True):
        status = os.stat(directory)
        if (status.st_dev, status.st_ino) in seen:  # reached again through a link: a loop
            folders[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        folders[:] = [f for f in folders if not f.startswith(".")]
        relative = os.path.relpath(directory, resolved)
        found += [os.path.join(relative, name) for name in files if not name.startswith(".")]
    return found


def _counted_files(resolved: str, splits: Tuple[str, ...]) -> List[str]:
    """The files that count, relative to `resolved`: every visible one (no splits), or the images
    of ImageFolder `resolved/<split>` for each split (see the module doc)."""
    if not splits:
        return _visible_files(resolved)
    return [os.path.join(split, path) for split in splits if os.path.isdir(os.path.join(resolved, split))
            for path in dataset_files(Path(resolved) / split).relative_paths()]  # none yet: nothing


@functools.lru_cache(maxsize=None)
def _fingerprint(resolved: str, splits: Tuple[str, ...]) -> str:
    return _digest(resolved, _counted_files(resolved, splits))


def dataset_fingerprint(root: Optional[Path], splits: Tuple[str, ...] = ("",)) -> Optional[str]:
    """`"<files>:<16 hex digits>"` of the images of ImageFolder `root` (of `root/<split>` for each
    split: ("train", "val") for a downstream folder pair); None for no folder."""
    if root is None:
        return None
    return _fingerprint(str(Path(root).resolve()), splits)


def folder_fingerprint(folder: Optional[Path]) -> Optional[str]:
    """`"<files>:<16 hex digits>"` of every visible file under the folder; None for no folder."""
    if folder is None:
        return None
    return _fingerprint(str(Path(folder).resolve()), ())


def forget() -> None:
    """Fingerprint every folder afresh (called when a command starts)."""
    _fingerprint.cache_clear()
    _content_sha256.cache_clear()


# --- what the files hold, wherever they are: for results made on another machine ---------------

HASH_CACHE_ENV = "LOCAL_EVAL_HASHES"


def hashes_root() -> Path:
    """Where the per-file sha256 cache lives: $LOCAL_EVAL_HASHES, else
    $XDG_CACHE_HOME/local_eval/hashes, else ~/.cache/local_eval/hashes (never in the data)."""
    if os.environ.get(HASH_CACHE_ENV):
        return Path(os.environ[HASH_CACHE_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "local_eval" / "hashes"


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _content_sha256(resolved: str, splits: Tuple[str, ...], fingerprint: str) -> str:
    """sha256 over (relative path, sha256 of the bytes) of every file: what the folder holds,
    the same for a copy anywhere with other mtimes. Each file is hashed once per (path, size,
    mtime_ns): the hashes are kept in hashes_root()/<sha256 of the folder's path>.json."""
    from submission.fileio import make_dirs, write_atomic

    cache_file = hashes_root() / (hashlib.sha256(resolved.encode("utf-8", "surrogateescape"))
                                  .hexdigest()[:16] + ".json")
    try:
        known = json.loads(cache_file.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or damaged: hash afresh
        known = {}
    files, digest, fresh = {}, hashlib.sha256(), False
    for path in sorted(os.path.normpath(p) for p in _counted_files(resolved, splits)):
        try:
            status = os.stat(os.path.join(resolved, path))
        except OSError:  # removed meanwhile, or a dangling link: holds nothing (as in _digest)
            continue
        size, mtime_ns = status.st_size, status.st_mtime_ns
        entry = known.get(path)
        if not (isinstance(entry, list) and entry[:2] == [size, mtime_ns]):
            entry, fresh = [size, mtime_ns, _file_sha256(os.path.join(resolved, path))], True
        files[path] = entry
        digest.update(f"{path}\0{entry[2]}\n".encode("utf-8", "surrogateescape"))
    if fresh or len(files) != len(known):
        try:
            make_dirs(cache_file.parent, "the hash cache")
            write_atomic(cache_file, json.dumps({"folder": resolved, "files": files}).encode())
        except (OSError, UserError):  # a read-only cache only costs hashing again next time
            pass
    return f"sha256:{len(files)}:{digest.hexdigest()}"


def content_sha256(folder: Optional[Path], splits: Tuple[str, ...] = ()) -> Optional[str]:
    """`"sha256:<files>:<64 hex digits>"`: what the files that count hold (the same files as the
    fingerprint's: every visible one, or with `splits` the images of each split's ImageFolder),
    independent of where the folder is and of its mtimes (see _content_sha256); None for no
    folder or a missing one."""
    if folder is None or not Path(folder).is_dir():
        return None
    resolved = str(Path(folder).resolve())
    return _content_sha256(resolved, splits, _fingerprint(resolved, splits))
