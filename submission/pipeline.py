"""`generate`: validate, plan, run the class jobs in a process pool, finish the tree.

While a run is unfinished its bookkeeping lives in `OUT/.generate-state/` (see `state.py`); a
rerun with the same config resumes, after checking that each class marked done really holds all
its files. A finished tree is recognised by its layout and by regenerating two of its images and
comparing bytes, so a tree of another config is never mistaken for this one.
"""
from __future__ import annotations

import contextlib
import os
import pickle
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
from .families import create_family
from .families.base import Family
from .fileio import check_overwritable, check_writable_target, remove_tree_for_overwrite
from .layout import class_dirname, expected_filenames, has_finished_layout, unexpected_entries
from .paths import check_not_inside_a_dataset, open_regular_file
from .plan import RunPlan
from .state import (
    classes_to_do,
    create_state,
    finish,
    lock_path,
    read_state_record,
    refuse_if_running,
    run_lock,
    state_record,
)
from .worker_process import WorkerContext, start_worker
from .writer import STAGES, create_class_writer, write_class_in_worker

MIN_FREE_BYTES = 16 * 2**20


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
    workers: int = 1
    engine: str = ""  # what rendered the images, e.g. "splat on cpu" or "visualatom on cpu"

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
    plan = RunPlan.resolve(config, Path(output_dir).expanduser().absolute())
    out = plan.output_dir
    family = create_family(config.family)  # the main process's one family object
    report = GenerationReport(output_dir=out, device=plan.device, workers=plan.workers, engine=family.engine(plan))

    _check_location(out)
    with contextlib.ExitStack() as lock:
        # A run of this shard was here (its lock file exists): take the lock before any slow check or
        # build, so a second run is refused at once. Nothing is created for it (a refusal leaves the
        # folder as it was); --overwrite checks every lock itself, below.
        locked_early = not (overwrite or overwrite_all) and lock_path(plan).is_file()
        if locked_early:
            lock.enter_context(run_lock(plan))
        family.check(config)
        finished = _finished_tree_matches(plan, family)
        if finished:
            report.classes_skipped = len(config.class_ids())
            if progress:
                print(f"{out} already holds the finished dataset of this config (layout and sampled images match); nothing to do")
            return report
        if (overwrite or overwrite_all) and (out.exists() or out.is_symlink()):
            check_overwritable(out, force=overwrite_all)  # even when empty: --overwrite never means the cwd
            refuse_if_running(plan.state_dir, out)
            remove_tree_for_overwrite(out, force=overwrite_all)
        elif finished is not None:
            raise UserError(f"{out} holds a finished dataset of another config (its images differ from what these "
                            "settings write); choose another output folder, or pass --overwrite to regenerate it")
        _check_resumable(plan)
        create_state(plan)
        if not locked_early:
            lock.enter_context(run_lock(plan))
        plan = family.prepare(plan, progress)
        todo = classes_to_do(plan)
        plan = plan.for_classes(len(todo))
        report.classes_skipped = len(config.class_ids()) - len(todo)
        report.workers = plan.workers

        start = time.perf_counter()
        bar = tqdm(total=len(todo) * config.images_per_class, unit="img", disable=not progress, smoothing=0.05,
                   desc=f"generate ({report.engine}, {plan.workers} worker{'s' * (plan.workers > 1)})")
        try:
            for seconds in _run_classes(plan, family, todo):
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
        finish(plan)
    return report


def _run_classes(plan: RunPlan, family: Family, todo: List[int]) -> Iterator[Dict[str, float]]:
    """Yield each class's stage seconds as it finishes; in-process when workers == 1."""
    if plan.workers == 1:
        writer = create_class_writer(plan, family)
        for category in todo:
            yield writer.write_class(category)
        return
    # The plan goes as bytes: unpickling it imports torch, which start_worker does only after tying
    # the worker's life to this process (a kill -9 meanwhile must not leave workers behind).
    with ProcessPoolExecutor(plan.workers, mp_context=WorkerContext(), initializer=start_worker,
                             initargs=(pickle.dumps(plan), os.getpid())) as pool:
        pending = set()
        queue = iter(todo)
        try:
            # Keep a couple of classes per worker in flight so no worker idles between classes.
            for category in queue:
                pending.add(pool.submit(write_class_in_worker, category))
                if len(pending) >= 2 * plan.workers:
                    break
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(write_class_in_worker, nxt))
        except KeyboardInterrupt:
            # The workers ignore Ctrl-C (see WorkerProcess): end them rather than wait for their classes.
            # Their futures are left alone: the pool fails them itself (cancelling them first makes
            # Python 3.10/3.11's pool print an InvalidStateError traceback).
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _check_location(out: Path) -> None:
    """`out` can be created and written (see `check_writable_target`), with some free space."""
    check_writable_target(out, "output folder", is_dir=True)
    check_not_inside_a_dataset(out, "OUT")  # its files would join that dataset's (a new class, or stray files)
    ancestor = next(p for p in (out, *out.parents) if p.exists())
    if shutil.disk_usage(ancestor).free < MIN_FREE_BYTES:
        raise UserError(f"the disk holding {ancestor} is full (under {MIN_FREE_BYTES >> 20} MiB free); "
                        "free some space or choose another output path")


def _finished_tree_matches(plan: RunPlan, family: Family) -> Optional[bool]:
    """None when the output is not a finished tree of this config's layout; otherwise whether two
    sampled images (the first and last of class 0) are byte-identical to what this config writes.

    The layout alone cannot tell a seed or image size apart, and no record is kept inside a finished
    tree (the contest counts every file), so the images themselves are the record.
    """
    config = plan.config
    if not has_finished_layout(plan.output_dir, config):
        return None
    indices = sorted({0, config.images_per_class - 1})
    expected = create_class_writer(family.prepare(plan, categories=1), family).encode_images(0, indices)
    first_class = plan.output_dir / class_dirname(config, 0)
    return all(_read_image(first_class / expected_filenames(config, 0)[j]) == data for j, data in zip(indices, expected))


def _read_image(path: Path) -> bytes:
    """A written image's bytes; a FIFO or device named like one is refused, never waited on."""
    with open_regular_file(path, f"{path}", "an image file was expected there: remove it (or pass --overwrite-all)") as f:
        return f.read()


def _check_resumable(plan: RunPlan) -> None:
    """The output is empty or an unfinished run of this config; reads only, changes nothing."""
    out = plan.output_dir
    if not (out.is_dir() and any(out.iterdir())):
        return
    recorded, wanted = read_state_record(plan.state_dir), state_record(plan.config)
    if recorded is None:
        raise UserError(f"{out} is not empty and is not an unfinished run of `generate`; choose an empty directory, "
                        "or pass --overwrite to replace generate's output there")
    if recorded != wanted:
        changed = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
        raise UserError(f"{out} holds an unfinished run with a different config (differs in: {', '.join(changed)}); "
                        "rerun with the same options to resume, or pass --overwrite to start over")
    unexpected = unexpected_entries(out, plan.config)
    if unexpected:
        raise UserError(f"{out} holds files that are not part of the dataset ({', '.join(unexpected[:3])}"
                        f"{' ...' if len(unexpected) > 3 else ''}); move them away, or pass --overwrite-all")
