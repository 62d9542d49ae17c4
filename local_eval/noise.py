"""`python -m local_eval.noise OUT`: a random-noise ImageFolder, the "bad dataset" baseline.

Every image is independent uniform RGB noise, so the class labels carry no visual structure;
pre-training on it should help fine-tuning no more than (or less than) random initialization.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

from submission.errors import UserError


def write_noise_dataset(out: Path, classes: int, images_per_class: int, image_size: int,
                        seed: int = 0) -> Path:
    """Write OUT/<class:05d>/<image:05d>.png noise images; refuses an existing non-empty OUT."""
    if classes < 1 or images_per_class < 1 or image_size < 1:
        raise UserError("--classes, --images-per-class and --image-size must be at least 1")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not empty; pass a new folder")
    temporary = out.with_name(out.name + ".partial")
    if temporary.exists():
        raise UserError(f"{temporary} is left from an interrupted run; remove it first")
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = temporary / f"{label:05d}"
        folder.mkdir(parents=True)
        pixels = rng.integers(0, 256, size=(images_per_class, image_size, image_size, 3),
                              dtype=np.uint8)  # (M, S, S, 3) uint8
        for index, image in enumerate(pixels):
            Image.fromarray(image).save(folder / f"{index:05d}.png")
    if out.exists():
        out.rmdir()
    os.replace(temporary, out)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_eval.noise", description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--images-per-class", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        write_noise_dataset(args.out, args.classes, args.images_per_class, args.image_size,
                            args.seed)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.classes} x {args.images_per_class} noise images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
