"""The 3D fractal family (the 4th-place 3D-OFDB recipe): one IFS point cloud per class, a random
view of it per image, rendered as alpha-composited spheres (see bank.py, pointcloud.py, render/).

Its one asset is the category bank (the accepted IFS parameters of the config's seed): built once
per run into the state folder, shipped in a submission as params/bank.npz, or given by --bank.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ...config import GenerationConfig
from ...errors import UserError
from ...fileio import restamp_zip
from ...plan import RunPlan
from ...seeding import STREAM_BACKGROUND, STREAM_INSTANCES, STREAM_POINT_AUGMENT, rng_for
from ..base import Family, FamilyWorker
from .backgrounds import background_image
from .bank import CategoryBank
from .instances import compose_instances, instance_count
from .perturb import perturbed_clouds
from .pointcloud import augment_cloud, pad_views
from .render import RenderSettings, create_renderer, resolve_backend

BANK_FILE = "bank.npz"


class FractalFamily(Family):
    name = "fractal"

    def check(self, config: GenerationConfig) -> None:
        resolve_backend(config.fractal.backend)  # an unknown name fails before anything is written
        bank_path = config.fractal.bank_path
        if bank_path is not None:
            CategoryBank.load(bank_path).check_fits(config, source=f"category bank {bank_path}")

    def prepare(self, plan: RunPlan, progress: bool = False, categories: Optional[int] = None) -> RunPlan:
        """The bank the workers read: the configured one, or (for a run) one built once into the
        state folder (rebuilt when the saved one is unreadable or does not fit: it is only a cache),
        or (for a check) the first `categories` classes' bank in memory."""
        config = plan.config
        if config.fractal.bank_path is not None:
            return plan.replace(asset=Path(config.fractal.bank_path))  # checked by `check` before anything was written
        if categories is not None:
            return plan.replace(asset=CategoryBank.for_config(config, categories=categories))
        path = plan.state_dir / BANK_FILE
        if path.exists():
            try:
                CategoryBank.load(path).check_fits(config)
                return plan.replace(asset=path)
            except UserError:
                pass
        CategoryBank.for_config(config, progress=progress).save(path)
        return plan.replace(asset=path)

    def packed_params(self, config: GenerationConfig, progress: bool = False) -> Dict[str, bytes]:
        if config.fractal.bank_path is not None:
            raise UserError("pack builds and ships its own category bank from --seed; drop --bank")
        # numpy stamps the current time into the npz (a zip): re-stamp it so packs are byte-identical
        return {BANK_FILE: restamp_zip(CategoryBank.for_config(config, progress=progress).to_bytes())}

    def from_params(self, config: GenerationConfig, params_dir: Path) -> GenerationConfig:
        bank_file = params_dir / BANK_FILE
        if config.fractal.bank_path is not None:
            raise UserError(f"bank_path must be null in the packed config (the bank is params/{BANK_FILE}), "
                            f"got {config.fractal.bank_path!r}; re-pack with `python -m submission pack`")
        if not bank_file.is_file():
            raise UserError(f"{bank_file} is missing; re-pack with `python -m submission pack`")
        config = config.replace(bank_path=str(bank_file))
        self.check(config)
        return config

    def describe(self, config: GenerationConfig) -> str:
        fc = config.fractal
        return (f"fractal: {fc.points} points per category, radius {fc.radius}, {fc.points_per_pixel} "
                f"points per pixel, camera distance {fc.camera_distance}, fov {fc.fov_degrees}, "
                f"point augmentation {'on' if fc.point_augment.enabled else 'off'}, backend {fc.backend}"
                + (f", IFS perturbed per image by {fc.perturb_delta:g}" if fc.perturb_delta > 0 else "")
                + (f", 1-{fc.instances} {fc.instance_color} instances per image" if fc.instances > 0 else ""))

    def engine(self, plan: RunPlan) -> str:
        return f"{resolve_backend(plan.config.fractal.backend)} on {plan.device}"

    def worker(self, plan: RunPlan) -> "FractalWorker":
        if isinstance(plan.asset, CategoryBank):
            return FractalWorker(plan, plan.asset)
        if plan.asset is None:
            raise ValueError("the fractal family's worker reads the category bank of a prepared plan: call prepare first")
        return FractalWorker(plan, CategoryBank.load(plan.asset))


class FractalWorker(FamilyWorker):
    """Samples views of a class's cloud and renders them in one batch with the plan's renderer.

    With point_augment.background other than "black", each image is composited over its own
    background after rendering: `out = rendered + (1 - coverage) * background`, the coverage being
    the rendered image's largest channel. The renderer composites over black, so for white points
    that channel is exactly the compositor's alpha (1 - transmittance) and this is the "over"
    operator; for coloured points it is a close stand-in (each point colour has a channel at 1).
    """

    def __init__(self, plan: RunPlan, bank: CategoryBank):
        self.config = plan.config
        self.bank = bank
        settings = RenderSettings.from_config(plan.config, device=plan.device)
        self.renderer = create_renderer(plan.config.fractal.backend, settings)

    def class_context(self, category: int) -> np.ndarray:
        return self.bank.point_cloud(category)  # (points, 3) float32

    def views(self, category: int, indices: Sequence[int], context: np.ndarray) -> List[Tuple[np.ndarray, np.ndarray]]:
        """The (points, colors) each image of `indices` renders: a view of the class's cloud, or (with
        perturb_delta) of the image's own perturbed IFS, or (with instances) several views joined."""
        cfg, fc = self.config, self.config.fractal
        clouds: Sequence[np.ndarray] = [context] * len(indices)
        if fc.perturb_delta > 0:
            clouds = perturbed_clouds(cfg.seed, category, indices, self.bank.maps[category], fc.perturb_delta,
                                      fc.points, fc.normalization, context)
        if fc.instances == 0:  # the 4th place's one view per image (the published recipes' draws)
            return [augment_cloud(cloud, fc.point_augment, rng_for(cfg.seed, STREAM_POINT_AUGMENT, category, j))
                    for cloud, j in zip(clouds, indices)]
        views = []
        for cloud, j in zip(clouds, indices):
            rng = rng_for(cfg.seed, STREAM_INSTANCES, category, j)
            parts = [augment_cloud(cloud, fc.point_augment, rng_for(cfg.seed, STREAM_POINT_AUGMENT, category, j, k))
                     for k in range(instance_count(fc, rng))]
            views.append(compose_instances(parts, fc, rng))
        return views

    def render(self, category: int, indices: Sequence[int], context: Any,
               seconds: Optional[Dict[str, float]] = None) -> np.ndarray:
        cfg = self.config
        point_augment = cfg.fractal.point_augment
        t0 = time.perf_counter()
        views = self.views(category, indices, context)
        points, colors, lengths = pad_views(views)
        background = point_augment.background
        if background != "black":
            backgrounds = torch.from_numpy(np.stack([
                background_image(background, cfg.image_size, rng_for(cfg.seed, STREAM_BACKGROUND, category, j),
                                 point_augment.background_style)
                for j in indices]))  # (B, H, W, 3) float32
        t1 = time.perf_counter()
        with torch.no_grad():
            images = self.renderer(torch.from_numpy(points), torch.from_numpy(colors), torch.from_numpy(lengths))
            if background != "black":
                coverage = images.amax(dim=-1, keepdim=True)
                images = images + (1.0 - coverage) * backgrounds.to(images.device)
            images = (images * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()
        if seconds is not None:
            seconds["sampling"] += t1 - t0
            seconds["rendering"] += time.perf_counter() - t1
        return images
