"""What a data family provides: a few hooks in the main process and a per-process worker that
renders images. Everything else (seeding, writing, resuming, sharding, packing) is shared."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Dict, Optional, Sequence

import numpy as np

from ..config import GenerationConfig
from ..plan import RunPlan


class FamilyWorker(ABC):
    """Renders the images of one plan in one process (built once per worker process)."""

    def class_context(self, category: int) -> Any:
        """Per-class work shared by all its images (timed as "sampling"), e.g. a point cloud."""
        return None

    @abstractmethod
    def render(self, category: int, indices: Sequence[int], context: Any,
               seconds: Optional[Dict[str, float]] = None) -> np.ndarray:
        """(B, H, W, 3) uint8 RGB images `indices` of `category`, H = W = config.image_size,
        bytes fixed by (config, category, index) alone. Adds stage times to `seconds` when given
        ("sampling" for per-image draws, "rendering" for drawing)."""


class Family(ABC):
    """A data family. Every hook but `worker` has a default that does nothing."""

    name: ClassVar[str]

    def check(self, config: GenerationConfig) -> None:
        """Cheap checks of the family's inputs before anything is written (raise `UserError`)."""

    def prepare(self, plan: RunPlan, progress: bool = False, categories: Optional[int] = None) -> RunPlan:
        """Main process, once, before any worker is built: resolve what the workers read and return
        the plan holding it in `plan.asset`. For a run (`categories` None) build or load it into the
        state folder (e.g. the category bank file); for a check of the first `categories` classes
        (a finished tree, a preview, the server's first image) build it in memory, writing nothing."""
        return plan

    def packed_params(self, config: GenerationConfig, progress: bool = False) -> Dict[str, bytes]:
        """Files the submission zip ships in params/ besides config.json (params-relative path -> bytes)."""
        return {}

    def packed_config(self, config: GenerationConfig) -> GenerationConfig:
        """The config the zip ships as params/config.json (e.g. local file locations nulled: the
        server's `from_params` points them at params/)."""
        return config

    def from_params(self, config: GenerationConfig, params_dir: Path) -> GenerationConfig:
        """On the server: check the shipped params/ files and return the config that uses them."""
        return config

    def describe(self, config: GenerationConfig) -> str:
        """One line on the family's settings (pack's summary)."""
        return self.name

    def engine(self, plan: RunPlan) -> str:
        """What renders the images, for progress bars and reports."""
        return f"{self.name} on cpu"

    @abstractmethod
    def worker(self, plan: RunPlan) -> FamilyWorker:
        """A worker for a plan returned by `prepare`: it reads `plan.asset` and resolves nothing again."""
