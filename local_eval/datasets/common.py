"""Datasets of a local evaluation: the generated ImageFolder and ImageFolder downstream pairs,
cut to a config's classes and images per class (CIFAR: local_eval.datasets.cifar)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Subset
from torchvision.datasets import ImageFolder

from submission.errors import UserError
from submission.paths import describe_path, open_regular_file

from ..augment.transforms import finetune_transforms, pretrain_transform
from ..core.config import EvalConfig
from .folders import IMG_EXTENSIONS, check_image_folder, dataset_files, image_class_dirs  # noqa: F401 (re-export)

# Subsets of at most this many image files are decoded in full before training (about a second
# per 10,000 small PNGs), so a damaged file is refused up front; larger ones (the contest's
# million) are not, and the loader skips a file it cannot read instead, with a warning.
CHECK_LIMIT = 20_000
# More unreadable files in a row than this mean damaged data rather than a stray file.
MAX_SKIPPED_IN_A_ROW = 10


@dataclass
class LabeledSplit:
    """A dataset and what a report needs to know about it."""

    dataset: Dataset
    num_classes: int


@dataclass
class Downstream:
    train: LabeledSplit
    test: LabeledSplit
    description: str


class ArrayImageDataset(Dataset):
    """Images held in memory: `images` (N, H, W, 3) uint8, `labels` (N,) int64."""

    def __init__(self, images: np.ndarray, labels: np.ndarray,
                 transform: Optional[Callable] = None) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


class ClassFolders(ImageFolder):
    """torchvision's ImageFolder over the classes and images local_eval.datasets.folders counts
    (the files the fingerprint and the store see). ImageFolder's own scan counts every folder (a
    hidden one, such as an unfinished generate run's `.generate-state/`, took label 0 and moved the
    real classes up by one) and walks into hidden files and subfolders of a class, following
    links (a loop of folder links never ended); here the one listing decides both."""

    def find_classes(self, directory):
        self.files = dataset_files(Path(directory))
        classes = self.files.classes
        return classes, {name: index for index, name in enumerate(classes)}

    def make_dataset(self, directory, class_to_idx, extensions=None, is_valid_file=None,
                     allow_empty=False):
        samples, self.files = self.files.samples(), None  # held once (a million names at the contest)
        return samples


class UnreadableImage(Exception):
    """An image file PIL cannot decode (truncated, corrupt, or not an image)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} ({reason})")
        self.path, self.reason = path, reason


def read_rgb(path: str) -> Image.Image:
    """ImageFolder's loader, raising UnreadableImage for a file PIL cannot decode. Opened without
    blocking: a FIFO put in an image's place since the listing is refused, never waited on."""
    try:
        with open_regular_file(path, path, "replace it with the image") as handle:
            return Image.open(handle).convert("RGB")
    except UserError as error:  # not a regular file (any more)
        raise UnreadableImage(path, f"{describe_path(path)}, not an image file") from error
    except UnidentifiedImageError as error:
        raise UnreadableImage(path, "not an image file PIL can read") from error
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, zlib errors...
        raise UnreadableImage(path, str(error) or type(error).__name__) from error


class UnreadableData(UserError):
    """Too many unreadable images to skip. Safe to raise in a DataLoader worker: the loader
    rebuilds it from "Caught ... Original Traceback ...", of which it keeps the last line."""

    def __init__(self, message: str) -> None:
        lines = message.rstrip().splitlines()
        if len(lines) > 1 and lines[0].startswith("Caught "):
            message = lines[-1].split(": ", 1)[-1]
        super().__init__(message)


class SkipUnreadable(Dataset):
    """The chosen samples of an ImageFolder; a file that cannot be read is replaced by the next
    readable one, with a one-line warning naming it (the same file every epoch, so a resumed
    run still matches)."""

    def __init__(self, folder: ImageFolder, indices: Sequence[int], flag: str) -> None:
        self.folder, self.indices, self.flag = folder, list(indices), flag

    def __len__(self) -> int:
        return len(self.indices)

    def path(self, index: int) -> str:
        return self.folder.samples[self.indices[index]][0]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        attempts = min(len(self), MAX_SKIPPED_IN_A_ROW + 1)
        for skipped in range(attempts):
            position = (index + skipped) % len(self)
            try:
                return self.folder[self.indices[position]]
            except UnreadableImage as error:
                print(f"warning: skipping unreadable {self.flag} image {error}; using the next "
                      f"image instead (regenerate or delete it)", file=sys.stderr)
        raise UnreadableData(f"{self.flag}: {attempts} images in a row cannot be read, from "
                             f"{self.path(index)} on; the data is damaged, regenerate it")


