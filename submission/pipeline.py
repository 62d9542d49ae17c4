"""`generate`: validate, plan, run the class jobs in a process pool, finish the tree.

Bookkeeping lives in `OUTPUT/.generate-state/` while a run is unfinished: the config it was
started with, the category bank, one empty "done" marker per finished class and one lock file per
running shard. A rerun with the same config resumes from the markers (after checking that each
marked class really holds all its files); the folder is removed once every class is done, so a
finished tree holds nothing but class folders of images (what the contest validator counts). A
finished tree is recognised by its layout and by regenerating two of its images and comparing
bytes, so a tree of another config is never mistaken for this one.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

from tqdm import tqdm

from .config import GenerationConfig
from .errors import UserError
from .fileio import (STATE_DIRNAME, TMP_SUFFIX, check_overwritable, check_writable_target, make_dirs, os_error,
                     remove_tree_for_overwrite, write_atomic)
from .fractal import CategoryBank, build_bank
from .render import resolve_backend
from .system import available_cores, resolve_device
from .writer import STAGES, ClassWriter, class_dirname, expected_filenames, init_worker, write_class_in_worker

try:
    import fcntl
except ImportError:  # not on POSIX: runs are not locked against each other
    fcntl = None  # type: ignore[assignment]

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
             overwrite: bool = False, progress: bool = True, overwrite_all: bool = False) -> Path:
    """Write the ImageFolder dataset of `config` (contest defaults when None) under `output_dir`.

    Resumes an unfinished run of the same config; refuses a non-empty directory that is not one
    unless `overwrite` (which removes only what generate wrote) or `overwrite_all` (everything in
    it; never the root, home or the current folder). Returns the output directory.
    """
    return run_generation(output_dir, config, overwrite=overwrite, progress=progress,
                          overwrite_all=overwrite_all).output_dir


def run_generation(output_dir: Union[str, os.PathLike], config: Optional[GenerationConfig] = None,
                   overwrite: bool = False, progress: bool = True, overwrite_all: bool = False) -> GenerationReport:
    """`generate`, returning a `GenerationReport` with per-stage timings (used by `bench`)."""
    config = GenerationConfig() if config is None else config
    if not isinstance(config, GenerationConfig):
        raise UserError(f"config must be a GenerationConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    backend = resolve_backend(config.backend, device)
    # More processes than cores only adds memory (each holds a renderer) and contention.
    workers = min(config.workers or default_workers(device), available_cores())
    out = Path(output_dir).expanduser().absolute()
    report = GenerationReport(output_dir=out, device=device, backend=backend, workers=workers)

    _check_location(out)
    if config.bank_path is not None:
        CategoryBank.load(config.bank_path).check_fits(config, source=f"category bank {config.bank_path}")
    finished = _finished_tree_matches(out, config, device, backend)
    if finished:
        report.classes_skipped = len(config.class_ids())
        if progress:
            print(f"{out} already holds the finished dataset of this config (layout and sampled images match); nothing to do")
        return report
    if (overwrite or overwrite_all) and (out.exists() or out.is_symlink()):
        check_overwritable(out, force=overwrite_all)  # even when empty: --overwrite never means the cwd
        _refuse_if_running(out / STATE_DIRNAME, out)
        remove_tree_for_overwrite(out, force=overwrite_all)
    elif finished is not None:
        raise UserError(f"{out} holds a finished dataset of another config (its images differ from what these "
                        "settings write); choose another output folder, or pass --overwrite to regenerate it")
    state = _prepare_output(out, config)
    with _run_lock(state, config, out):
        bank_file = _bank_file(state, config)
        todo = _classes_to_do(out, state / "done", config)
        report.classes_skipped = len(config.class_ids()) - len(todo)
        workers = min(workers, max(1, len(todo)))
        report.workers = workers

        start = time.perf_counter()
        bar = tqdm(total=len(todo) * config.images_per_class, unit="img", disable=not progress, smoothing=0.05,
                   desc=f"generate ({backend} on {device}, {workers} worker{'s' * (workers > 1)})")
        try:
            for seconds in _run_classes(todo, config, bank_file, state / "done", out, device, backend, workers):
                report.classes_written += 1
                report.images += config.images_per_class
                for stage, dt in seconds.items():
                    report.stage_seconds[stage] += dt
                bar.update(config.images_per_class)
        except BrokenProcessPool:
            raise UserError("a worker process died unexpectedly (killed by the system, e.g. the out-of-memory killer, "
                            "or crashed); the classes already finished are kept: rerun the same command to resume, "
                            "with fewer --workers if memory is short") from None
        finally:
            bar.close()
        report.seconds = time.perf_counter() - start
        _finish(out, state, config)
    return report


def _run_classes(todo: List[int], config: GenerationConfig, bank_file: Path, done_dir: Path, out: Path,
                 device: str, backend: str, workers: int) -> Iterator[Dict[str, float]]:
    """Yield each class's stage seconds as it finishes; in-process when workers == 1."""
    if workers == 1:
        writer = ClassWriter(config, CategoryBank.load(bank_file), device, backend)
        for category in todo:
            yield writer.write_class(category, str(out), str(done_dir))
        return
    threads = max(1, available_cores() // workers)
    # spawn: forking a process that already runs torch threads can deadlock.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
                             initargs=(config, str(bank_file), device, backend, threads, os.getpid())) as pool:
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


