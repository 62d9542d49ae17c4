"""Datasets of a local evaluation: the generated ImageFolder, CIFAR-100 pickles, a downstream folder.

torchvision's `CIFAR100` checks the md5 of the official files, so the pickles are read here with
a small reader of their own (`read_cifar100`); torchvision is used only to download them.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from submission.errors import UserError

from .config import EvalConfig
from .transforms import finetune_transforms, pretrain_transform

CIFAR_FOLDER = "cifar-100-python"
CIFAR_FILES = ("train", "test", "meta")


@dataclass
class LabeledSplit:
    """A dataset and what a report needs to know about it."""

    dataset: Dataset
    num_classes: int
    class_names: List[str]


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


def _image_class_dirs(root: Path) -> List[Path]:
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
    classes = _image_class_dirs(path)
    if not classes:
        raise UserError(f"{what} {path} is not an ImageFolder: expected {path}/<class>/<image> "
                        f"with {', '.join(IMG_EXTENSIONS[:3])} ... files")
    if len(classes) < 2:
        raise UserError(f"{what} {path} has {len(classes)} class folder with images; at least 2 "
                        f"are needed to train a classifier")
    return len(classes)


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


def load_pretrain_data(root: Path, config: EvalConfig) -> LabeledSplit:
    """The generated ImageFolder, cut to the config's classes and images per class."""
    available = check_image_folder(root, "--data", "--data")
    num_classes = available if config.pretrain_classes is None else config.pretrain_classes
    if num_classes > available:
        raise UserError(f"--data {root} has {available} classes but the config asks for "
                        f"{num_classes}; pass --pretrain-classes {available} or generate more")
    folder = ImageFolder(str(root), transform=pretrain_transform(config), allow_empty=True)
    indices = first_per_class(folder.targets, num_classes, config.pretrain_images_per_class)
    return LabeledSplit(Subset(folder, indices), num_classes, folder.classes[:num_classes])


def cifar_dir(root: Path) -> Path:
    """The folder holding the pickles: ROOT/cifar-100-python or ROOT itself."""
    for candidate in (root / CIFAR_FOLDER, root):
        if all((candidate / name).is_file() for name in CIFAR_FILES):
            return candidate
    raise UserError(
        f"CIFAR-100 not found under --cifar-root {root}: expected {root / CIFAR_FOLDER}/"
        f"{{train,test,meta}} (the unpacked cifar-100-python.tar.gz); add --download to fetch it, "
        f"or use --downstream-dir")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise UserError(f"{path} is not a CIFAR-100 pickle ({error}); re-download it") from error


def read_cifar100(root: Path, split: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """CIFAR-100 `split` ("train" or "test"): images (N, 32, 32, 3) uint8, labels (N,) int64,
    and the 100 fine class names."""
    folder = cifar_dir(root)
    batch = _unpickle(folder / split)
    meta = _unpickle(folder / "meta")
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)  # (N, 3072): R plane, G plane, B plane
        labels = np.asarray(batch["fine_labels"], dtype=np.int64)
        names = list(meta["fine_label_names"])
    except KeyError as error:
        raise UserError(f"{folder / split} lacks the key {error}; it is not CIFAR-100 "
                        f"(CIFAR-10 has no fine labels)") from error
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise UserError(f"{folder / split} holds data of shape {data.shape} for {len(labels)} "
                        f"labels; expected (N, 3072)")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()  # (N, 32, 32, 3) uint8
    return images, labels, names


def download_cifar100(root: Path) -> None:
    """Fetch the official archive into ROOT/cifar-100-python with torchvision (needs internet)."""
    from torchvision.datasets import CIFAR100

    root.mkdir(parents=True, exist_ok=True)
    try:
        CIFAR100(str(root), train=True, download=True)
    except Exception as error:  # network errors come in many types
        raise UserError(f"could not download CIFAR-100 into {root} ({error}); download "
                        f"cifar-100-python.tar.gz by hand and unpack it there") from error


def _cut_split(dataset: Dataset, targets: Sequence[int], names: List[str],
               num_classes: Optional[int], per_class: Optional[int], what: str) -> LabeledSplit:
    classes = len(names) if num_classes is None else num_classes
    if classes > len(names):
        raise UserError(f"{what} has {len(names)} classes but the config asks for {classes}; "
                        f"pass --finetune-classes {len(names)}")
    indices = first_per_class(targets, classes, per_class)
    return LabeledSplit(Subset(dataset, indices), classes, names[:classes])


def load_cifar100(root: Path, config: EvalConfig) -> Downstream:
    train_tf, test_tf = finetune_transforms(config)
    splits = {}
    for split, transform, per_class in (("train", train_tf, config.finetune_train_per_class),
                                        ("test", test_tf, config.finetune_test_per_class)):
        images, labels, names = read_cifar100(root, split)
        dataset = ArrayImageDataset(images, labels, transform)
        splits[split] = _cut_split(dataset, labels, names, config.finetune_classes, per_class,
                                   f"CIFAR-100 {split}")
    return Downstream(splits["train"], splits["test"], f"cifar100:{cifar_dir(root).resolve()}")


def load_downstream_dir(root: Path, config: EvalConfig) -> Downstream:
    """An ImageFolder pair ROOT/train/<class>/* and ROOT/val/<class>/* with the same classes."""
    train_tf, test_tf = finetune_transforms(config)
    for split in ("train", "val"):
        check_image_folder(root / split, "--downstream-dir split", "--downstream-dir")
    train = ImageFolder(str(root / "train"), transform=train_tf, allow_empty=True)
    val = ImageFolder(str(root / "val"), transform=test_tf, allow_empty=True)
    if train.classes != val.classes:
        raise UserError(f"--downstream-dir {root}: train/ and val/ have different class folders; "
                        f"give both the same classes")
    return Downstream(
        _cut_split(train, train.targets, train.classes, config.finetune_classes,
                   config.finetune_train_per_class, f"{root}/train"),
        _cut_split(val, val.targets, val.classes, config.finetune_classes,
                   config.finetune_test_per_class, f"{root}/val"),
        f"folder:{root.resolve()}")
