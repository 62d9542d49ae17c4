"""The organizer kit's downstream sets by name, read from --data-root in torchvision's layouts.

The kit fine-tunes on the sets its set_data.sh fetches (chatflip/ImageRecognitionDataset):
CIFAR-10, CIFAR-100, MNIST, Fashion-MNIST, Caltech-101, Caltech-256 and Omniglot. Each is decoded
once into an ArrayImageDataset ((N, H, W, 3) uint8, grayscale repeated to RGB), cut to the
config's classes and images per class like any other set. MNIST and Fashion-MNIST are read by
torchvision's classes; CIFAR by local_eval.datasets.cifar (torchvision's CIFAR classes refuse any file
whose md5 is not the official one); Caltech and Omniglot by local_eval.datasets.image_sets, which
also holds their split rule. `python -m local_eval ... --download` fetches a set with
torchvision; Fashion-MNIST also comes from Debian's dataset-fashion-mnist (`make downstream`).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple
from urllib.parse import urlparse

import numpy as np

from submission.errors import UserError
from submission.fileio import make_dirs

from ..augment.transforms import finetune_transforms
from ..core.config import EvalConfig
from .common import ArrayImageDataset, Downstream, LabeledSplit, cut_split
from .fingerprint import folder_fingerprint
from .idx import check_idx_pair
from .image_sets import caltech_files, decode, omniglot_files


@dataclass(frozen=True)
class NamedSet:
    """A named set: its torchvision class, its folder under the data root (what is checked and
    fingerprinted) and the command that fetches it."""

    title: str
    torchvision_class: str
    folder: str
    fetch: str = "--download"


NAMED_SETS = {
    "cifar10": NamedSet("CIFAR-10", "CIFAR10", "cifar-10-batches-py"),
    "cifar100": NamedSet("CIFAR-100", "CIFAR100", "cifar-100-python"),
    "mnist": NamedSet("MNIST", "MNIST", "MNIST/raw"),
    "fashion-mnist": NamedSet("Fashion-MNIST", "FashionMNIST", "FashionMNIST/raw",
                              "make downstream (or --download)"),
    "caltech101": NamedSet("Caltech-101", "Caltech101", "caltech101/101_ObjectCategories"),
    "caltech256": NamedSet("Caltech-256", "Caltech256", "caltech256/256_ObjectCategories"),
    "omniglot": NamedSet("Omniglot", "Omniglot", "omniglot-py/images_background"),
}
# MNIST and Fashion-MNIST: torchvision's raw files, unpacked (it reads them without .gz).
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


def set_folder(name: str, root: Path) -> Path:
    return Path(root) / NAMED_SETS[name].folder


def set_files_folder(name: str, root: Path) -> Path:
    """The folder the set's files are read from: its own folder under ROOT, or ROOT itself for
    CIFAR pickles lying there (an older layout we accept)."""
    from .cifar import cifar10_dir, cifar100_dir

    folder = set_folder(name, root)
    if name in ("cifar10", "cifar100") and not folder.is_dir():
        try:
            folder = (cifar10_dir if name == "cifar10" else cifar100_dir)(Path(root))
        except UserError:  # not there (yet)
            pass
    return folder


def set_content(name: str, root: Path) -> str:
    """The set's files, fingerprinted by path, size and mtime (local_eval.datasets.fingerprint): a
    stat per file, so that a run made on other files is never reused. CIFAR pickles lying in
    ROOT itself fingerprint all of ROOT: safe, if coarse."""
    return folder_fingerprint(set_files_folder(name, root))


def check_named_set(name: str, root: Path) -> None:
    """Every check that decodes no image: the set's files are where torchvision reads them; for
    MNIST and Fashion-MNIST also their headers, sizes, counts and label range."""
    from .cifar import cifar10_dir, cifar100_dir

    if name in ("cifar10", "cifar100"):
        (cifar10_dir if name == "cifar10" else cifar100_dir)(Path(root))
        return
    folder = set_folder(name, root)
    if name in ("mnist", "fashion-mnist"):
        for images, labels in (IDX_FILES[:2], IDX_FILES[2:]):
            check_idx_pair(folder / images, folder / labels, f"downstream set {name}",
                           NAMED_SETS[name].fetch,
                           f"ROOT/{NAMED_SETS[name].folder}/{{{','.join(IDX_FILES)}}}")
        return
    if not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
        raise UserError(f"downstream set {name} not found under --data-root {root}: expected "
                        f"class folders in {folder} (torchvision's layout); get it with "
                        f"{NAMED_SETS[name].fetch}")


def download_named_set(name: str, root: Path) -> None:
    """Fetch the set into ROOT with torchvision's class (needs internet); nothing to do when
    its files are there (torchvision checks). torchvision's own lines (one per file and mirror
    tried, progress bars) are held back: a failure is one line naming the set, the server and
    what to do offline."""
    import torchvision.datasets

    make_dirs(root, "--data-root")
    spec = NAMED_SETS[name]
    dataset_class = getattr(torchvision.datasets, spec.torchvision_class)
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            if name == "omniglot":
                dataset_class(str(root), background=True, download=True)
            elif name in ("caltech101", "caltech256"):
                dataset_class(str(root), download=True)
            else:
                dataset_class(str(root), train=True, download=True)
    except Exception as error:  # network errors come in many types
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = (lines[-1] if lines else type(error).__name__)[:200]  # MNIST: the last mirror's
        offline = ("get it without a network with make downstream (Debian's "
                   "dataset-fashion-mnist)" if name == "fashion-mnist" else
                   f"fetch it on a machine with a network and copy it into torchvision's layout "
                   f"{root / spec.folder}")
        raise UserError(f"could not download {spec.title} from {_hosts(dataset_class)} into "
                        f"{root} ({reason}); {offline}") from error


def _hosts(dataset_class: type) -> str:
    """The servers a torchvision dataset class downloads from (its mirrors or url)."""
    urls = list(getattr(dataset_class, "mirrors", None) or [getattr(dataset_class, "url", "")])
    hosts = [urlparse(url).hostname for url in urls if isinstance(url, str)]
    return ", ".join(dict.fromkeys(h for h in hosts if h)) or "its server"


def _mnist_split(name: str, root: Path, split: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """MNIST or Fashion-MNIST by torchvision's class: (N, 28, 28, 3) uint8, (N,) int64, names."""
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, NAMED_SETS[name].torchvision_class)
    dataset = dataset_class(str(root), train=split == "train", download=False)
    grey = dataset.data.numpy()  # (N, 28, 28) uint8
    labels = dataset.targets.numpy().astype(np.int64)
    return np.repeat(grey[..., None], 3, axis=-1), labels, list(dataset.classes)


