"""One class is the unit of work: its family renders images in batches, then augment, encode, write.

A `ClassWriter` lives in each worker process (or in the main process when workers == 1) and
owns that process's family worker (renderer, category bank, ...) and augmenter. Every image is
written to a hidden temporary name and renamed into place; the class's "done" marker is written
last, so a class without a marker is simply redone on the next run.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

import cv2
import torch

from .augment import build_image_augmenter
from .families import create_family
from .families.base import Family, FamilyWorker
from .fileio import TMP_SUFFIX, make_dirs, write_atomic
from .layout import class_dirname, image_filename
from .plan import RunPlan
from .seeding import STREAM_IMAGE_AUGMENT, int_seed

STAGES = ("sampling", "rendering", "augmentation", "encoding")


class ClassWriter:
    """Generates whole classes of `plan`; one per process."""

    def __init__(self, plan: RunPlan, images: FamilyWorker):
        self.plan = plan
        self.images = images
        self.augment = build_image_augmenter(plan.config.image_augment)
        if plan.config.image_format == "png":
            self.ext, self.params = ".png", [cv2.IMWRITE_PNG_COMPRESSION, 1]
        else:
            self.ext, self.params = ".jpg", [cv2.IMWRITE_JPEG_QUALITY, plan.config.jpeg_quality]

    def write_class(self, category: int) -> Dict[str, float]:
        """Write every image of `category` and then its done marker; returns seconds per stage."""
        cfg = self.plan.config
        seconds = dict.fromkeys(STAGES, 0.0)
        class_dir = self.plan.output_dir / class_dirname(cfg, category)
        make_dirs(class_dir)
        for stale in class_dir.glob(f".*{TMP_SUFFIX}"):  # left by a killed run
            stale.unlink()
        t0 = time.perf_counter()
        context = self.images.class_context(category)
        seconds["sampling"] += time.perf_counter() - t0
        for start in range(0, cfg.images_per_class, cfg.batch_size):
            indices = range(start, min(start + cfg.batch_size, cfg.images_per_class))
            encoded = self.encode_images(category, indices, context, seconds)
            t0 = time.perf_counter()
            for j, data in zip(indices, encoded):
                write_atomic(class_dir / image_filename(cfg, category, j), data)
            seconds["encoding"] += time.perf_counter() - t0
        write_atomic(self.plan.done_dir / class_dirname(cfg, category), b"")
        return seconds

    def encode_images(self, category: int, indices: Sequence[int], context: Any = None,
                      seconds: Optional[Dict[str, float]] = None) -> List[bytes]:
        """The encoded file bytes of images `indices` of `category` (one renderer batch); adds the
        time of each stage to `seconds` when given."""
        cfg = self.plan.config
        context = self.images.class_context(category) if context is None else context
        images = self.images.render(category, indices, context, seconds)  # (B, H, W, 3) uint8
        t2 = time.perf_counter()
        augmented = [self.augment(image, int_seed(cfg.seed, STREAM_IMAGE_AUGMENT, category, j))
                     for image, j in zip(images, indices)]
        t3 = time.perf_counter()
        encoded = []
        for image, j in zip(augmented, indices):
            # OpenCV encodes BGR arrays: converting stores the colours drawn; channel_order "bgr"
            # skips it, so red and blue are swapped on disk (the 4th place's cv2.imwrite of RGB).
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if cfg.channel_order == "rgb" else image
            ok, data = cv2.imencode(self.ext, bgr, self.params)
            if not ok:
                raise RuntimeError(f"OpenCV failed to encode image {j} of class {category}")
            encoded.append(data.tobytes())
        if seconds is not None:
            seconds["augmentation"] += t3 - t2
            seconds["encoding"] += time.perf_counter() - t3
        return encoded


def create_class_writer(plan: RunPlan, family: Family) -> ClassWriter:
    """A writer of `plan` (prepared by `family.prepare`) with the family's worker."""
    return ClassWriter(plan, family.worker(plan))


# Per-process worker slot for the process pool (set by `init_worker`, one per worker process).
_WORKER: Optional[ClassWriter] = None


def init_worker(plan: RunPlan) -> None:
    """Build this worker process's `ClassWriter` (called by `worker_process.start_worker`)."""
    global _WORKER
    torch.set_num_threads(plan.threads)
    cv2.setNumThreads(1)
    _WORKER = create_class_writer(plan, create_family(plan.config.family))  # this process's one family object


def write_class_in_worker(category: int) -> Dict[str, float]:
    assert _WORKER is not None, "init_worker was not called in this process"
    return _WORKER.write_class(category)
