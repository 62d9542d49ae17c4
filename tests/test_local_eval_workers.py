"""Loader workers die with their parent (issue 26 item 6): after `kill -9` of the process that made
them, every worker of each loader local_eval makes (the PIL and fine-tuning loaders of
train.loop.make_loader, the store loader, the store build's decoding pool) is gone, even one stuck
in its work (torch's own check runs only between batches, so such a worker lived 40 minutes)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import List

import pytest

from submission.worker_process import child_pids, command_line, is_running

from .conftest import REPO

CHILD = r"""
import sys, time
import numpy as np, torch
from torch.utils.data import Dataset

class Stuck(Dataset):  # every item takes ten minutes: a worker stuck in a read
    crop, image_shape, transform = None, (4, 4), None
    def __len__(self): return 64
    def __getitem__(self, index): time.sleep(600)

def stuck_chunk(job): time.sleep(600)

kind = sys.argv[1]
print("started", flush=True)
if kind == "make_loader":
    from local_eval.core.distributed import Runtime
    from local_eval.train.loop import make_loader
    next(iter(make_loader(Stuck(), 4, Runtime(torch.device("cpu"), workers=2))))
elif kind == "store_loader":
    from local_eval.store.loader import store_loader
    next(iter(store_loader(Stuck(), 4, 0, 1, 0, 2, torch.device("cpu"))))
else:  # the store build's pool
    from pathlib import Path
    import local_eval.store.build as build
    folder = Path(sys.argv[2])
    np.memmap(folder / "images.u8", dtype=np.uint8, mode="w+", shape=(4, 4, 4, 3)).flush()
    build._decode_chunk = stuck_chunk
    list(build._decode([(0, 0, ["a"]), (1, 2, ["b"])], folder, (4, 4, 4, 3), 2))
"""


def children(pid: int) -> List[int]:
    """The run's worker processes (not multiprocessing's resource tracker)."""
    return [p for p in child_pids(pid) if "resource_tracker" not in command_line(p)]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc: Linux")
@pytest.mark.parametrize("kind", ["make_loader", "store_loader", "store_build"])
def test_stuck_loader_workers_die_with_their_killed_parent(tmp_path, kind):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    workers: List[int] = []
    try:
        assert proc.stdout.readline() == "started\n"
        deadline = time.monotonic() + 300
        while len(workers) < 2:  # both workers started
            assert proc.poll() is None and time.monotonic() < deadline, "the workers never started"
            workers = children(proc.pid)
            time.sleep(0.05)
        time.sleep(2)  # past their start-up, into the stuck item
        os.kill(proc.pid, signal.SIGKILL)  # the main process alone, as kill -9 or the OOM killer does
        proc.wait()
        deadline = time.monotonic() + 10  # a generous bound: they go within a fraction of a second
        while any(is_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [pid for pid in workers if is_running(pid)] == [], "workers outlived their killed parent"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in workers:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
