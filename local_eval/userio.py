"""What the command lines share: one-line argparse errors and the output-folder check.

Kept free of torch so that `python -m local_eval.noise` starts fast.
"""
from __future__ import annotations

import argparse
import os
import typing
from pathlib import Path

from submission.errors import UserError


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (exit code 2)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _can_write(folder: Path) -> bool:
    """Whether this process may create entries in `folder` (a seam for the tests)."""
    return os.access(folder, os.W_OK | os.X_OK)


def _why_not_writable(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "is on a read-only file system"
    except OSError:
        pass
    return "is not writable (permission denied)"


def check_output_folder(path: Path, flag: str) -> None:
    """Refuse an output folder that could not be created or written, before anything is.

    A path under a regular file, or in a read-only or foreign folder, used to fail deep in the
    run (mkdir, or the first checkpoint) with a traceback.
    """
    path = Path(path)
    if os.path.lexists(path):
        if not path.is_dir():
            raise UserError(f"{flag} {path} is a file, not a folder; pass a folder path")
        target = path
    else:
        # The nearest thing that exists is where the missing folders would be created.
        target = path.parent
        while not os.path.lexists(target) and target != target.parent:
            target = target.parent
        if not target.is_dir():
            raise UserError(f"{flag} {path} cannot be created: {target} is a file, not a "
                            f"folder; pass a path under a folder")
    if not _can_write(target):
        raise UserError(f"{flag} {path} cannot be written: {target} {_why_not_writable(target)}; "
                        f"pass a folder you can write to")


def make_output_folder(path: Path, flag: str) -> None:
    """mkdir -p, as a one-line UserError when the file system refuses (after the checks)."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {flag} {path}: {error.strerror or error}; pass a "
                        f"folder you can write to") from None
