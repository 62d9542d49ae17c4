"""`python -m local_eval.tools.augment_speed`: images/s of the pre-training transform, three ways.

PIL: the preset's per-image transform (local_eval.augment.transforms, as the PIL path's loader
workers run it) on an already decoded image, so PNG decoding is not counted. Per sample: the
store path's CPU transform (local_eval.augment.host: the batched draws applied in PIL) on a
(B, 3, S, S) uint8 batch, where the preset's chain has one (a resized crop or RandAugment).
Batched: the device transform (local_eval.augment.device) on that batch as CPU tensors, or on
--device. All take noise images of --image-size px. Wall and CPU seconds are both reported: on shared
cores the CPU figure is what an idle core would give.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from PIL import Image

from submission.errors import UserError
from submission.tools.command import OneLineParser, run_command

from ..augment.device import build_device_transform
from ..augment.host import build_host_transform
from ..augment.transforms import pretrain_transform
from ..core.presets import PRESETS, preset_config


def _clock(fn: Callable[[], None], repeats: int, sync: Callable[[], None]) -> Tuple[float, float]:
    """(wall, CPU) seconds per call of `fn`, after one warm-up call."""
    fn()
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def measure(preset: str, batch: int, image_size: int, repeats: int,
            device: torch.device) -> Dict[str, Any]:
    """Images/s (wall, CPU) of the PIL transform and of the batched one for `preset`."""
    config = preset_config(preset)
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, image_size, image_size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0)).to(device)
    pil_image = Image.fromarray(images[0].permute(1, 2, 0).cpu().numpy())
    pil = pretrain_transform(config)
    batched = build_device_transform(config, "pretrain")
    host = build_host_transform(config)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    pil_seconds = _clock(lambda: pil(pil_image), repeats * batch, lambda: None)
    batch_seconds = _clock(lambda: batched(images, generator), repeats, sync)
    host_rates = None
    if host is not None:
        # (B, 3, H, W) over (B, H, W, 3) memory, as the store loader hands a batch over
        cpu_images = images.cpu().permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        host_rates = [batch / s for s in _clock(lambda: host(cpu_images, torch.Generator()),
                                                 repeats, lambda: None)]
    return {"preset": preset, "batch": batch, "image_size": image_size, "device": str(device),
            "pil_images_per_s": [1 / s for s in pil_seconds],
            "per_sample_images_per_s": host_rates,
            "batched_images_per_s": [batch / s for s in batch_seconds]}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    parser = OneLineParser(prog="python -m local_eval.tools.augment_speed", description=__doc__)
    parser.add_argument("--presets", default="contest,kit-mobilenet",
                        help="comma-separated presets (pre-training transforms)")
    parser.add_argument("--batch", type=_positive, default=64)
    parser.add_argument("--image-size", type=_positive, default=224, help="source image px")
    parser.add_argument("--repeats", type=_positive, default=5, help="timed batches")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print one JSON line per preset")
    args = parser.parse_args(argv)
    return run_command(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    presets = [name for name in args.presets.split(",") if name]
    unknown = [name for name in presets if name not in PRESETS]
    if unknown or not presets:
        raise UserError(f"--presets {args.presets!r}: pick from {', '.join(PRESETS)}")
    for name in presets:
        config = preset_config(name)
        if config.pretrain_crop == "random_crop" and args.image_size < config.img_size:
            raise UserError(f"--image-size {args.image_size} is smaller than preset {name}'s "
                            f"{config.img_size} px crop")
    if args.device not in ("cpu", "cuda") or (args.device == "cuda"
                                              and not torch.cuda.is_available()):
        raise UserError(f"--device {args.device!r}: use cpu, or cuda on a machine with a GPU")
    for name in presets:
        result = measure(name, args.batch, args.image_size, args.repeats,
                         torch.device(args.device))
        if args.json:
            print(json.dumps(result))
            continue
        pil, batched = result["pil_images_per_s"], result["batched_images_per_s"]
        host = result["per_sample_images_per_s"]
        per_sample = ("none for this chain (the CPU store path runs it batched)" if host is None
                      else f"{host[0]:,.0f} images/s wall ({host[1]:,.0f} per CPU second)")
        print(f"{name}: PIL {pil[0]:,.0f} images/s wall ({pil[1]:,.0f} per CPU second); "
              f"per sample on store arrays: {per_sample}; "
              f"batched on {args.device}, batch {args.batch}: {batched[0]:,.0f} images/s wall "
              f"({batched[1]:,.0f} per CPU second); {torch.get_num_threads()} torch thread(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
