"""`python -m local_eval timing --preset P`: a preset's cost from a few timed batches.

Times a few training steps of the preset's model at its batch size (pre-training and fine-tuning
heads), a test batch, and PNG decoding + the pre-training transform of a noise image of the given
size, then
multiplies by the step counts the preset takes from a dataset of the given shape. Nothing is
trained to the end; the estimate is for this machine as loaded now (one number per torch thread
count: on shared cores, one thread is often faster; set OMP_NUM_THREADS=1 for the run then). A GPU preset (kit-mobilenet-gpu) is not timed on the
CPU: its cost as sized for one H200-class GPU is printed instead (presets.GPU_ESTIMATES).
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from submission.errors import UserError
from submission.tools.command import OneLineParser, run_command

from ..augment.transforms import pretrain_transform
from ..core.config import EvalConfig
from ..core.limits import TIMING_BOUNDS, check_bound
from ..core.presets import PRESETS, preset_config
from ..train.models import create_model


def _clock(fn: Callable[[], None], repeats: int) -> Tuple[float, float]:
    """(wall, CPU) seconds per call of `fn`, after one warm-up call. CPU seconds are what an
    idle machine would take with one thread: on shared cores the wall clock also counts the
    time the other processes hold the cores."""
    fn()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def _train_step(config: EvalConfig, classes: int, batch: int) -> Callable[[], None]:
    model = create_model(config, classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = torch.randn(batch, 3, config.img_size, config.img_size)  # (B, 3, S, S) float32
    labels = torch.randint(0, classes, (batch,))  # (B,) int64

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def estimate(config: EvalConfig, classes: int, images_per_class: int, image_size: int,
             downstream_classes: int, train_per_class: int, test_per_class: int,
             repeats: int = 3) -> Dict[str, Any]:
    """(wall, CPU) seconds per piece and the totals for one run in one process."""
    if image_size < config.img_size and config.pretrain_crop == "random_crop":
        raise UserError(f"--image-size {image_size} is smaller than the {config.img_size} px crop")
    pre_classes = min(classes, config.pretrain_classes or classes)
    pre_images = pre_classes * min(images_per_class, config.pretrain_images_per_class or
                                   images_per_class)
    ft_classes = min(downstream_classes, config.finetune_classes or downstream_classes)
    ft_train = ft_classes * min(train_per_class, config.finetune_train_per_class or
                                train_per_class)
    ft_test = ft_classes * min(test_per_class, config.finetune_test_per_class or test_per_class)
    pre_steps = pre_images // config.pretrain_batch_size * config.pretrain_epochs
    ft_steps = ft_train // config.finetune_batch_size * config.finetune_epochs
    test_batches = -(-ft_test // (2 * config.finetune_batch_size)) * config.finetune_epochs
    pixels = np.random.default_rng(0).integers(0, 256, (image_size, image_size, 3),
                                               dtype=np.uint8)  # (S, S, 3) uint8
    transform = pretrain_transform(config)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")  # noise: the slowest PNG to decode
    png = buffer.getvalue()

    def load() -> None:
        with Image.open(io.BytesIO(png)) as image:
            transform(image.convert("RGB"))

    seconds = {
        "pretrain_step": _clock(_train_step(config, pre_classes, config.pretrain_batch_size),
                                repeats),
        "finetune_step": _clock(_train_step(config, ft_classes, config.finetune_batch_size),
                                repeats),
        "transform_per_image": _clock(load, 20),
    }
    model = create_model(config, ft_classes).eval()
    test_images = torch.randn(2 * config.finetune_batch_size, 3, config.img_size, config.img_size)
    with torch.no_grad():
        seconds["test_batch"] = _clock(lambda: model(test_images), repeats)
    counts = {"pretrain_step": pre_steps, "finetune_step": ft_steps, "test_batch": test_batches,
              "transform_per_image": pre_images * config.pretrain_epochs}
    totals = [sum(counts[k] * seconds[k][i] for k in counts if k != "transform_per_image")
              for i in (0, 1)]  # (wall, CPU) in the model
    transforms = [counts["transform_per_image"] * seconds["transform_per_image"][i]
                  for i in (0, 1)]
    return {"seconds": seconds, "counts": counts, "model_total": totals,
            "transform_total": transforms}


def gpu_cost(preset: str, downstream_classes: int = 10, seeds: int = 3) -> Optional[str]:
    """The stated cost of a GPU preset (local_eval.core.presets.GPU_ESTIMATES): one run, and
    `compare --calibrate image_augment --seeds 3`; None for the other presets."""
    from ..compare.calibration import published
    from ..core.presets import GPU_ESTIMATES, gpu_image_counts, gpu_run_seconds

    if preset not in GPU_ESTIMATES:
        return None
    rate = GPU_ESTIMATES[preset]
    counts = gpu_image_counts(preset_config(preset), downstream_classes)
    pretrain, finetune, test = counts["pretrain"], counts["finetune"], counts["test"]
    seconds = gpu_run_seconds(preset, downstream_classes)
    runs = len(published("image_augment")) * seeds
    return (f"{preset} (estimate, not measured): {pretrain:,} pre-training + {finetune:,} "
            f"fine-tuning images at {rate.train_images_per_s:,.0f}/s, {test:,} test images at "
            f"{rate.test_images_per_s:,.0f}/s, {rate.overhead_s:.0f} s overhead -> "
            f"{seconds / 60:.1f} min per run; compare --calibrate image_augment --seeds {seeds} "
            f"({runs} runs) -> {runs * seconds / 60:.0f} min, dataset generation not counted. "
            f"Assumes {rate.assumption}.")


def main(argv: Optional[List[str]] = None) -> int:
    parser = OneLineParser(prog="python -m local_eval timing", description=__doc__)
    parser.add_argument("--preset", default="kit-mobilenet-cpu", choices=PRESETS)
    parser.add_argument("--classes", type=int, default=100, help="generated classes")
    parser.add_argument("--images-per-class", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=224, help="generated image size")
    parser.add_argument("--downstream", type=str, default="10x300x100",
                        help="CLASSESxTRAINxTEST per class (default: 10x300x100, 4,000 images)")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to time")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    return run_command(lambda: _time(args))


def _counts(text: str, flag: str, separator: str) -> Tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(separator))
    except ValueError:
        raise UserError(f"{flag} {text!r} is not whole numbers separated by {separator!r}") from None


def _check(args: argparse.Namespace) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """(downstream shape, thread counts), every number within its bound (core.limits)."""
    shape = _counts(args.downstream, "--downstream", "x")
    if len(shape) != 3:
        raise UserError(f"--downstream {args.downstream!r} is not CLASSESxTRAINxTEST")
    thread_counts = _counts(args.threads, "--threads", ",")
    for flag in ("--classes", "--images-per-class", "--image-size", "--repeats"):
        check_bound(flag, getattr(args, flag[2:].replace("-", "_")), TIMING_BOUNDS[flag])
    for value, what in zip(shape, ("classes", "train images per class", "test images per class")):
        check_bound(f"--downstream {what}", value, TIMING_BOUNDS[f"--downstream {what}"])
    for count in thread_counts:
        check_bound("--threads", count, TIMING_BOUNDS["--threads"])
    return shape, thread_counts


def _time(args: argparse.Namespace) -> int:
    shape, thread_counts = _check(args)
    stated = gpu_cost(args.preset, downstream_classes=shape[0])
    if stated is not None:  # a GPU preset: CPU step times say nothing of its cost
        print(stated)
        return 0
    config = preset_config(args.preset)
    for threads in thread_counts:
        torch.set_num_threads(threads)
        result = estimate(config, args.classes, args.images_per_class, args.image_size,
                          *shape, repeats=args.repeats)
        counts, seconds = result["counts"], result["seconds"]
        for index, what in ((0, "wall now"), (1, "CPU")):
            pieces = ", ".join(f"{counts[k]} x {k.replace('_', ' ')} {seconds[k][index]:.3f} s"
                               for k in counts)
            print(f"{args.preset}, {threads} torch thread(s), {what}: {pieces} -> model "
                  f"{result['model_total'][index] / 60:.1f} min + loading "
                  f"{result['transform_total'][index] / 60:.1f} min (in loader workers, "
                  f"overlapping)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
