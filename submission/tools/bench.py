"""`python -m submission bench`: the renderers side by side on the same clouds, and a real generate.

Every backend renders the same augmented fractal views (default recipe, white half-alpha points)
in batches; the first call of each backend is a warm-up and is not timed. Parity compares the
first two backends' images. `--end-to-end` runs `run_generation` into a temporary directory with
the default recipe and reports each stage's time (summed over worker processes) and the wall
throughput. `--json` prints one JSON object instead of the tables.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
from tqdm import tqdm

from ..config import MAX_CLASSES, MAX_IMAGES_PER_CLASS, GenerationConfig
from ..errors import UserError
from ..families.fractal.bank import build_bank
from ..families.fractal.config import MAX_BATCH_BYTES, MAX_POINTS, FractalConfig, batch_bytes, max_batch
from ..families.fractal.pointcloud import augment_cloud, pad_views
from ..families.fractal.render import create_renderer, resolve_backend
from ..limits import MAX_IMAGE_SIZE, MAX_SEED, MIN_IMAGE_SIZE
from ..seeding import STREAM_POINT_AUGMENT, rng_for
from ..system import available_cores, resolve_device
from .options import field_help

HELP = ("Time the renderer backends on the same random fractal clouds (images/s, ms/image, parity), "
        "and with --end-to-end a real small `generate` with its per-stage breakdown.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=16, help="clouds rendered by every backend (default 16)")
    parser.add_argument("--points", type=int, default=FractalConfig.points, help=field_help("points"))
    parser.add_argument("--image-size", type=int, default=GenerationConfig.image_size, help=field_help("image_size"))
    parser.add_argument("--radius", type=float, default=FractalConfig.radius, help=field_help("radius"))
    parser.add_argument("--backends", default="splat,pytorch3d", help="comma-separated backends to time (default splat,pytorch3d)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=GenerationConfig.batch_size, help=field_help("batch_size"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the side-by-side timing (default 1: per-core figures, as generate "
                        "runs one single-threaded worker per core; OpenMP threads stall on a busy machine)")
    parser.add_argument("--min-seconds", type=float, default=3.0,
                        help="repeat passes of a fast backend until this much time is measured (default 3)")
    parser.add_argument("--seed", type=int, default=GenerationConfig.seed, help=field_help("seed"))
    parser.add_argument("--end-to-end", action="store_true", help="also run a real generate into a temporary directory")
    parser.add_argument("--e2e-classes", type=int, help="classes of the end-to-end dataset (default: one per worker)")
    parser.add_argument("--e2e-images-per-class", type=int, default=1000,
                        help="images per class end to end (default 1000, the contest's class size)")
    parser.add_argument("--bank", type=int, metavar="N",
                        help="also time building a category bank of N categories (the contest needs 1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (no tables, no progress bars)")


def run(args: argparse.Namespace) -> int:
    backends, device, e2e_config = _validate(args)
    torch.set_num_threads(args.threads)
    points, colors, lengths = bench_clouds(args.images, args.points, args.seed)
    progress = not args.json
    result: Dict[str, Any] = {"device": device, "threads": torch.get_num_threads(), "images": args.images,
                              "points": args.points, "image_size": args.image_size, "radius": args.radius,
                              "backends": {}, "parity": None, "end_to_end": None}
    outputs = {}
    for name in backends:
        renderer = create_renderer(name, image_size=args.image_size, radius=args.radius, device=device)
        seconds, outputs[name] = time_renderer(renderer, points, colors, lengths, args.batch_size, device, progress, name,
                                               min_seconds=args.min_seconds)
        result["backends"][name] = {"images_per_s": args.images / seconds, "ms_per_image": 1e3 * seconds / args.images}
    if len(backends) >= 2:
        diff = (outputs[backends[0]] - outputs[backends[1]]).abs()
        result["parity"] = {"between": backends[:2], "mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max()),
                            "differing_values": int((diff > 0).sum()), "values": diff.numel()}
        result["speedup"] = result["backends"][backends[0]]["images_per_s"] / result["backends"][backends[1]]["images_per_s"]
    if args.end_to_end:
        result["end_to_end"] = end_to_end(args, device, progress, e2e_config)
    if args.bank:
        start = time.perf_counter()
        build_bank(args.bank, seed=args.seed, points=args.points, progress=progress)
        result["bank"] = {"categories": args.bank, "points": args.points, "seconds": time.perf_counter() - start}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_report(result))
    return 0


MAX_MIN_SECONDS = 3600.0
MAX_THREADS = 1024


def _validate(args: argparse.Namespace) -> Tuple[List[str], str, Optional[GenerationConfig]]:
    """Check every option before any work, with generate's limits; returns the backends, the
    device and the end-to-end run's config (None without --end-to-end)."""
    for flag, value, low, high in (
            ("--images", args.images, 1, None), ("--points", args.points, 1, MAX_POINTS),
            ("--batch-size", args.batch_size, 1, None), ("--image-size", args.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
            ("--e2e-classes", 1 if args.e2e_classes is None else args.e2e_classes, 1, MAX_CLASSES),
            ("--e2e-images-per-class", args.e2e_images_per_class, 1, MAX_IMAGES_PER_CLASS), ("--seed", args.seed, 0, MAX_SEED),
            ("--threads", args.threads, 1, MAX_THREADS), ("--bank", 1 if args.bank is None else args.bank, 1, MAX_CLASSES)):
        if value < low:
            raise UserError(f"{flag} must be at least {low}, got {value}")
        if high is not None and value > high:
            raise UserError(f"{flag} must be at most {high}, got {value}")
    # Every backend keeps all --images clouds and images in memory at once (for the parity figures).
    if batch_bytes(args.images, args.image_size, args.points) > MAX_BATCH_BYTES:
        raise UserError(f"--images {args.images} at {args.image_size} px and {args.points} points needs about "
                        f"{batch_bytes(args.images, args.image_size, args.points) / 2**30:.1f} GiB per backend "
                        f"(at most {MAX_BATCH_BYTES >> 30} GiB); use --images {max_batch(args.image_size, args.points)} or less")
    if not (math.isfinite(args.min_seconds) and 0 <= args.min_seconds <= MAX_MIN_SECONDS):
        raise UserError(f"--min-seconds must be in [0, {MAX_MIN_SECONDS:g}], got {args.min_seconds}")
    if not 0 < args.radius < 1:
        raise UserError(f"--radius must be in (0, 1) NDC units, got {args.radius} (e.g. 0.015)")
    device = resolve_device(args.device)
    backends = [resolve_backend(b.strip()) for b in args.backends.split(",") if b.strip()]
    if not backends or len(set(backends)) != len(backends):
        raise UserError(f"--backends must list distinct backends separated by commas, got {args.backends!r} (e.g. splat,pytorch3d)")
    return backends, device, (_e2e_config(args, device) if args.end_to_end else None)


def _e2e_config(args: argparse.Namespace, device: str) -> GenerationConfig:
    """The end-to-end run's config (validated like generate's: its batch size must fit in memory too)."""
    from ..plan import default_worker_count

    return GenerationConfig(classes=args.e2e_classes or default_worker_count(device, available_cores()),
                            images_per_class=args.e2e_images_per_class, image_size=args.image_size,
                            seed=args.seed, device=device, batch_size=args.batch_size).replace(points=args.points,
                                                                                              radius=args.radius)


def bench_clouds(n_images: int, n_points: int, seed: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augmented views of random fractal categories (default recipe), padded:
    points (B, N, 3) float32, colors (B, N, 4) float32, lengths (B,) int64."""
    n_categories = min(n_images, 8)  # a few categories are enough; views differ by augmentation
    default = GenerationConfig().fractal
    bank = build_bank(n_categories, seed=seed, points=n_points, normalization=default.normalization)
    clouds = [bank.point_cloud(c) for c in range(n_categories)]
    cfg = default.point_augment
    views = [augment_cloud(clouds[i % n_categories], cfg, rng_for(seed, STREAM_POINT_AUGMENT, i % n_categories, i))
             for i in range(n_images)]
    return tuple(torch.from_numpy(array) for array in pad_views(views))


def time_renderer(renderer, points: torch.Tensor, colors: torch.Tensor, lengths: torch.Tensor, batch_size: int,
                  device: str, progress: bool, name: str, min_seconds: float = 3.0) -> Tuple[float, torch.Tensor]:
    """Mean seconds per pass over all clouds (in batches, after a one-cloud warm-up; fast backends
    repeat passes until `min_seconds` have gone by), and the (B, H, W, 3) images on CPU."""
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.no_grad():
        renderer(points[:1].to(device), colors[:1].to(device), lengths[:1].to(device))
        batches = [(points[i:i + batch_size].to(device), colors[i:i + batch_size].to(device), lengths[i:i + batch_size].to(device))
                   for i in range(0, points.shape[0], batch_size)]
        sync()
        passes, elapsed = 0, 0.0
        bar = tqdm(desc=f"render {name}", unit="img", disable=not progress, file=sys.stderr)
        while passes == 0 or elapsed < min_seconds:
            images = []
            start = time.perf_counter()
            for batch in batches:
                images.append(renderer(*batch))
                bar.update(batch[0].shape[0])
            sync()
            elapsed += time.perf_counter() - start
            passes += 1
        bar.close()
    return elapsed / passes, torch.cat(images).cpu()


def end_to_end(args: argparse.Namespace, device: str, progress: bool,
               config: Optional[GenerationConfig] = None) -> Dict[str, Any]:
    """A real `run_generation` of a small default-recipe dataset in a temporary directory."""
    from ..pipeline import run_generation

    config = _e2e_config(args, device) if config is None else config
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        report = run_generation(f"{tmp}/dataset", config, progress=progress)
    stages = {name: {"seconds": s, "ms_per_image": 1e3 * s / report.images,
                     "images_per_s_per_worker": report.images / s if s > 0 else None}
              for name, s in report.stage_seconds.items()}
    busy = sum(report.stage_seconds.values()) / report.workers  # per worker, process start-up excluded
    return {"images": report.images, "seconds": report.seconds, "images_per_s": report.images_per_s,
            "steady_images_per_s": report.images / busy if busy > 0 else None,
            "backend": resolve_backend(config.fractal.backend), "device": report.device, "workers": report.workers,
            "image_format": config.image_format, "stages": stages}


def format_report(result: Dict[str, Any]) -> str:
    """The human-readable tables of a `run` result."""
    lines = [f"device {result['device']} ({result['threads']} torch threads); {result['images']} fractal views, "
             f"{result['points']} points, {result['image_size']} px, radius {result['radius']}",
             f"{'backend':<12}{'images/s':>12}{'ms/image':>12}"]
    for name, row in result["backends"].items():
        lines.append(f"{name:<12}{row['images_per_s']:>12.2f}{row['ms_per_image']:>12.2f}")
    parity = result["parity"]
    if parity:
        a, b = parity["between"]
        lines.append(f"{a} is {result['speedup']:.1f}x {b}; parity {a} vs {b}: mean |diff| {parity['mean_abs_diff']:.3g}, "
                     f"max |diff| {parity['max_abs_diff']:.3g} ({parity['differing_values']} of {parity['values']} values differ)")
    e2e = result["end_to_end"]
    if e2e:
        lines.append(f"end to end: {e2e['images']} images ({e2e['image_format']}) with {e2e['backend']} on {e2e['device']}, "
                     f"{e2e['workers']} workers: {e2e['images_per_s']:.1f} images/s ({e2e['seconds']:.1f} s wall); "
                     f"{e2e['steady_images_per_s'] or 0:.1f} images/s counting only the stages (no process start-up)")
        lines.append(f"  {'stage':<14}{'s (all workers)':>16}{'ms/image':>10}{'images/s/worker':>17}")
        for name, row in e2e["stages"].items():
            rate = row["images_per_s_per_worker"]
            lines.append(f"  {name:<14}{row['seconds']:>16.2f}{row['ms_per_image']:>10.2f}{rate if rate else 0:>17.1f}")
    bank = result.get("bank")
    if bank:
        lines.append(f"category bank: {bank['categories']} categories of {bank['points']} points built in {bank['seconds']:.1f} s "
                     f"(one process)")
    return "\n".join(lines)
