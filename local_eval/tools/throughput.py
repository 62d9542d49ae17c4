"""`python -m local_eval throughput --data DIR`: pre-training images/s, the model and the data apart.

Model: the preset's network, optimizer, Mixup/CutMix and loss stepping on one batch that already
sits on the device, so no loading is counted; once per variant (fp32; bf16 autocast, as
`local_eval` trains on CUDA; bf16 + channels-last; bf16 + torch.compile). Data: the real
pre-training loader over DIR (PNG decoding, the preset's transform, collation) with each worker
count, no model; with `--loader store` (the default, as in training) the image store's uint8
batches (built first when missing) plus the augmentation: batched on the GPU, or on a CPU in the
loader workers (per sample in PIL where the chain resamples: local_eval.augment.host). A real
epoch runs at about the smaller of the two; the report says which caps
it. `--variants none` times the loader alone.
The first batches (worker start, compilation) are warm-up and are not timed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

from submission.errors import UserError
from submission.tools.command import OneLineParser, run_command

from ..core.distributed import Runtime, resolve_device
from ..core.limits import CONFIG_BOUNDS, THROUGHPUT_STEPS, THROUGHPUT_WARMUP, WORKERS, check_bound
from ..core.presets import PRESETS, build_config
from ..datasets.common import load_pretrain_data
from ..train.loop import autocast, make_loader
from ..train.phases import pretrain_spec

VARIANTS = ("fp32", "bf16", "bf16-channels-last", "bf16-compile")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step: Callable[[], None], images_per_step: int, device: torch.device, warmup: int,
          steps: int) -> float:
    """Images per second of `step`, after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    began = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    return images_per_step * steps / (time.perf_counter() - began)


def check_variant(variant: str, device: torch.device) -> None:
    if variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}; known variants: {', '.join(VARIANTS)}")
    if variant != "fp32" and device.type != "cuda":
        raise UserError(f"variant {variant} needs CUDA (local_eval uses bf16 autocast on CUDA only)")


