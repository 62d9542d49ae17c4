"""`compare --executor local --parallel N | --gpus 0,1,...`: the units of a plan on N worker
processes of this machine.

Each worker slot runs one unit at a time as its own process (`compare OUT --task I`), so a slot
is a GPU: the process sees only that GPU (CUDA_VISIBLE_DEVICES), and a slot takes its next unit
only when its last one has ended, so no two runs ever share a GPU. (submitit's local executor
puts every job on GPU 0, which is why it is not used.) On a CPU the cores are split: each process
gets cores / N threads (OMP_NUM_THREADS, unless the caller set it). A run is started only when
the generations it reads are done; one whose generation failed is not started.
"""
from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from submission.errors import UserError

from .units import Unit

REPO = Path(__file__).resolve().parents[2]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def gpu_count() -> int:
    """CUDA devices this process sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_gpus(text: str) -> List[str]:
    """--gpus 0,1,3: indices among the visible GPUs, each once, each existing; returned as the
    CUDA_VISIBLE_DEVICES value each slot gets (the caller's own list entries when it set one)."""
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() for item in items):
        raise UserError(f"--gpus {text}: write GPU indices separated by commas, e.g. --gpus 0,1")
    indices = [int(item) for item in items]
    if len(set(indices)) != len(indices):
        raise UserError(f"--gpus {text} lists a GPU twice; each GPU takes one worker")
    count = gpu_count()
    missing = [i for i in indices if i >= count]
    if missing:
        seen = f"GPUs 0..{count - 1}" if count else "no CUDA GPU"
        raise UserError(f"--gpus {text}: GPU {missing[0]} does not exist (this machine has "
                        f"{seen}); list existing ones, or use --parallel N on the CPU")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [v.strip() for v in visible.split(",")] if visible else None
    return [names[i] if names and i < len(names) else str(i) for i in indices]


def slot_environments(parallel: int, gpus: Optional[Sequence[str]]) -> List[Dict[str, str]]:
    """The environment changes of each worker slot: its GPU, and its share of the cores."""
    slots = len(gpus) if gpus else parallel
    threads = str(max(1, usable_cores() // slots))
    envs = []
    for slot in range(slots):
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                           os.environ.get("PYTHONPATH")]))}
        if "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = threads
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[slot]
        envs.append(env)
    return envs


class Pool:
    """Run `units` (in order, a run after the units it needs) on the slots; `command(unit)` is
    the argv of one unit's process, its output appended to `log_file(unit)`."""

    def __init__(self, units: Sequence[Unit], slots: List[Dict[str, str]],
                 command: Callable[[Unit], List[str]], log_file: Callable[[Unit], Path],
                 announce: Callable[[str], None] = print) -> None:
        self.pending = list(units)
        self.slots, self.command, self.log_file, self.announce = slots, command, log_file, announce
        self.queued = {u.index for u in units}  # a need not queued here is done already
        self.done: set = set()
        self.failed: List[Unit] = []
        self.blocked: set = set()  # failed units, and the runs of a failed generation
        self.lock = threading.Condition()

    def _ready(self) -> Optional[Unit]:
        """The first pending unit whose needs are done (pops it); None: nothing ready now."""
        for unit in list(self.pending):
            if any(n in self.blocked for n in unit.needs):
                self.pending.remove(unit)
                self.blocked.add(unit.index)
                self.failed.append(unit)
                self.announce(f"unit {unit.index} ({unit.label()}): not started, a generation "
                              f"it reads failed")
                continue
            if all(n in self.done or n not in self.queued for n in unit.needs):
                self.pending.remove(unit)
                return unit
        return None

    def _worker(self, env: Dict[str, str], name: str) -> None:
        while True:
            with self.lock:
                unit = self._ready()
                while unit is None and self.pending:
                    self.lock.wait()
                    unit = self._ready()
                if unit is None:
                    return
            self.announce(f"unit {unit.index} ({unit.label()}) started on {name}")
            log = self.log_file(unit)
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as handle:
                code = subprocess.call(self.command(unit), env={**os.environ, **env},
                                       stdout=handle, stderr=subprocess.STDOUT)
            with self.lock:
                if code == 0:
                    self.done.add(unit.index)
                else:
                    self.failed.append(unit)
                    self.blocked.add(unit.index)
                self.lock.notify_all()
            self.announce(f"unit {unit.index} ({unit.label()}): "
                          + ("done" if code == 0 else f"failed (exit {code}), see {log}"))

    def run(self) -> List[Unit]:
        """Run everything; returns the units that failed or could not start."""
        threads = []
        for slot, env in enumerate(self.slots):
            gpu = env.get("CUDA_VISIBLE_DEVICES")
            name = f"GPU {gpu}" if gpu else f"worker {slot}"
            thread = threading.Thread(target=self._worker, args=(env, name), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        return sorted(self.failed, key=lambda u: u.index)
