"""ImageFolder checks that need no torch (so that `python -m local_eval stats` starts fast). Which
files of a dataset count is decided in one place, `submission.dataset_files` (re-exported here)."""
from __future__ import annotations

from pathlib import Path
from typing import List

from submission.dataset_files import DatasetFiles, class_images, dataset_files
from submission.errors import UserError
from submission.paths import IMG_EXTENSIONS, is_image_name

__all__ = ["IMG_EXTENSIONS", "DatasetFiles", "check_image_folder", "class_images", "dataset_files",
           "image_class_dirs", "is_image_name"]


def image_class_dirs(root: Path) -> List[Path]:
    """Sorted class folders of `root` that hold at least one image (submission.dataset_files)."""
    return [Path(root) / name for name in dataset_files(root).classes]


def check_image_folder(path: Path, what: str, flag: str) -> int:
    """Validate an ImageFolder root; returns its number of classes. Raises UserError."""
    if not path.exists():
        raise UserError(f"{what} {path} does not exist; pass an ImageFolder root with {flag}")
    if not path.is_dir():
        raise UserError(f"{what} {path} is not a folder; pass an ImageFolder root with {flag}")
    try:
        entries = [e for e in path.iterdir() if not e.name.startswith(".")]
        classes = dataset_files(path).classes if entries else []
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror}; pass a folder you can "
                        f"read") from None
    if not entries:
        raise UserError(f"{what} {path} is empty; generate a dataset into it first")
    if not classes:
        raise UserError(f"{what} {path} is not an ImageFolder: expected {path}/<class>/<image> "
                        f"with {', '.join(IMG_EXTENSIONS[:3])} ... files")
    if len(classes) < 2:
        raise UserError(f"{what} {path} has {len(classes)} class folder with images; at least 2 "
                        f"are needed to train a classifier")
    return len(classes)
