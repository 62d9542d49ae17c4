"""`RunPlan`: what one `generate` run does, with every "auto" resolved once, in one place.

The pipeline builds the plan once (config, device, workers and their threads, output and state
folders) and the family's `prepare` adds what its workers read (e.g. the category bank); the
writers take it as it is and resolve nothing again.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .config import GenerationConfig
from .fileio import STATE_DIRNAME
from .system import available_cores, resolve_device

# Each CUDA worker holds a context (~0.5 GB of GPU memory). On an H200 with 16 cores, splat on
# CUDA spends ~18 ms of CPU per image per worker (sampling, augmentation, PNG) against 0.4 ms of
# GPU, so more workers keep paying up to the cores: 16 gave 883 images/s. The cap keeps 40-core
# servers with a small GPU within memory.
MAX_DEFAULT_CUDA_WORKERS = 16


def default_worker_count(device: str, cores: int) -> int:
    """Worker processes when --workers is not given: all `cores` on CPU; at most
    `MAX_DEFAULT_CUDA_WORKERS` on CUDA."""
    return min(cores, MAX_DEFAULT_CUDA_WORKERS) if device.startswith("cuda") else cores


@dataclass(frozen=True)
class RunPlan:
    """A config and how and where it runs. `device` is concrete ("cpu", "cuda:0", ...); `workers`
    never exceeds the usable cores and `threads` is each worker's share of them (torch threads)."""

    config: GenerationConfig
    device: str
    workers: int
    threads: int = 1
    cores: int = 1  # the usable cores the plan was made for
    output_dir: Optional[Path] = None  # None: renders only (e.g. the server adapter's check)
    # What the family's workers read, set by `Family.prepare`: a file (a run: small to send to
    # the worker processes) or an in-memory object (a check of a few classes); None: nothing.
    asset: Any = None

    @classmethod
    def resolve(cls, config: GenerationConfig, output_dir: Optional[Path] = None) -> "RunPlan":
        """Resolve device ("auto" -> cuda or cpu) and workers (capped at the cores: more processes
        than cores only add memory and contention), and each worker's share of the cores."""
        device = resolve_device(config.device)
        cores = available_cores()
        workers = min(config.workers or default_worker_count(device, cores), cores)
        return cls(config=config, device=device, workers=workers, threads=max(1, cores // workers), cores=cores,
                   output_dir=None if output_dir is None else Path(output_dir))

    def for_classes(self, count: int) -> "RunPlan":
        """This plan for a run of `count` classes: no more workers than classes (each class is one
        job), their threads sharing the cores again."""
        workers = min(self.workers, max(1, count))
        return self.replace(workers=workers, threads=max(1, self.cores // workers))

    @property
    def state_dir(self) -> Path:
        return self.output_dir / STATE_DIRNAME

    @property
    def done_dir(self) -> Path:
        return self.state_dir / "done"

    def replace(self, **changes) -> "RunPlan":
        return dataclasses.replace(self, **changes)
