"""Measure what `generate`'s workers (or, with --local-eval, `local_eval run`'s loader workers) do
after `kill -9` of the main process, on a loaded machine.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/kill9_workers.py [--recipe fractal] [--load 2] [--runs 5] [--startup]
    OMP_NUM_THREADS=1 .venv/bin/python scripts/kill9_workers.py --local-eval [--loader store|pil] [--runs 5]

Each run starts `python -m submission generate` with 2 workers and batches of 2 images (so a
surviving worker writes often), with `--load` busy Python loops beside it; once 20 images are
written (or, with --startup, as soon as both workers exist, while they import torch) it kills the
main process with SIGKILL and prints how long each worker lived after the kill, and how many files
appeared after the main process was reaped (must be 0).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from submission.worker_process import child_pids, command_line, is_running  # noqa: E402


def workers_of(pid: int) -> List[int]:
    """`generate`'s spawned workers (not the resource tracker)."""
    return [child for child in child_pids(pid)
            if "spawn_main" in command_line(child) and "resource_tracker" not in command_line(child)]


def one_run(out: Path, recipe: str, startup: bool) -> str:
    shutil.rmtree(out, ignore_errors=True)
    extra = ["--points", "2000"] if recipe == "fractal" else []
    proc = subprocess.Popen([sys.executable, "-m", "submission", "generate", str(out), "--recipe", recipe, "--classes", "8",
                             "--images-per-class", "400", "--image-size", "64", *extra, "--batch-size", "2",
                             "--workers", "2", "--quiet"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            workers = workers_of(proc.pid)
            if startup and len(workers) >= 2:
                time.sleep(0.2)
                break
            if not startup and len(list(out.glob("*/*.png"))) >= 20:
                break
            if proc.poll() is not None:
                return "generate ended before the kill"
            time.sleep(0.01)
        start = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at_death = {str(p) for p in out.rglob("*")}
        lived = {}
        while len(lived) < len(workers):
            for pid in workers:
                if pid not in lived and not is_running(pid):
                    lived[pid] = time.monotonic() - start
            time.sleep(0.005)
        new = {str(p) for p in out.rglob("*")} - at_death
        return (f"last worker gone {max(lived.values()):.3f} s after kill -9 (each: "
                f"{', '.join(f'{s:.3f}' for s in lived.values())}); files at the kill {len(at_death)}, new after it {len(new)}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def loader_workers_of(pid: int) -> List[int]:
    """The forked children of a `local_eval run` (its DataLoader workers), without the resource tracker."""
    return [p for p in child_pids(pid) if "resource_tracker" not in command_line(p)]


def make_data(root: Path) -> Path:
    """8 classes x 64 images of 32 px noise: enough batches that the loader workers keep working."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in range(8):
        (root / f"{label:05d}").mkdir(parents=True)
        for index in range(64):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / f"{label:05d}" / f"{index:05d}.png")
    return root


def one_local_eval_run(data: Path, out: Path, loader: str) -> str:
    """Kill -9 a `local_eval run` once its 2 loader workers have served batches for a second."""
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-m", "local_eval", "run", "--data", str(data), "--out", str(out),
                             "--preset", "smoke", "--epochs", "50", "--downstream", "fashion-mnist", "--data-root",
                             str(REPO / "data"), "--workers", "2", "--loader", loader, "--no-progress"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        workers: List[int] = []
        while len(workers) < 2 or not (out / "pretrain.pt").exists():  # past the store build, into epoch 2
            if proc.poll() is not None:
                return "local_eval ended before the kill"
            workers = loader_workers_of(proc.pid)
            time.sleep(0.01)
        time.sleep(1.0)
        workers = loader_workers_of(proc.pid)
        while len(workers) < 2 and proc.poll() is None:  # a PIL loader's workers start anew each epoch
            workers = loader_workers_of(proc.pid)
        start = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lived = {}
        while len(lived) < len(workers) and time.monotonic() - start < 60:
            for pid in workers:
                if pid not in lived and not is_running(pid):
                    lived[pid] = time.monotonic() - start
            time.sleep(0.005)
        left = [pid for pid in workers if pid not in lived]
        return (f"{len(workers)} loader workers; last gone {max(lived.values()):.3f} s after kill -9 (each: "
                f"{', '.join(f'{s:.3f}' for s in lived.values())}){f'; {len(left)} still alive after 60 s' if left else ''}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fractal")
    parser.add_argument("--load", type=int, default=2, help="busy Python loops running beside (default 2)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--startup", action="store_true", help="kill while the workers start (import torch)")
    parser.add_argument("--local-eval", action="store_true", help="kill `local_eval run` during pre-training instead")
    parser.add_argument("--loader", default="store", choices=("store", "pil"), help="with --local-eval: its --loader")
    args = parser.parse_args()
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        with tempfile.TemporaryDirectory(prefix="kill9-") as tmp:
            data = make_data(Path(tmp) / "data") if args.local_eval else None
            for run in range(args.runs):
                outcome = (one_local_eval_run(data, Path(tmp) / "out", args.loader) if data is not None
                           else one_run(Path(tmp) / "out", args.recipe, args.startup))
                print(f"run {run + 1}: {outcome}", flush=True)
    finally:
        for busy in load:
            busy.kill()
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