def _is_non_empty(out: Path) -> bool:
    return out.is_dir() and any(out.iterdir())


def _check_location(out: Path) -> None:
    """`out` can be created and written (see `check_writable_target`), with some free space."""
    check_writable_target(out, "output folder", is_dir=True)
    ancestor = next(p for p in (out, *out.parents) if p.exists())
    if shutil.disk_usage(ancestor).free < MIN_FREE_BYTES:
        raise UserError(f"the disk holding {ancestor} is full (under {MIN_FREE_BYTES >> 20} MiB free); "
                        "free some space or choose another output path")


def _has_finished_layout(out: Path, config: GenerationConfig) -> bool:
    """`out` holds exactly this config's tree (every class folder with every file name) and no state."""
    if not out.is_dir() or (out / STATE_DIRNAME).exists():
        return False
    if sorted(p.name for p in out.iterdir()) != [class_dirname(config, c) for c in range(config.classes)]:
        return False
    return all(sorted(os.listdir(out / class_dirname(config, c))) == sorted(expected_filenames(config, c))
               for c in range(config.classes))


def _finished_tree_matches(out: Path, config: GenerationConfig, device: str, backend: str) -> Optional[bool]:
    """None when `out` is not a finished tree of this config's layout; otherwise whether two sampled
    images (the first and last of class 0) are byte-identical to what this config writes.

    The layout alone cannot tell a seed or image size apart, and no record is kept inside a finished
    tree (the contest counts every file), so the images themselves are the record.
    """
    if not _has_finished_layout(out, config):
        return None
    bank = (CategoryBank.load(config.bank_path) if config.bank_path is not None
            else build_bank(1, seed=config.seed, points=config.points))  # a bank's first category is its own
    indices = sorted({0, config.images_per_class - 1})
    expected = ClassWriter(config, bank, device, backend).encode_images(0, indices)
    first_class = out / class_dirname(config, 0)
    return all((first_class / expected_filenames(config, 0)[j]).read_bytes() == data for j, data in zip(indices, expected))


def _prepare_output(out: Path, config: GenerationConfig) -> Path:
    """Check that `out` is empty or an unfinished run of this config, create it and its state
    folder; returns the state folder. Reads only: nothing that is there is changed."""
    state = out / STATE_DIRNAME
    wanted = _state_record(config)
    if _is_non_empty(out):
        recorded = _read_state_record(state)
        if recorded is None:
            raise UserError(f"{out} is not empty and is not an unfinished run of `generate`; choose an empty directory, "
                            "or pass --overwrite to replace generate's output there")
        if recorded != wanted:
            changed = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
            raise UserError(f"{out} holds an unfinished run with a different config (differs in: {', '.join(changed)}); "
                            "rerun with the same options to resume, or pass --overwrite to start over")
        unexpected = _unexpected_entries(out, config)
        if unexpected:
            raise UserError(f"{out} holds files that are not part of the dataset ({', '.join(unexpected[:3])}"
                            f"{' ...' if len(unexpected) > 3 else ''}); move them away, or pass --overwrite-all")
    make_dirs(state / "done")
    record_file = state / "config.json"
    if not record_file.exists():
        write_atomic(record_file, json.dumps(wanted, indent=2, sort_keys=True).encode())
    return state


