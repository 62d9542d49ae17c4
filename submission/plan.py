"""`RunPlan`: what one `generate` run does, with every "auto" resolved once, in one place.

The pipeline builds the plan once (config, device, backend, workers, output and state folders,
category bank file) and hands it to the writers; nothing downstream resolves anything again.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .config import GenerationConfig
from .fileio import STATE_DIRNAME
from .families.fractal.render import RenderSettings, resolve_backend
from .system import available_cores, resolve_device

# Each CUDA worker holds a context (~0.5 GB of GPU memory). On an H200 with 16 cores, splat on
# CUDA spends ~18 ms of CPU per image per worker (sampling, augmentation, PNG) against 0.4 ms of
# GPU, so more workers keep paying up to the cores: 16 gave 883 images/s. The cap keeps 40-core
# servers with a small GPU within memory.
MAX_DEFAULT_CUDA_WORKERS = 16


def default_workers(device: str) -> int:
    """All usable cores on CPU; at most `MAX_DEFAULT_CUDA_WORKERS` on CUDA."""
    cores = available_cores()
    return min(cores, MAX_DEFAULT_CUDA_WORKERS) if device.startswith("cuda") else cores


@dataclass(frozen=True)
class RunPlan:
    """A config and how and where it runs. `device` and `backend` are concrete ("cpu", "splat", ...)."""

    config: GenerationConfig
    device: str
    backend: str
    workers: int
    output_dir: Optional[Path] = None  # None: renders only (e.g. the server adapter's check)
    asset_file: Optional[Path] = None  # what the family's workers read (the fractal bank); set by Family.prepare

    @classmethod
    def resolve(cls, config: GenerationConfig, output_dir: Optional[Path] = None) -> "RunPlan":
        """Resolve device ("auto" -> cuda or cpu), backend and workers (capped at the cores:
        more processes than cores only add memory and contention)."""
        device = resolve_device(config.device)
        workers = min(config.workers or default_workers(device), available_cores())
        return cls(config=config, device=device, backend=resolve_backend(config.backend),
                   workers=workers, output_dir=None if output_dir is None else Path(output_dir))

    @property
    def state_dir(self) -> Path:
        return self.output_dir / STATE_DIRNAME

    @property
    def done_dir(self) -> Path:
        return self.state_dir / "done"

    def render_settings(self) -> RenderSettings:
        return RenderSettings.from_config(self.config, device=self.device)

    def replace(self, **changes) -> "RunPlan":
        return dataclasses.replace(self, **changes)