def decode_size(config: EvalConfig) -> int:
    """The side Caltech and Omniglot images are resized to when decoded: the size the
    fine-tuning transform resizes to (finetune_resize, else img_size), so that its own resize
    changes nothing at the default (squashing) path and no detail it would keep is lost."""
    return config.finetune_resize or config.img_size


def load_named_set(name: str, root: Path, config: EvalConfig) -> Downstream:
    """The set's train and test splits, cut to the config's classes and images per class."""
    from .cifar import load_cifar10, load_cifar100

    if name in ("cifar10", "cifar100"):
        return (load_cifar10 if name == "cifar10" else load_cifar100)(Path(root), config)
    check_named_set(name, root)
    train_tf, test_tf = finetune_transforms(config)
    title = NAMED_SETS[name].title
    splits = []
    for split, transform, per_class in (("train", train_tf, config.finetune_train_per_class),
                                        ("test", test_tf, config.finetune_test_per_class)):
        if name in ("mnist", "fashion-mnist"):
            images, labels, names = _mnist_split(name, root, split)
            splits.append(cut_split(ArrayImageDataset(images, labels, transform), labels, names,
                                    config.finetune_classes, per_class, f"{title} {split}"))
            continue
        paths, labels, names = (omniglot_files(root, split) if name == "omniglot"
                                else caltech_files(root, name, split))
        # Choose first, decode only the chosen files (cut_split checks the class count).
        chosen = cut_split(None, labels, names, config.finetune_classes, per_class,
                           f"{title} {split}")
        picked = np.asarray(chosen.dataset.indices, dtype=np.int64)
        images = decode([paths[i] for i in picked], decode_size(config), name,
                        NAMED_SETS[name].fetch)
        dataset = ArrayImageDataset(images, labels[picked], transform)
        splits.append(LabeledSplit(_all_of(dataset), chosen.num_classes))
    return Downstream(splits[0], splits[1], f"{name}:{set_folder(name, root).resolve()}")


def _all_of(dataset: ArrayImageDataset):
    from torch.utils.data import Subset

    return Subset(dataset, list(range(len(dataset))))


def known_names() -> str:
    return ", ".join(NAMED_SETS)


def is_named_set(text: str) -> bool:
    return text in NAMED_SETS
