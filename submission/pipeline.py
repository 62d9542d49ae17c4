"""`generate`: validate, plan, run the class jobs in a process pool, finish the tree.

Bookkeeping lives in `OUTPUT/.generate-state/` while a run is unfinished: the config it was
started with, the category bank, and one empty "done" marker per finished class. A rerun with
the same config resumes from the markers; the folder is removed once every class is done, so a
finished tree holds nothing but class folders of images (what the contest validator counts).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

from tqdm import tqdm

from .config import GenerationConfig
from .errors import UserError
from .fileio import remove_tree_for_overwrite, write_atomic
from .fractal import CategoryBank, build_bank
from .render import resolve_backend, resolve_device
from .system import available_cores
from .writer import STAGES, ClassWriter, class_dirname, expected_filenames, init_worker, write_class_in_worker

STATE_DIRNAME = ".generate-state"
MIN_FREE_BYTES = 16 * 2**20
MAX_DEFAULT_CUDA_WORKERS = 8  # each holds a CUDA context; the CPU stages need no more on a GPU host


def default_workers(device: str) -> int:
    cores = available_cores()
    return min(cores, MAX_DEFAULT_CUDA_WORKERS) if device.startswith("cuda") else cores


@dataclass
class GenerationReport:
    """What one `run_generation` call did. `stage_seconds` sums the time every process spent per stage."""

    output_dir: Path
    images: int = 0  # images written by this call
    classes_written: int = 0
    classes_skipped: int = 0  # already done by an earlier run
    seconds: float = 0.0
    stage_seconds: Dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    device: str = "cpu"
    backend: str = "splat"
    workers: int = 1

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def generate(output_dir: Union[str, os.PathLike], config: Optional[GenerationConfig] = None,
             overwrite: bool = False, progress: bool = True) -> Path:
    """Write the ImageFolder dataset of `config` (contest defaults when None) under `output_dir`.

    Resumes an unfinished run of the same config; refuses a non-empty directory that is not one
    unless `overwrite`. Returns the output directory.
    """
    return run_generation(output_dir, config, overwrite=overwrite, progress=progress).output_dir


def run_generation(output_dir: Union[str, os.PathLike], config: Optional[GenerationConfig] = None,
                   overwrite: bool = False, progress: bool = True) -> GenerationReport:
    """`generate`, returning a `GenerationReport` with per-stage timings (used by `bench`)."""
    config = GenerationConfig() if config is None else config
    if not isinstance(config, GenerationConfig):
        raise UserError(f"config must be a GenerationConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    backend = resolve_backend(config.backend, device)
    workers = config.workers or default_workers(device)
    out = Path(output_dir).expanduser().absolute()
    report = GenerationReport(output_dir=out, device=device, backend=backend, workers=workers)

    if _is_finished(out, config):
        report.classes_skipped = len(config.class_ids())
        if progress:
            print(f"{out} already holds the finished dataset of this config; nothing to do")
        return report
    if config.bank_path is not None:
        CategoryBank.load(config.bank_path).check_fits(config, source=f"category bank {config.bank_path}")
    state = _prepare_output(out, config, overwrite)
    bank_file = _bank_file(state, config)
    done_dir = state / "done"
    todo = [c for c in config.class_ids() if not (done_dir / class_dirname(config, c)).exists()]
    report.classes_skipped = len(config.class_ids()) - len(todo)
    workers = min(workers, max(1, len(todo)))
    report.workers = workers

    start = time.perf_counter()
    bar = tqdm(total=len(todo) * config.images_per_class, unit="img", disable=not progress, smoothing=0.05,
               desc=f"generate ({backend} on {device}, {workers} worker{'s' * (workers > 1)})")
    try:
        for seconds in _run_classes(todo, config, bank_file, done_dir, out, device, backend, workers):
            report.classes_written += 1
            report.images += config.images_per_class
            for stage, dt in seconds.items():
                report.stage_seconds[stage] += dt
            bar.update(config.images_per_class)
    finally:
        bar.close()
    report.seconds = time.perf_counter() - start
    _finish(out, state, config)
    return report


def _run_classes(todo: List[int], config: GenerationConfig, bank_file: Path, done_dir: Path, out: Path,
                 device: str, backend: str, workers: int):
    """Yield each class's stage seconds as it finishes; in-process when workers == 1."""
    if workers == 1:
        writer = ClassWriter(config, str(bank_file), device, backend)
        for category in todo:
            yield writer.write_class(category, str(out), str(done_dir))
        return
    threads = max(1, available_cores() // workers)
    # spawn: forking a process that already runs torch threads can deadlock.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
                             initargs=(config, str(bank_file), device, backend, threads)) as pool:
        pending = set()
        queue = iter(todo)
        try:
            # Keep a couple of classes per worker in flight so no worker idles between classes.
            for category in queue:
                pending.add(pool.submit(write_class_in_worker, category, str(out), str(done_dir)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(write_class_in_worker, nxt, str(out), str(done_dir)))
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _is_finished(out: Path, config: GenerationConfig) -> bool:
    """True when `out` holds exactly this config's tree (all classes, all files) and no state."""
    if not out.is_dir() or (out / STATE_DIRNAME).exists():
        return False
    names = sorted(p.name for p in out.iterdir())
    if names != [class_dirname(config, c) for c in range(config.classes)]:
        return False
    return all(sorted(os.listdir(out / class_dirname(config, c))) == sorted(expected_filenames(config, c))
               for c in range(config.classes))


def _prepare_output(out: Path, config: GenerationConfig, overwrite: bool) -> Path:
    """Validate `out`, create it and its state folder; returns the state folder."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} is a file, not a directory; choose a directory path")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"cannot create {out}: {ancestor} is a file; choose another output path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {ancestor}: permission denied; choose a writable output path")
    if shutil.disk_usage(ancestor).free < MIN_FREE_BYTES:
        raise UserError(f"the disk holding {ancestor} is full (under {MIN_FREE_BYTES >> 20} MiB free); "
                        "free some space or choose another output path")
    state = out / STATE_DIRNAME
    wanted = _state_record(config)
    if out.is_dir() and any(out.iterdir()):
        recorded = _read_state_record(state)
        if overwrite:
            remove_tree_for_overwrite(out)
        elif recorded is None:
            raise UserError(f"{out} is not empty and is not an unfinished run of `generate`; "
                            "choose an empty directory or pass --overwrite to replace its contents")
        elif recorded != wanted:
            changed = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
            raise UserError(f"{out} holds an unfinished run with a different config (differs in: {', '.join(changed)}); "
                            "rerun with the same options to resume, or pass --overwrite to start over")
        else:
            unexpected = sorted(p.name for p in out.iterdir()
                                if p.name != STATE_DIRNAME and not _is_class_dirname(p.name, config))
            if unexpected:
                raise UserError(f"{out} holds files that are not part of the dataset ({', '.join(unexpected[:3])}); "
                                "move them away or pass --overwrite")
    try:
        (state / "done").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror}; choose a writable output path") from None
    record_file = state / "config.json"
    if not record_file.exists():
        write_atomic(record_file, json.dumps(wanted, indent=2, sort_keys=True).encode())
    return state


def _state_record(config: GenerationConfig) -> Dict:
    """What must match for a run to resume another: the content fields, not speed or sharding."""
    record = config.content_dict()
    record.pop("shard_index")
    record.pop("shard_count")
    return record


def _read_state_record(state: Path) -> Optional[Dict]:
    try:
        return json.loads((state / "config.json").read_text())
    except (OSError, ValueError):
        return None


def _is_class_dirname(name: str, config: GenerationConfig) -> bool:
    return name.isdigit() and int(name) < config.classes and name == class_dirname(config, int(name))


def _bank_file(state: Path, config: GenerationConfig) -> Path:
    """The category bank the workers read: the configured one, or one built once into the state."""
    if config.bank_path is not None:
        return Path(config.bank_path)  # checked by run_generation before anything was written
    path = state / "bank.npz"
    if not path.exists():
        build_bank(config.classes, seed=config.seed, points=config.points).save(path)
    return path


def _finish(out: Path, state: Path, config: GenerationConfig) -> None:
    """Remove the state folder once every class of the whole config (all shards) is done."""
    done = state / "done"
    if all((done / class_dirname(config, c)).exists() for c in range(config.classes)):
        shutil.rmtree(state)
