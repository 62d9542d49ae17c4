"""How `generate` starts its worker processes, and the first code they run: the worker's life is
tied to its parent's before anything heavy is imported (torch takes seconds to import, more on a
loaded machine), then the worker is built. This module is what a worker imports to unpickle its
process object and initializer, so it stays free of torch, numpy and the renderers; the plan
travels as bytes and is unpickled only after the tie is made.

Linux: the kernel kills the worker the moment its parent dies (prctl PR_SET_PDEATHSIG); a worker
whose parent died before that call leaves at once. Elsewhere a thread polls the parent's pid.
"""
from __future__ import annotations

import ctypes
import multiprocessing.context
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from typing import List

PR_SET_PDEATHSIG = 1  # linux/prctl.h
ORPHAN_POLL_SECONDS = 0.2


def start_worker(plan_bytes: bytes, parent_pid: int) -> None:
    """The pool's initializer (see `pipeline._run_classes`)."""
    die_with_parent(parent_pid)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="exit-with-parent", daemon=True).start()
    from .writer import init_worker

    init_worker(pickle.loads(plan_bytes))


def die_with_parent(parent_pid: int) -> None:
    """Linux: ask for SIGKILL when the parent dies; then leave at once if it died already, before
    the request (the check after it closes that gap)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no libc prctl: the watcher thread alone
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _exit_when_orphaned(parent_pid: int) -> None:
    """A pool worker outlives a parent killed with SIGKILL (it waits on its task queue forever):
    where the kernel does not end it, leave when the parent is gone."""
    while os.getppid() == parent_pid:
        time.sleep(ORPHAN_POLL_SECONDS)
    os._exit(1)


class WorkerProcess(multiprocessing.context.SpawnProcess):
    """A pool worker started with SIGINT ignored. Python then never installs its KeyboardInterrupt
    handler there, so Ctrl-C (sent to the whole process group) interrupts the main process alone,
    which ends the workers and prints one line, instead of every worker printing a traceback from
    wherever it was (importing torch, waiting on its queue, drawing)."""

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():  # signal() works in the main thread only
            return super().start()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child; ours is restored at once
        try:
            super().start()
        finally:
            signal.signal(signal.SIGINT, previous)


class WorkerContext(multiprocessing.context.SpawnContext):
    """spawn (forking a process that already runs torch threads can deadlock), with `WorkerProcess`."""

    Process = WorkerProcess


# What Linux says about a process's workers, for the checks that kill a parent and watch its
# workers go (scripts/kill9_workers.py, the reliability tests).

def child_pids(pid: int) -> List[int]:
    """The children of every thread of `pid` (the kernel files a child under the thread that
    started it); [] once `pid` is gone. Linux /proc only."""
    found: List[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            pass
    return found


def command_line(pid: int) -> str:
    """`pid`'s command line, NUL-separated; "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def is_running(pid: int) -> bool:
    """Running: a zombie (dead, not yet waited for) counts as gone. Linux /proc only."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
