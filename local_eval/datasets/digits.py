"""`python -m local_eval digits OUT`: a real downstream set that needs no download.

scikit-learn ships the UCI handwritten digits (1,797 images of 8x8 pixels, 10 classes). This
writes them as the ImageFolder pair `--downstream-dir` takes, OUT/train/<class>/*.png and
OUT/val/<class>/*.png: the first `--train-per-class` images of each class for training, the rest
for validation, upscaled (bilinear) to `--size` pixels, grey as RGB. It is the downstream set the
README's measurements use on machines without CIFAR.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

from submission.errors import UserError
from submission.fileio import check_writable_target, make_dirs
from submission.paths import check_not_inside_a_dataset
from submission.tools.command import OneLineParser, run_command


def write_digits(out: Path, train_per_class: int = 30, size: int = 32) -> Path:
    """Write the digits ImageFolder pair under `out` (which must be absent or empty)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("the digits set comes with scikit-learn: pip install -r requirements.txt") from None
    if not 1 <= train_per_class <= 150 or not 8 <= size <= 512:
        raise UserError(f"--train-per-class must be in [1, 150] and --size in [8, 512], got {train_per_class}, {size}")
    check_writable_target(out, "OUT", is_dir=True)
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; pass a new folder")
    digits = load_digits()
    pixels = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # (N, 8, 8) uint8
    rank = np.zeros(len(digits.target), np.int64)  # index of each image within its class
    for label in range(10):
        rank[digits.target == label] = np.arange(int((digits.target == label).sum()))
    for index, (image, label) in enumerate(zip(pixels, digits.target)):
        split = "train" if rank[index] < train_per_class else "val"
        folder = out / split / f"{label:02d}"
        make_dirs(folder)
        Image.fromarray(image).resize((size, size), Image.BILINEAR).convert("RGB").save(folder / f"{index:04d}.png")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = OneLineParser(prog="python -m local_eval digits", description=__doc__)
    parser.add_argument("out", type=Path, help="folder to write (absent or empty)")
    parser.add_argument("--train-per-class", type=int, default=30, help="training images per class (default 30)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels after upscaling (default 32)")
    args = parser.parse_args(argv)

    def body() -> int:
        check_not_inside_a_dataset(args.out, "OUT")  # its folders would join that dataset's
        write_digits(args.out, args.train_per_class, args.size)
        print(f"wrote the scikit-learn digits to {args.out}/train and {args.out}/val")
        return 0

    return run_command(body, f"interrupted; rerun the same command to write {args.out}")


if __name__ == "__main__":
    sys.exit(main())
