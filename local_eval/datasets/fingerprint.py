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
import os
from pathlib import Path
from typing import Iterable, List, Optional, Set, Tuple

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


@functools.lru_cache(maxsize=None)
def _fingerprint(resolved: str, splits: Tuple[str, ...]) -> str:
    if not splits:
        return _digest(resolved, _visible_files(resolved))
    paths = [os.path.join(split, path) for split in splits if os.path.isdir(os.path.join(resolved, split))
             for path in dataset_files(Path(resolved) / split).relative_paths()]  # none yet: nothing
    return _digest(resolved, paths)


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
