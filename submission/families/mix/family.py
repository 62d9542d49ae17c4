"""The mix family (issue 29, lever 3): other recipes' images, by classes or blended (config.py).

The main process prepares each component's family into the state folder's component<k>/ (e.g. the
fractal bank); a worker holds every component's family worker and its baked image augmenter, and
turns each component image into the bytes its recipe would write (augmented, channel order) before
resizing it to the mix's size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np

from ...augment import build_image_augmenter
from ...config import GenerationConfig
from ...errors import UserError
from ...fileio import make_dirs
from ...plan import RunPlan
from ...seeding import STREAM_IMAGE_AUGMENT, int_seed
from .. import create_family
from ..base import Family, FamilyWorker
from .components import Component, component_dirname, components, locate


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (size, size, 3): INTER_AREA to shrink, INTER_CUBIC to enlarge, as is when equal."""
    if image.shape[0] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


class MixFamily(Family):
    name = "mix"

    def check(self, config: GenerationConfig) -> None:
        # A component's family that is missing or not installed fails here; on the server each
        # component is checked against its packed files (mix.params_dir), as it will run.
        for part in components(config, with_params=True):
            create_family(part.config.family).check(part.config)

    def prepare(self, plan: RunPlan, progress: bool = False, categories: Optional[int] = None) -> RunPlan:
        assets = []
        for part in components(plan.config, with_params=True):
            family = create_family(part.config.family)
            sub = plan.replace(config=part.config, asset=None)
            if categories is not None:  # a check of the first classes: in memory, writing nothing
                assets.append(family.prepare(sub, categories=min(categories, part.config.classes)).asset)
                continue
            sub = sub.replace(output_dir=plan.state_dir / component_dirname(part.index))
            make_dirs(sub.state_dir)
            assets.append(family.prepare(sub, progress).asset)
        return plan.replace(asset=tuple(assets))

    def packed_params(self, config: GenerationConfig, progress: bool = False) -> Dict[str, bytes]:
        files = {}
        for part in components(config):
            family = create_family(part.config.family)
            for name, data in family.packed_params(part.config, progress).items():
                files[f"{component_dirname(part.index)}/{name}"] = data
        return files

    def from_params(self, config: GenerationConfig, params_dir: Path) -> GenerationConfig:
        if config.mix.params_dir is not None:
            raise UserError(f"mix.params_dir must be null in the packed config, got {config.mix.params_dir!r}; "
                            "re-pack with `python -m submission pack`")
        config = config.replace(params_dir=str(params_dir))
        components(config, with_params=True)  # each component checks its packed files now
        return config

    def describe(self, config: GenerationConfig) -> str:
        parts = ", ".join(f"{p.recipe} {p.share:g} ({p.config.image_size} px)" for p in components(config))
        return f"mix by {config.mix.mode}: {parts}, resized to {config.image_size} px"

    def engine(self, plan: RunPlan) -> str:
        return f"mix on {plan.device}"

    def worker(self, plan: RunPlan) -> "MixWorker":
        if not isinstance(plan.asset, tuple):
            raise ValueError("the mix family's worker reads the assets of a prepared plan: call prepare first")
        parts = components(plan.config, with_params=True)
        workers = [create_family(p.config.family).worker(plan.replace(config=p.config, asset=asset))
                   for p, asset in zip(parts, plan.asset)]
        return MixWorker(plan.config, parts, workers)


class MixWorker(FamilyWorker):
    def __init__(self, config: GenerationConfig, parts: List[Component], workers: List[FamilyWorker]):
        self.config = config
        self.parts = parts
        self.workers = workers
        self.augmenters = [build_image_augmenter(p.config.image_augment) if p.config.image_augment.enabled else None
                           for p in parts]

    def class_context(self, category: int) -> Any:
        """[(component index, its class, its class context)]: one for "classes", every component for "blend"."""
        if self.config.mix.mode == "classes":
            part, local = locate(self.parts, category)
            return [(part.index, local, self.workers[part.index].class_context(local))]
        return [(p.index, category, self.workers[p.index].class_context(category)) for p in self.parts]

    def component_images(self, index: int, category: int, indices: Sequence[int], context: Any,
                         seconds: Optional[Dict[str, float]]) -> np.ndarray:
        """(B, S, S, 3) uint8: component `index`'s images as its recipe writes them, resized to the mix's size S."""
        part, augment = self.parts[index], self.augmenters[index]
        images = self.workers[index].render(category, indices, context, seconds)
        out = []
        for image, j in zip(images, indices):
            if augment is not None:
                image = augment(image, int_seed(part.config.seed, STREAM_IMAGE_AUGMENT, category, j))
            if part.config.channel_order == "bgr":  # the recipe writes red and blue swapped: so does the mix
                image = image[:, :, ::-1]
            out.append(resize(np.ascontiguousarray(image), self.config.image_size))
        return np.stack(out)

    def render(self, category: int, indices: Sequence[int], context: Any,
               seconds: Optional[Dict[str, float]] = None) -> np.ndarray:
        if self.config.mix.mode == "classes":
            index, local, sub_context = context[0]
            return self.component_images(index, local, indices, sub_context, seconds)
        total = None
        for index, local, sub_context in context:
            images = self.component_images(index, local, indices, sub_context, seconds).astype(np.float32)
            weighted = images * np.float32(self.parts[index].share)
            total = weighted if total is None else total + weighted
        return np.clip(np.rint(total), 0, 255).astype(np.uint8)
