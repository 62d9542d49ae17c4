"""ImageFolder checks that need no torch (so that `python -m local_eval stats` starts fast)."""
from __future__ import annotations

from pathlib import Path
from typing import List

from submission.errors import UserError

# torchvision.datasets.folder.IMG_EXTENSIONS (0.26), copied so that importing this costs no torch;
# tests/test_local_eval_data_stats.py checks that the two stay equal.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def image_class_dirs(root: Path) -> List[Path]:
    """Sorted class folders of `root` that hold at least one image file."""
    extensions = tuple(IMG_EXTENSIONS)
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")
            and any(f.name.lower().endswith(extensions) for f in d.iterdir())]


def check_image_folder(path: Path, what: str, flag: str) -> int:
    """Validate an ImageFolder root; returns its number of classes. Raises UserError."""
    if not path.exists():
        raise UserError(f"{what} {path} does not exist; pass an ImageFolder root with {flag}")
    if not path.is_dir():
        raise UserError(f"{what} {path} is not a folder; pass an ImageFolder root with {flag}")
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    if not entries:
        raise UserError(f"{what} {path} is empty; generate a dataset into it first")
    classes = image_class_dirs(path)
    if not classes:
        raise UserError(f"{what} {path} is not an ImageFolder: expected {path}/<class>/<image> "
                        f"with {', '.join(IMG_EXTENSIONS[:3])} ... files")
    if len(classes) < 2:
        raise UserError(f"{what} {path} has {len(classes)} class folder with images; at least 2 "
                        f"are needed to train a classifier")
    return len(classes)
