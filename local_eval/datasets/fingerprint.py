"""What a data folder holds, cheaply: the fingerprint that ties a run to the data it trained on.

The fingerprint is the sha256 of every non-hidden file's relative path, size and mtime_ns under
the folder (symlinks followed, as torchvision's ImageFolder does), in sorted order. It costs one
`stat` per file and reads no image, so it stays cheap for the contest's million files, where
hashing the bytes would read tens of GB; and, unlike a sample of hashes, it sees a change to
any one file: regenerating in place (other seed, `--overwrite`) rewrites every file, and
replacing an image gives it a new mtime. It errs on the safe side: touching a file without
changing it counts as a change (the run is redone). What it cannot see is a file rewritten
with the same size and an mtime set back to the old one (`cp -p` of other bytes).

Hidden files and folders (`.generate-state/`, `.DS_Store`) are skipped: the loader never
reads them. A command fingerprints each folder once, when it starts (`forget()` clears the
memo so that a new command in the same process looks again).
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Optional


@functools.lru_cache(maxsize=None)
def _fingerprint(resolved: str) -> str:
    digest = hashlib.sha256()
    entries = []
    for directory, folders, files in os.walk(resolved, followlinks=True):
        folders[:] = [f for f in folders if not f.startswith(".")]
        relative = os.path.relpath(directory, resolved)
        for name in files:
            if name.startswith("."):
                continue
            try:
                status = os.stat(os.path.join(directory, name))
            except OSError:  # a dangling link or a file removed meanwhile: it holds nothing
                continue
            entries.append((os.path.normpath(os.path.join(relative, name)), status.st_size,
                            status.st_mtime_ns))
    for path, size, mtime_ns in sorted(entries):
        digest.update(f"{path}\0{size}\0{mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return f"{len(entries)}:{digest.hexdigest()[:16]}"


def folder_fingerprint(folder: Optional[Path]) -> Optional[str]:
    """`"<files>:<16 hex digits>"` for the folder (see the module doc); None for no folder."""
    if folder is None:
        return None
    return _fingerprint(str(Path(folder).resolve()))


def forget() -> None:
    """Fingerprint every folder afresh (called when a command starts)."""
    _fingerprint.cache_clear()
