"""One process at a time in a run folder: `local_eval run` refuses a folder another process is
training in, and `compare` leaves such a run to its owner and reads its result when it is done,
so two `compare` commands on one OUT share the work instead of training a run twice.

The lock is `flock` on RUN_DIR/.lock, released by the kernel when its process ends (even when
killed), so a stale lock cannot outlive a crash. Without fcntl (not Linux/macOS) nothing is
locked.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Callable, Iterator, Optional

from submission.errors import UserError
from submission.fileio import make_dirs

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunBusy(UserError):
    """Another process holds this run folder."""


def _open(out: Path) -> IO[str]:
    make_dirs(out, "--out")
    return open(out / LOCK_FILE, "a+")


def try_lock(out: Path) -> Optional[IO[str]]:
    """The open, locked lock file of `out`, or None when another process holds it."""
    if fcntl is None:
        return open(os.devnull)
    handle = _open(out)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


@contextlib.contextmanager
def run_folder_lock(out: Path, wait: bool = False,
                    on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold `out`'s lock for the block. Busy: wait for it when `wait` (calling `on_wait` first,
    e.g. to say so), else raise RunBusy."""
    handle = try_lock(out)
    if handle is None and not wait:
        raise RunBusy(f"another local_eval process is training in {out}; wait for it to finish "
                      f"(or stop it), then rerun, or pass another --out")
    if handle is None:
        on_wait()
        handle = _open(out)
        fcntl.flock(handle, fcntl.LOCK_EX)
    with handle:
        yield
