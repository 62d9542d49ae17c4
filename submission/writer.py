"""One class is the unit of work: sample its views, render them in batches, augment, encode, write.

A `ClassWriter` lives in each worker process (or in the main process when workers == 1) and
owns that process's renderer, augmenter and category bank. Every image is written to a hidden
temporary name and renamed into place; the class's "done" marker is written last, so a class
without a marker is simply redone on the next run.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from .augment import build_image_augmenter
from .fileio import TMP_SUFFIX, make_dirs, write_atomic
from .fractal import CategoryBank
from .layout import class_dirname, image_filename
from .plan import RunPlan
from .pointcloud import augment_cloud, pad_views
from .render import create_renderer
from .seeding import STREAM_IMAGE_AUGMENT, STREAM_POINT_AUGMENT, int_seed, rng_for

STAGES = ("sampling", "rendering", "augmentation", "encoding")


class ClassWriter:
    """Generates whole classes of `plan`; one per process."""

    def __init__(self, plan: RunPlan, bank: CategoryBank):
        self.plan = plan
        self.bank = bank
        self.renderer = create_renderer(plan.backend, plan.render_settings())
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
        cloud = self.bank.point_cloud(category)
        seconds["sampling"] += time.perf_counter() - t0
        for start in range(0, cfg.images_per_class, cfg.batch_size):
            indices = range(start, min(start + cfg.batch_size, cfg.images_per_class))
            encoded = self.encode_images(category, indices, cloud, seconds)
            t0 = time.perf_counter()
            for j, data in zip(indices, encoded):
                write_atomic(class_dir / image_filename(cfg, category, j), data)
            seconds["encoding"] += time.perf_counter() - t0
        write_atomic(self.plan.done_dir / class_dirname(cfg, category), b"")
        return seconds

    def encode_images(self, category: int, indices: Sequence[int], cloud: Optional[np.ndarray] = None,
                      seconds: Optional[Dict[str, float]] = None) -> List[bytes]:
        """The encoded file bytes of images `indices` of `category` (one renderer batch); adds the
        time of each stage to `seconds` when given."""
        cfg = self.plan.config
        cloud = self.bank.point_cloud(category) if cloud is None else cloud
        t0 = time.perf_counter()
        views = [augment_cloud(cloud, cfg.point_augment, rng_for(cfg.seed, STREAM_POINT_AUGMENT, category, j))
                 for j in indices]
        t1 = time.perf_counter()
        images = self._render(views)
        t2 = time.perf_counter()
        augmented = [self.augment(image, int_seed(cfg.seed, STREAM_IMAGE_AUGMENT, category, j))
                     for image, j in zip(images, indices)]
        t3 = time.perf_counter()
        encoded = []
        for image, j in zip(augmented, indices):
            ok, data = cv2.imencode(self.ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), self.params)
            if not ok:
                raise RuntimeError(f"OpenCV failed to encode image {j} of class {category}")
            encoded.append(data.tobytes())
        if seconds is not None:
            for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3)):
                seconds[stage] += dt
        return encoded

    def _render(self, views: List) -> np.ndarray:
        """Pad views to one (B, N, 3) batch and render: (B, H, W, 3) uint8 RGB."""
        points, colors, lengths = pad_views(views)
        with torch.no_grad():
            images = self.renderer(torch.from_numpy(points), torch.from_numpy(colors), torch.from_numpy(lengths))
            return (images * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()


# Per-process worker slot for the process pool (set by `init_worker`, one per worker process).
_WORKER: Optional[ClassWriter] = None


def init_worker(plan: RunPlan, threads: int, parent_pid: int) -> None:
    global _WORKER
    # A pool worker outlives a parent killed with SIGKILL (it waits on its task queue forever):
    # watch the parent and leave with it.
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    torch.set_num_threads(threads)
    cv2.setNumThreads(1)
    _WORKER = ClassWriter(plan, CategoryBank.load(plan.bank_file))


def _exit_when_orphaned(parent_pid: int, poll_seconds: float = 1.0) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_seconds)
    os._exit(1)


def write_class_in_worker(category: int) -> Dict[str, float]:
    assert _WORKER is not None, "init_worker was not called in this process"
    return _WORKER.write_class(category)
