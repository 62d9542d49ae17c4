"""Datasets of a local evaluation: the generated ImageFolder, CIFAR-100 pickles, a downstream folder.

torchvision's `CIFAR100` checks the md5 of the official files, so the pickles are read here with
a small reader of their own (`read_cifar100`); torchvision is used only to download them.
"""
from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Subset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from submission.errors import UserError
from submission.fileio import make_dirs

from .config import EvalConfig
from .transforms import finetune_transforms, pretrain_transform

CIFAR_FOLDER = "cifar-100-python"
CIFAR_FILES = ("train", "test", "meta")
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


class UnreadableImage(Exception):
    """An image file PIL cannot decode (truncated, corrupt, or not an image)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} ({reason})")
        self.path, self.reason = path, reason


def read_rgb(path: str) -> Image.Image:
    """ImageFolder's loader, raising UnreadableImage for a file PIL cannot decode."""
    try:
        with open(path, "rb") as handle:
            return Image.open(handle).convert("RGB")
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
    folder = ImageFolder(str(root), transform=pretrain_transform(config), loader=read_rgb,
                         allow_empty=True)
    indices = first_per_class(folder.targets, num_classes, config.pretrain_images_per_class)
    return LabeledSplit(SkipUnreadable(folder, indices, "--data"), num_classes)


def cifar_dir(root: Path) -> Path:
    """The folder holding the pickles: ROOT/cifar-100-python or ROOT itself."""
    for candidate in (root / CIFAR_FOLDER, root):
        if all((candidate / name).is_file() for name in CIFAR_FILES):
            return candidate
    raise UserError(
        f"CIFAR-100 not found under --cifar-root {root}: expected {root / CIFAR_FOLDER}/"
        f"{{train,test,meta}} (the unpacked cifar-100-python.tar.gz); add --download to fetch it, "
        f"or use --downstream-dir")


def _unpickle(path: Path, what: str = "CIFAR") -> dict:
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise UserError(f"{path} is not a {what} pickle ({error}); re-download it") from error


def cifar_arrays(folder: Path, batch_files: Sequence[str], label_key: str, meta_file: str,
                 names_key: str, what: str, hint: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """The standard CIFAR python pickles (CIFAR-10 and CIFAR-100 differ only in file and key
    names): images (N, 32, 32, 3) uint8, labels (N,) int64, class names; `hint` says what to do
    when a key is missing (the other CIFAR's folder)."""
    batches = [_unpickle(folder / name, what) for name in batch_files]
    try:
        data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])  # (N, 3072)
        labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
        names = list(_unpickle(folder / meta_file, what)[names_key])
    except KeyError as error:
        raise UserError(f"{folder} lacks the key {error}; it is not {what} ({hint})") from error
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise UserError(f"{folder} holds data of shape {data.shape} for {len(labels)} "
                        f"labels; expected (N, 3072)")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()  # R, G, B planes -> (N, 32, 32, 3)
    return images, labels, names


def read_cifar100(root: Path, split: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """CIFAR-100 `split` ("train" or "test"): images (N, 32, 32, 3) uint8, labels (N,) int64,
    and the 100 fine class names."""
    return cifar_arrays(cifar_dir(root), [split], "fine_labels", "meta", "fine_label_names",
                        "CIFAR-100", "CIFAR-10 has no fine labels")


def download_cifar(dataset: str, root: Path, archive: str) -> None:
    """Fetch an official archive into ROOT with torchvision's `dataset` class ("CIFAR10" or
    "CIFAR100"; needs internet)."""
    import torchvision.datasets

    make_dirs(root, "--cifar-root")
    try:
        getattr(torchvision.datasets, dataset)(str(root), train=True, download=True)
    except Exception as error:  # network errors come in many types
        raise UserError(f"could not download {dataset.replace('CIFAR', 'CIFAR-')} into {root} ({error}); download "
                        f"{archive} by hand and unpack it there") from error


def download_cifar100(root: Path) -> None:
    download_cifar("CIFAR100", root, "cifar-100-python.tar.gz")


def _cut_split(dataset: Dataset, targets: Sequence[int], names: List[str],
               num_classes: Optional[int], per_class: Optional[int], what: str) -> LabeledSplit:
    classes = len(names) if num_classes is None else num_classes
    if classes > len(names):
        raise UserError(f"{what} has {len(names)} classes but the config asks for {classes}; "
                        f"pass --finetune-classes {len(names)}")
    indices = first_per_class(targets, classes, per_class)
    return LabeledSplit(Subset(dataset, indices), classes)


def load_cifar(read: Callable[[Path, str], Tuple[np.ndarray, np.ndarray, List[str]]], what: str,
               folder: Path, root: Path, config: EvalConfig) -> Downstream:
    """A CIFAR set read by `read(root, split)` (CIFAR-10 or -100, named `what`), cut to the
    config's classes and images per class; `folder` (where the pickles are) describes it."""
    train_tf, test_tf = finetune_transforms(config)
    splits = {}
    for split, transform, per_class in (("train", train_tf, config.finetune_train_per_class),
                                        ("test", test_tf, config.finetune_test_per_class)):
        images, labels, names = read(root, split)
        splits[split] = _cut_split(ArrayImageDataset(images, labels, transform), labels, names,
                                   config.finetune_classes, per_class, f"{what} {split}")
    return Downstream(splits["train"], splits["test"],
                      f"{what.lower().replace('-', '')}:{folder.resolve()}")


def load_cifar100(root: Path, config: EvalConfig) -> Downstream:
    return load_cifar(read_cifar100, "CIFAR-100", cifar_dir(root), root, config)


def load_downstream_dir(root: Path, config: EvalConfig) -> Downstream:
    """An ImageFolder pair ROOT/train/<class>/* and ROOT/val/<class>/* with the same classes."""
    train_tf, test_tf = finetune_transforms(config)
    for split in ("train", "val"):
        check_image_folder(root / split, "--downstream-dir split", "--downstream-dir")
    train = ImageFolder(str(root / "train"), transform=train_tf, loader=read_rgb,
                        allow_empty=True)
    val = ImageFolder(str(root / "val"), transform=test_tf, loader=read_rgb, allow_empty=True)
    if train.classes != val.classes:
        raise UserError(f"--downstream-dir {root}: train/ and val/ have different class folders; "
                        f"give both the same classes")
    splits = []
    for folder, per_class, split in ((train, config.finetune_train_per_class, "train"),
                                     (val, config.finetune_test_per_class, "val")):
        cut = _cut_split(folder, folder.targets, folder.classes, config.finetune_classes,
                         per_class, f"{root}/{split}")
        splits.append(replace(cut, dataset=SkipUnreadable(folder, cut.dataset.indices,
                                                          "--downstream-dir")))
    return Downstream(splits[0], splits[1], f"folder:{root.resolve()}")
