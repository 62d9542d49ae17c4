"""The organizer's checks on a generated tree, plus one of ours (no blank images)."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

from PIL import Image
from tqdm import tqdm

from ..errors import UserError
from ..paths import describe_path
from ..system import available_cores

MAX_LISTED_PROBLEMS = 3
POOL_THRESHOLD = 4000  # images; fewer are checked in-process


@dataclass
class VerifyReport:
    classes: int
    images: int
    image_size: Tuple[int, int]  # (width, height)
    mode: str  # PIL mode, e.g. "RGB"


def _inspect(path: str) -> Tuple[str, Optional[Tuple[int, int]], Optional[str], Optional[str]]:
    """(path, size, mode, problem) of one image; reads the pixels, as training will."""
    what = describe_path(path)
    if what != "a file":  # a FIFO would block the read forever; a device or folder is no image either
        return path, None, None, f"{path} is {what}, not an image file"
    try:
        with Image.open(path) as image:
            image.load()
            extrema = image.getextrema()
            bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
            blank = all(lo == hi for lo, hi in bands)
            return path, image.size, image.mode, f"{path} is blank (every pixel equal)" if blank else None
    except Exception as exc:  # anything PIL cannot read is a problem to report, not a crash
        return path, None, None, f"{path} is not a readable image ({exc})"


def verify_dataset(path: Union[str, os.PathLike], classes: Optional[int] = None, images_per_class: Optional[int] = None,
                   workers: Optional[int] = None, progress: bool = False) -> VerifyReport:
    """Check counts, readability, one size and channel count, no blanks; raise `UserError` listing problems."""
    root = Path(path)
    for name, value in (("classes", classes), ("images_per_class", images_per_class), ("workers", workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"{name} (--{name.replace('_', '-')}) must be a positive integer, got {value!r}")  # before reading the tree
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; pass the folder `generate` wrote")
    problems: List[str] = []
    entries = sorted(root.iterdir())
    class_dirs = [p for p in entries if p.is_dir()]
    problems += [f"{p} is not a class folder (only folders may sit at the top level)" for p in entries if not p.is_dir()]
    if classes is not None and len(class_dirs) != classes:
        problems.append(f"{len(class_dirs)} class folders, expected {classes}")
    files: List[str] = []
    counts = set()
    for class_dir in class_dirs:
        names = sorted(os.listdir(class_dir))
        counts.add(len(names))
        if images_per_class is not None and len(names) != images_per_class:
            problems.append(f"{class_dir} holds {len(names)} files, expected {images_per_class}")
        files += [str(class_dir / n) for n in names]
    if images_per_class is None and len(counts) > 1:
        problems.append(f"class folders hold different numbers of files: {sorted(counts)}")
    if not files:
        problems.append(f"{root} holds no images")
    n_workers = workers or available_cores()
    if len(files) >= POOL_THRESHOLD and n_workers > 1:
        with ProcessPoolExecutor(n_workers) as pool:
            results = list(tqdm(pool.map(_inspect, files, chunksize=256), total=len(files), unit="img",
                                desc="verify", disable=not progress))
    else:
        results = [_inspect(f) for f in tqdm(files, unit="img", desc="verify", disable=not progress)]
    first = next(((size, mode) for _, size, mode, problem in results if size is not None), (None, None))
    for file, size, mode, problem in results:
        if problem:
            problems.append(problem)
        elif (size, mode) != first:
            problems.append(f"{file} is {size[0]}x{size[1]} {mode}, but the first image is {first[0][0]}x{first[0][1]} {first[1]}")
    if problems:
        listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f" (and {len(problems) - MAX_LISTED_PROBLEMS} more)" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise UserError(f"dataset check failed with {len(problems)} problem(s): {listed}{more}")
    return VerifyReport(classes=len(class_dirs), images=len(files), image_size=first[0], mode=first[1])
