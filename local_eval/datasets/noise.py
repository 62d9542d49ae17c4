"""`python -m local_eval noise OUT`: a random-noise ImageFolder, the "bad dataset" baseline.

Every image is independent uniform RGB noise, so the class labels carry no visual structure;
pre-training on it should help fine-tuning no more than (or less than) random initialization.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

from submission.errors import UserError
from submission.fileio import check_writable_target, os_error
from submission.paths import check_not_inside_a_dataset
from submission.tools.command import OneLineParser, run_command

# Larger images are refused: PIL treats an image of over ~89 M pixels as a decompression bomb
# and the contest trains at 224 px.
MAX_IMAGE_SIZE = 4096
# Noise is drawn a few images at a time so memory stays bounded whatever the counts; a multiple
# of 4 images of uint8 pixels keeps numpy's stream, so the files match one draw per class.
CHUNK_BYTES = 64 * 2**20


def _images_per_draw(images_per_class: int, image_size: int) -> int:
    fits = max(1, CHUNK_BYTES // (image_size * image_size * 3))
    return images_per_class if fits >= images_per_class else max(4, fits - fits % 4)


def _check_counts(classes: int, images_per_class: int, image_size: int, seed: int) -> None:
    if classes < 1 or images_per_class < 1 or image_size < 1:
        raise UserError("--classes, --images-per-class and --image-size must be at least 1")
    if image_size > MAX_IMAGE_SIZE:
        raise UserError(f"--image-size {image_size} is too large; pick at most {MAX_IMAGE_SIZE} "
                        f"(the contest trains at 224)")
    if seed < 0:
        raise UserError(f"--seed must not be negative, got {seed}")


def write_noise_dataset(out: Path, classes: int, images_per_class: int, image_size: int,
                        seed: int = 0) -> Path:
    """Write OUT/<class:05d>/<image:05d>.png noise images; refuses an existing non-empty OUT.

    The images are written into OUT.partial, renamed to OUT when complete; a failure or an
    interruption removes OUT.partial again, so OUT is either complete or absent.
    """
    _check_counts(classes, images_per_class, image_size, seed)
    check_writable_target(out, "OUT", is_dir=True)
    try:
        if out.exists() and any(out.iterdir()):
            raise UserError(f"{out} exists and is not empty; pass a new folder")
    except OSError as error:
        raise UserError(f"cannot read OUT {out}: {error.strerror}; pass a new folder") from None
    temporary = out.with_name(out.name + ".partial")
    if os.path.lexists(temporary):
        raise UserError(f"{temporary} is left from an interrupted run; remove it first")
    rng = np.random.default_rng(seed)
    per_draw = _images_per_draw(images_per_class, image_size)
    path = temporary
    try:
        for label in range(classes):
            folder = temporary / f"{label:05d}"
            path = folder
            folder.mkdir(parents=True)
            for first in range(0, images_per_class, per_draw):
                count = min(per_draw, images_per_class - first)
                pixels = rng.integers(0, 256, size=(count, image_size, image_size, 3),
                                      dtype=np.uint8)  # (count, S, S, 3) uint8
                for offset, image in enumerate(pixels):
                    path = folder / f"{first + offset:05d}.png"
                    Image.fromarray(image).save(path)
        if out.exists():
            out.rmdir()
        path = out
        os.replace(temporary, out)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)  # leave no half dataset behind
        if not isinstance(error, OSError):
            raise  # KeyboardInterrupt included: main() reports it
        raise os_error(error, path) from None
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = OneLineParser(prog="python -m local_eval noise", description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--images-per-class", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def body() -> int:
        check_not_inside_a_dataset(args.out, "OUT")  # its class folders would join that dataset's
        write_noise_dataset(args.out, args.classes, args.images_per_class, args.image_size, args.seed)
        print(f"wrote {args.classes} x {args.images_per_class} noise images to {args.out}")
        return 0

    return run_command(body, f"interrupted; nothing was written to {args.out}; rerun the same command")

if __name__ == "__main__":
    sys.exit(main())