def model_rate(spec, classes: int, batch: int, image_size: int, device: torch.device,
               variant: str, warmup: int, steps: int) -> float:
    """Training images/s of the pre-training step alone, on a batch already on `device`."""
    check_variant(variant, device)
    bf16 = variant != "fp32"
    model = spec.model.to(device)
    memory_format = torch.channels_last if variant == "bf16-channels-last" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    trained = torch.compile(model) if variant == "bf16-compile" else model
    optimizer = spec.make_optimizer(model)
    images = torch.randn(batch, 3, image_size, image_size, device=device).contiguous(
        memory_format=memory_format)  # (B, 3, S, S) float32
    labels = torch.randint(0, classes, (batch,), device=device)  # (B,) int64

    def step() -> None:
        inputs, targets = (spec.mixup(images, labels) if spec.mixup is not None
                           else (images, labels))
        with autocast(Runtime(device), bf16):
            loss = spec.criterion(trained(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return _rate(step, batch, device, warmup, steps)


def data_rate(dataset, batch: int, device: torch.device, workers: int, warmup: int,
              steps: int) -> float:
    """Images/s of the pre-training loader alone (decode, transform, collate; pinned on CUDA,
    as training loads) with `workers`."""
    loader = make_loader(dataset, batch, Runtime(device, workers=workers),
                     sampler=torch.utils.data.RandomSampler(dataset), drop_last=True)
    available = len(loader)
    if available < 2:  # one untimed batch, one timed
        raise UserError(f"--data holds {len(dataset)} images: too few for a batch of {batch}")
    warmup = min(warmup, available - 1)
    steps = min(steps, available - warmup)
    batches = iter(loader)
    for _ in range(warmup):
        next(batches)
    began = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return batch * steps / (time.perf_counter() - began)


def store_rate(dataset, config, batch: int, device: torch.device, workers: int, warmup: int,
               steps: int) -> float:
    """Images/s of the store path alone: batches gathered from the memory map by the workers,
    copied to `device` and augmented as training does (store.loader.store_augmentation), the
    training process's part included."""
    from ..augment.device import build_device_transform
    from ..augment.host import build_host_transform
    from ..store.loader import DevicePrefetcher, store_augmentation, store_loader

    augmentation = store_augmentation(device, build_device_transform(config, "pretrain"),
                                      build_host_transform(config))
    loader = store_loader(dataset, batch, 0, 1, config.seed, workers, device, augmentation.worker)
    available = len(loader)
    if available < 2:  # one untimed batch, one timed
        raise UserError(f"--data holds {len(dataset)} images: too few for a batch of {batch}")
    warmup = min(warmup, available - 1)
    steps = min(steps, available - warmup)
    loader.sampler.set_epoch(0, config.seed)
    batches = iter(DevicePrefetcher(iter(loader), device))

    def step() -> None:
        images, _, seed = next(batches)
        augmentation.finish(images, seed)

    return _rate(step, batch, device, warmup, steps)


def measure(data: Path, preset: str, device: torch.device, batch: Optional[int],
            variants: List[str], workers: List[int], warmup: int, steps: int,
            progress: Callable[[str], None] = lambda line: None,
            loader: str = "store") -> Dict[str, Any]:
    config = build_config(preset, {"pretrain_batch_size": batch})
    store = None
    if loader == "store":
        from submission.system import available_cores

        from ..store.build import open_store
        from ..store.layout import default_store_dir
        from ..store.loader import store_split

        store = open_store(data, default_store_dir(data), available_cores(), progress=False,
                           log=progress)
    split = load_pretrain_data(data, config) if store is None else store_split(data, config, store)
    result: Dict[str, Any] = {"preset": preset, "device": str(device), "model": config.model,
                              "img_size": config.img_size, "batch": config.pretrain_batch_size,
                              "images": len(split.dataset), "loader": loader,
                              "model_images_per_s": {}, "loader_images_per_s": {}}
    for variant in variants:
        spec = pretrain_spec(config, split)
        try:
            rate = model_rate(spec, split.num_classes, config.pretrain_batch_size,
                              config.img_size, device, variant, warmup, steps)
        except UserError:
            raise
        except Exception as error:  # torch.compile may not work on this stack: say so, go on
            rate = None
            result.setdefault("failed", {})[variant] = f"{type(error).__name__}: {error}"[:300]
        result["model_images_per_s"][variant] = rate
        progress(f"model {variant}: " + ("failed" if rate is None else f"{rate:,.0f} images/s"))
    for count in workers:
        if store is None:
            rate = data_rate(split.dataset, config.pretrain_batch_size, device, count, warmup,
                             steps)
        else:
            rate = store_rate(split.dataset, config, config.pretrain_batch_size, device, count,
                              warmup, steps)
        result["loader_images_per_s"][str(count)] = rate
        progress(f"loader ({loader}), {count} workers: {rate:,.0f} images/s")
    best_model = max((r for r in result["model_images_per_s"].values() if r), default=None)
    best_data = max(result["loader_images_per_s"].values(), default=None)
    if best_model and best_data:
        result["capped_by"] = "data" if best_data < best_model else "model"
        result["epoch_minutes_per_million"] = 1e6 / min(best_model, best_data) / 60
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = OneLineParser(prog="python -m local_eval throughput", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a generated ImageFolder")
    parser.add_argument("--preset", default="contest", choices=PRESETS,
                        help="evaluation preset whose model, batch and transform are timed "
                             "(default contest)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--batch-size", type=int, help="pre-training batch (default: the preset's)")
    parser.add_argument("--variants", default=None,
                        help=f"comma-separated model variants of {', '.join(VARIANTS)}, or none "
                             "for the loader alone (default: all on CUDA, fp32 on CPU)")
    parser.add_argument("--loader", default="store", choices=("store", "pil"),
                        help="the pre-training loader to time: store (the image store, "
                             "augmented on the device; built first when missing) or pil (PNG "
                             "files, augmented in the workers) (default: store)")
    parser.add_argument("--workers", default="4,8,16",
                        help="comma-separated loader worker counts to time (default 4,8,16)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches first (default 5)")
    parser.add_argument("--steps", type=int, default=30, help="timed batches (default 30)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    return run_command(lambda: _measure(args))


def _measure(args: argparse.Namespace) -> int:
    try:
        workers = [int(value) for value in args.workers.split(",") if value]
    except ValueError:
        raise UserError(f"--workers {args.workers!r} is not a comma-separated list of "
                        f"counts") from None
    if not workers:
        raise UserError(f"--workers {args.workers!r} lists no count; give e.g. 4,8,16")
    for count in workers:
        check_bound("--workers", count, WORKERS)
    check_bound("--warmup", args.warmup, THROUGHPUT_WARMUP)
    check_bound("--steps", args.steps, THROUGHPUT_STEPS)
    if args.batch_size is not None:
        check_bound("--batch-size", args.batch_size, CONFIG_BOUNDS["pretrain_batch_size"])
    if not args.data.is_dir():
        raise UserError(f"--data {args.data} is not a folder")
    device = resolve_device(args.device)
    variants = ([] if args.variants == "none" else args.variants.split(",") if args.variants
                else list(VARIANTS) if device.type == "cuda" else ["fp32"])
    for variant in variants:
        check_variant(variant, device)
    result = measure(args.data, args.preset, device, args.batch_size, variants, workers,
                     args.warmup, args.steps,
                     progress=(lambda line: None) if args.json else print, loader=args.loader)
    if args.json:
        print(json.dumps(result, indent=2))
    elif "capped_by" in result:
        print(f"{result['preset']} on {result['device']}: capped by the {result['capped_by']}; "
              f"one epoch over 1M images takes {result['epoch_minutes_per_million']:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
