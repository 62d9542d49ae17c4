"""Output paths checked before any slow work, and created with one-line errors.

`pack OUT.zip`, `rehearse ZIP OUTDIR` and `preview --out PNG` call `check_writable_target` first, so a
path under a regular file, a name over the file system's limit, an unwritable folder or a read-only
disk costs the user one line (`error: ...`, exit 2) instead of a traceback, and nothing is built first.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Tuple, Union

from .errors import UserError
from .fileio import NAME_MAX

PathLike = Union[str, "os.PathLike[str]"]


def check_writable_target(path: PathLike, what: str, is_dir: bool = False) -> None:
    """Raise `UserError` unless `path` can be created (or replaced) by this user.

    `path` is a file to write, or with `is_dir` a folder to write into; `what` names it in the message
    (e.g. "OUTDIR"). Checked: no name over NAME_MAX bytes, no regular file where a folder must be, and
    the nearest existing folder on the way is writable and not on a read-only file system.
    """
    path = Path(path)
    absolute = Path(os.path.abspath(path))
    for part in absolute.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise UserError(f"{what} {_short(path)}: the name {part[:24]}... is {size} bytes, over the {NAME_MAX}-byte "
                            "limit of most file systems; choose a shorter name")
    start = absolute if is_dir else absolute.parent
    folder, mode = _nearest_existing(start, path, what)
    if not stat.S_ISDIR(mode):
        if folder == absolute:
            raise UserError(f"{what} {path} is a file; give a directory path")
        raise UserError(f"{folder} is a file, not a folder, so {what} {path} cannot be created inside it; "
                        "choose a path in a folder")
    if _read_only(folder):
        raise UserError(f"{what} {path} is on a read-only file system ({folder}); choose a path on a writable disk")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{folder} is not writable by this user, so {what} {path} cannot be written there; "
                        "choose a folder you can write to (or fix its permissions)")


def make_dirs(folder: PathLike, what: str) -> None:
    """`mkdir -p folder` with a one-line `UserError` (the checks above can race with the disk)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} folder {folder}: {_explain(exc)}") from None


def _nearest_existing(start: Path, path: Path, what: str) -> Tuple[Path, int]:
    """(the first of `start` and its parents that exists, its st_mode)."""
    for folder in (start, *start.parents):
        try:
            return folder, os.stat(folder).st_mode
        except (FileNotFoundError, NotADirectoryError):  # not there yet, or under a file: look higher
            continue
        except OSError as exc:
            raise UserError(f"cannot use {what} {_short(path)}: {_explain(exc)}") from None
    raise UserError(f"cannot use {what} {path}: no folder of it exists")  # unreachable: the root exists


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows): the write itself will say
        return False


def _explain(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "read-only file system; choose a path on a writable disk"
    if exc.errno == errno.ENOSPC:
        return "disk full; free some space or choose another disk"
    if exc.errno == errno.ENAMETOOLONG:
        return f"a name in the path is too long (most file systems allow {NAME_MAX} bytes); choose a shorter name"
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return "a file is in the way where a folder must be; choose another path"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; choose a folder you can write to"
    return f"{exc.strerror}; choose another path"


def _short(path: Path) -> str:
    """`path` for a message: an over-long one would drown the line."""
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]}"