def check_images(dataset: Dataset, progress: bool) -> None:
    """Decode every file of a SkipUnreadable of at most CHECK_LIMIT images; UserError naming
    the unreadable ones. Does nothing for other datasets (in memory) or larger ones."""
    if not isinstance(dataset, SkipUnreadable) or len(dataset) > CHECK_LIMIT:
        return
    from tqdm import tqdm

    bad = []
    for index in tqdm(range(len(dataset)), desc=f"checking {dataset.flag} images", unit="image",
                      leave=False, disable=not progress or len(dataset) < 2000):
        try:
            read_rgb(dataset.path(index))
        except UnreadableImage as error:
            bad.append(error)
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise UserError(f"{dataset.flag}: {len(bad)} of the {len(dataset)} selected images cannot "
                        f"be read: {bad[0]}{more}; regenerate or delete them")


def first_per_class(targets: Sequence[int], num_classes: int,
                    per_class: Optional[int]) -> List[int]:
    """Indices of the first `per_class` samples (all when None) of each class < `num_classes`."""
    labels = np.asarray(targets, dtype=np.int64)  # (N,) int64
    keep = labels < num_classes
    if per_class is not None:
        order = np.argsort(labels, kind="stable")  # (N,) groups by class, keeps file order
        sorted_labels = labels[order]
        first_of_class = np.searchsorted(sorted_labels, sorted_labels, side="left")
        rank_in_class = np.empty_like(labels)
        rank_in_class[order] = np.arange(len(labels)) - first_of_class
        keep &= rank_in_class < per_class
    return np.flatnonzero(keep).tolist()


def pretrain_class_count(root: Path, config: EvalConfig) -> int:
    """How many classes of the generated ImageFolder `root` pre-training uses (all of them
    unless the config says fewer; more than there are is refused)."""
    available = check_image_folder(root, "--data", "--data")
    num_classes = available if config.pretrain_classes is None else config.pretrain_classes
    if num_classes > available:
        raise UserError(f"--data {root} has {available} classes but the config asks for "
                        f"{num_classes}; pass --pretrain-classes {available} or generate more")
    return num_classes


def load_pretrain_data(root: Path, config: EvalConfig) -> LabeledSplit:
    """The generated ImageFolder, cut to the config's classes and images per class, as PIL
    images of the files (the store's route: local_eval.store.loader.store_split)."""
    num_classes = pretrain_class_count(root, config)
    folder = ClassFolders(str(root), transform=pretrain_transform(config), loader=read_rgb,
                          allow_empty=True)
    indices = first_per_class(folder.targets, num_classes, config.pretrain_images_per_class)
    return LabeledSplit(SkipUnreadable(folder, indices, "--data"), num_classes)


def cut_split(dataset: Dataset, targets: Sequence[int], names: List[str],
               num_classes: Optional[int], per_class: Optional[int], what: str) -> LabeledSplit:
    classes = len(names) if num_classes is None else num_classes
    if classes > len(names):
        raise UserError(f"{what} has {len(names)} classes but the config asks for {classes}; "
                        f"pass --finetune-classes {len(names)}")
    indices = first_per_class(targets, classes, per_class)
    return LabeledSplit(Subset(dataset, indices), classes)


def load_downstream_dir(root: Path, config: EvalConfig) -> Downstream:
    """An ImageFolder pair ROOT/train/<class>/* and ROOT/val/<class>/* with the same classes."""
    train_tf, test_tf = finetune_transforms(config)
    for split in ("train", "val"):
        check_image_folder(root / split, "--downstream-dir split", "--downstream-dir")
    train = ClassFolders(str(root / "train"), transform=train_tf, loader=read_rgb,
                         allow_empty=True)
    val = ClassFolders(str(root / "val"), transform=test_tf, loader=read_rgb, allow_empty=True)
    if train.classes != val.classes:
        raise UserError(f"--downstream-dir {root}: train/ and val/ have different class folders; "
                        f"give both the same classes")
    splits = []
    for folder, per_class, split in ((train, config.finetune_train_per_class, "train"),
                                     (val, config.finetune_test_per_class, "val")):
        cut = cut_split(folder, folder.targets, folder.classes, config.finetune_classes,
                         per_class, f"{root}/{split}")
        splits.append(replace(cut, dataset=SkipUnreadable(folder, cut.dataset.indices,
                                                          "--downstream-dir")))
    return Downstream(splits[0], splits[1], f"folder:{root.resolve()}")
