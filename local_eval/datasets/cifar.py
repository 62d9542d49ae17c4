"""CIFAR-10 and CIFAR-100 from the official python pickles, read by our own small reader.

torchvision's CIFAR classes check the md5 of the official files, so they are used only to
download; reading is `cifar_arrays`, shared by both sets, which differ only in file and key names:
CIFAR-100 `cifar-100-python/{train,test,meta}`, CIFAR-10 `cifar-10-batches-py/{data_batch_1..5,
test_batch,batches.meta}`.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import numpy as np

from submission.errors import UserError
from submission.fileio import make_dirs

from ..augment.transforms import finetune_transforms
from ..core.config import EvalConfig
from .common import ArrayImageDataset, Downstream, cut_split

CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_FILES = ("train", "test", "meta")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = CIFAR10_TRAIN + ("test_batch", "batches.meta")


def cifar10_dir(root: Path) -> Path:
    """The folder holding the CIFAR-10 pickles: ROOT/cifar-10-batches-py or ROOT itself."""
    for candidate in (root / CIFAR10_FOLDER, root):
        if all((candidate / name).is_file() for name in CIFAR10_FILES):
            return candidate
    raise UserError(f"CIFAR-10 not found under --data-root {root}: expected {root / CIFAR10_FOLDER}"
                    f"/{{data_batch_1..5,test_batch,batches.meta}} (the unpacked "
                    f"cifar-10-python.tar.gz); add --download to fetch it")


def read_cifar10(root: Path, split: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """CIFAR-10 `split` ("train" or "test"): images (N, 32, 32, 3) uint8, labels (N,) int64 and
    the 10 class names."""
    names = CIFAR10_TRAIN if split == "train" else ("test_batch",)
    return cifar_arrays(cifar10_dir(root), names, "labels", "batches.meta", "label_names", "CIFAR-10",
                        "CIFAR-100 has fine_labels: use --downstream cifar100")


def download_cifar10(root: Path) -> None:
    download_cifar("CIFAR10", root, "cifar-10-python.tar.gz")


def load_cifar10(root: Path, config: EvalConfig) -> Downstream:
    return load_cifar(read_cifar10, "CIFAR-10", cifar10_dir(root), root, config)


def cifar100_dir(root: Path) -> Path:
    """The folder holding the pickles: ROOT/cifar-100-python or ROOT itself."""
    for candidate in (root / CIFAR100_FOLDER, root):
        if all((candidate / name).is_file() for name in CIFAR100_FILES):
            return candidate
    raise UserError(
        f"CIFAR-100 not found under --data-root {root}: expected {root / CIFAR100_FOLDER}/"
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
    outside = (labels < 0) | (labels >= len(names))
    if outside.any():  # a corrupt label would train and score a class that does not exist
        raise UserError(f"{folder}: {what} label {int(labels[outside][0])} lies outside 0.."
                        f"{len(names) - 1} of its {len(names)} classes ({int(outside.sum())} of "
                        f"{len(labels)} labels in {', '.join(batch_files)}: corrupt); re-download "
                        f"it with --download")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()  # R, G, B planes -> (N, 32, 32, 3)
    return images, labels, names


def read_cifar100(root: Path, split: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """CIFAR-100 `split` ("train" or "test"): images (N, 32, 32, 3) uint8, labels (N,) int64,
    and the 100 fine class names."""
    return cifar_arrays(cifar100_dir(root), [split], "fine_labels", "meta", "fine_label_names",
                        "CIFAR-100", "CIFAR-10 has no fine labels")


def download_cifar(dataset: str, root: Path, archive: str) -> None:
    """Fetch an official archive into ROOT with torchvision's `dataset` class ("CIFAR10" or
    "CIFAR100"; needs internet)."""
    import torchvision.datasets

    make_dirs(root, "--data-root")
    try:
        getattr(torchvision.datasets, dataset)(str(root), train=True, download=True)
    except Exception as error:  # network errors come in many types
        raise UserError(f"could not download {dataset.replace('CIFAR', 'CIFAR-')} into {root} ({error}); download "
                        f"{archive} by hand and unpack it there") from error


def download_cifar100(root: Path) -> None:
    download_cifar("CIFAR100", root, "cifar-100-python.tar.gz")


def load_cifar(read: Callable[[Path, str], Tuple[np.ndarray, np.ndarray, List[str]]], what: str,
               folder: Path, root: Path, config: EvalConfig) -> Downstream:
    """A CIFAR set read by `read(root, split)` (CIFAR-10 or -100, named `what`), cut to the
    config's classes and images per class; `folder` (where the pickles are) describes it."""
    train_tf, test_tf = finetune_transforms(config)
    splits = {}
    for split, transform, per_class in (("train", train_tf, config.finetune_train_per_class),
                                        ("test", test_tf, config.finetune_test_per_class)):
        images, labels, names = read(root, split)
        splits[split] = cut_split(ArrayImageDataset(images, labels, transform), labels, names,
                                   config.finetune_classes, per_class, f"{what} {split}")
    return Downstream(splits["train"], splits["test"],
                      f"{what.lower().replace('-', '')}:{folder.resolve()}")


def load_cifar100(root: Path, config: EvalConfig) -> Downstream:
    return load_cifar(read_cifar100, "CIFAR-100", cifar100_dir(root), root, config)


