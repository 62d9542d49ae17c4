"""Writing files so that a kill never leaves a truncated one, with clear errors when the disk says no."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .errors import UserError

TMP_SUFFIX = ".tmp"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a hidden temporary name beside `path`, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise UserError(f"disk full while writing {path}; free some space (or pick another output "
                            "directory) and rerun the same command to resume") from None
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
