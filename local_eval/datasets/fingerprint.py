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
import json
import os
from pathlib import Path
from typing import List, Optional, Tuple

from submission.errors import UserError


def _files(resolved: str) -> List[Tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every non-hidden file under `resolved`, sorted."""
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
    return sorted(entries)


@functools.lru_cache(maxsize=None)
def _fingerprint(resolved: str) -> str:
    digest = hashlib.sha256()
    entries = _files(resolved)
    for path, size, mtime_ns in entries:
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
def _content_sha256(resolved: str, fingerprint: str) -> str:
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
    for path, size, mtime_ns in _files(resolved):
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


def content_sha256(folder: Optional[Path]) -> Optional[str]:
    """`"sha256:<files>:<64 hex digits>"`: what the folder's files hold, independent of where the
    folder is and of its mtimes (see _content_sha256); None for no folder or a missing one."""
    if folder is None or not Path(folder).is_dir():
        return None
    resolved = str(Path(folder).resolve())
    return _content_sha256(resolved, _fingerprint(resolved))
