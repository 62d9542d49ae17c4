"""Writing files so that a kill never leaves a truncated one, with clear errors when the disk says no."""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

from .errors import UserError

TMP_SUFFIX = ".tmp"
NAME_MAX = 255  # bytes per file or folder name on ext4, xfs, btrfs, tmpfs, APFS and NTFS


def _tmp_name(name: str) -> str:
    """`.NAME.tmp`; shortened, with a hash of NAME, when the extra 5 bytes would push a legal NAME
    over the file system's name-length limit."""
    tmp = f".{name}{TMP_SUFFIX}"
    if len(os.fsencode(tmp)) <= NAME_MAX:
        return tmp
    # 50 characters are at most 200 bytes in UTF-8: the result stays well under NAME_MAX
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:12]
    return f".{name[:50]}~{digest}{TMP_SUFFIX}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a hidden temporary name beside `path`, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(_tmp_name(path.name))
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:  # best effort: on a read-only or vanished disk this fails too, and must not hide `exc`
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if exc.errno == errno.ENOSPC:
            raise UserError(f"disk full while writing {path}; free some space (or pick another output "
                            "directory) and rerun the same command to resume") from None
        if exc.errno == errno.EROFS:
            raise UserError(f"cannot write {path}: read-only file system; choose an output path on a "
                            "writable disk") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise UserError(f"cannot write {path}: file name too long (most file systems allow {NAME_MAX} "
                            "bytes per file or folder name); choose a shorter name") from None
        raise UserError(f"cannot write {path}: {exc.strerror}; check the output directory's permissions") from None


def check_overwritable(path: Path) -> None:
    """Refuse to --overwrite the folders no one means to lose: the root, home, or one holding the cwd."""
    path = Path(path).expanduser().absolute()
    if path == Path(path.anchor) or path == Path.home() or Path.cwd().is_relative_to(path):
        raise UserError(f"refusing to --overwrite {path}: it is the filesystem root, your home or contains "
                        "the current directory; choose a dedicated output folder")


def remove_tree_for_overwrite(path: Path) -> None:
    """Delete a folder the user asked to --overwrite (after `check_overwritable`)."""
    check_overwritable(path)
    shutil.rmtree(path)