def _unexpected_entries(out: Path, config: GenerationConfig) -> List[str]:
    """Paths under `out` that this config's run would not write (its temp files aside)."""
    unexpected = []
    for entry in sorted(out.iterdir()):
        if entry.name == STATE_DIRNAME:
            continue
        if not (entry.is_dir() and _is_class_dirname(entry.name, config)):
            unexpected.append(str(entry))
            continue
        names = expected_filenames(config, int(entry.name))
        allowed = set(names) | {f".{name}{TMP_SUFFIX}" for name in names}
        unexpected += sorted(str(entry / name) for name in os.listdir(entry) if name not in allowed)
    return unexpected


def _classes_to_do(out: Path, done_dir: Path, config: GenerationConfig) -> List[int]:
    """This shard's classes without a trustworthy done marker. A marked class must hold every file,
    none empty (a marker can outlive its files, e.g. after an interrupted copy of shard folders);
    otherwise its marker is dropped and the class is redone."""
    todo = []
    for category in config.class_ids():
        marker = done_dir / class_dirname(config, category)
        if marker.exists() and _class_is_complete(out / class_dirname(config, category), config, category):
            continue
        if marker.exists():
            print(f"class {marker.name} was marked done but is missing images; writing it again")
            marker.unlink()
        todo.append(category)
    return todo


def _class_is_complete(class_dir: Path, config: GenerationConfig, category: int) -> bool:
    try:
        sizes = {entry.name: entry.stat().st_size for entry in os.scandir(class_dir) if not entry.name.startswith(".")}
    except OSError:
        return False
    expected = expected_filenames(config, category)
    return len(sizes) == len(expected) and all(sizes.get(name, 0) > 0 for name in expected)


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


@contextlib.contextmanager
def _run_lock(state: Path, config: GenerationConfig, out: Path) -> Iterator[None]:
    """Hold this shard's lock file for the run: a second run of the same shard on `out` is refused
    (other shards may write the same folder at the same time)."""
    if fcntl is None:
        yield
        return
    path = state / f"lock-{config.shard_index}-of-{config.shard_count}"
    try:
        handle = open(path, "a+")
    except OSError as exc:
        raise os_error(exc, path) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"another generate run is writing {out} (shard {config.shard_index}/{config.shard_count}); "
                            "wait for it to finish or stop it, then rerun") from None
        yield


def _refuse_if_running(state: Path, out: Path) -> None:
    """Refuse to clear `out` while any generate run holds one of its lock files."""
    if fcntl is None or not state.is_dir():
        return
    for path in state.glob("lock-*"):
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise UserError(f"refusing to --overwrite {out}: a generate run is writing it; "
                                "stop that run first") from None
            fcntl.flock(handle, fcntl.LOCK_UN)


def _bank_file(state: Path, config: GenerationConfig) -> Path:
    """The category bank the workers read: the configured one, or one built once into the state
    (and rebuilt when the saved one is unreadable or does not fit: it is only a cache)."""
    if config.bank_path is not None:
        return Path(config.bank_path)  # checked by run_generation before anything was written
    path = state / "bank.npz"
    if path.exists():
        try:
            CategoryBank.load(path).check_fits(config)
            return path
        except UserError:
            pass
    build_bank(config.classes, seed=config.seed, points=config.points).save(path)
    return path


def _finish(out: Path, state: Path, config: GenerationConfig) -> None:
    """Remove the state folder once every class of the whole config (all shards) is done."""
    done = state / "done"
    if all((done / class_dirname(config, c)).exists() for c in range(config.classes)):
        shutil.rmtree(state)
