"""Every worker process local_eval starts (DataLoader workers of the store, PIL and fine-tuning
loaders; the store build's decoding pool) dies with the process that started it.

Left alone, a DataLoader worker notices a dead parent only when it next waits for work (torch
polls every 5 s), and a worker stuck in a read never does: after `kill -9` of a run, workers
lingered up to 5 s, and after a hang 40 minutes. `generate`'s mechanism ties them instead
(submission.worker_process.die_with_parent: on Linux the kernel sends SIGKILL the moment the
parent dies, PR_SET_PDEATHSIG; elsewhere torch's own 5 s poll remains).

The kernel ties a child to the *thread* that started it: local_eval starts loader workers from
its main thread (the training loops run there), which lives as long as the process.
"""
from __future__ import annotations

import functools
import os
from typing import Callable

from submission.worker_process import die_with_parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds the number: ours is gone
        return False
    return True


def tie_to_parent(creator: int, *_ignored) -> None:
    """Run first in a worker: die with its parent (the process `creator`, or the fork server it
    asked to start the worker); leave at once if `creator` died before this ran."""
    parent = os.getppid()
    if parent != creator and not _alive(creator):
        os._exit(1)
    die_with_parent(parent)


def worker_init() -> Callable[[int], None]:
    """A DataLoader `worker_init_fn` that ties each worker to this process (picklable)."""
    return functools.partial(tie_to_parent, os.getpid())
