"""Tiny datasets for the local_eval tests: a generated-style ImageFolder and CIFAR-100 pickles."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def make_image_folder(root: Path, classes: int, images_per_class: int, size: int = 16,
                      seed: int = 0) -> Path:
    """root/<class:05d>/<i:05d>.png: one bright blob per class at a class-specific place."""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = root / f"{label:05d}"
        folder.mkdir(parents=True)
        for index in range(images_per_class):
            image = rng.integers(0, 40, size=(size, size, 3), dtype=np.uint8)  # (S, S, 3) uint8
            row, col = divmod(label % 4, 2)
            half = size // 2
            image[row * half:(row + 1) * half, col * half:(col + 1) * half] = 200 + label
            Image.fromarray(image).save(folder / f"{index:05d}.png")
    return root


def make_cifar100(root: Path, classes: int = 4, train_per_class: int = 8,
                  test_per_class: int = 4, seed: int = 0) -> Path:
    """root/cifar-100-python/{train,test,meta} in the official pickle layout (fewer images).

    Only labels < `classes` are used; meta names all 100 fine classes like the real file.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = np.repeat(np.arange(classes), per_class)  # (N,) int64
        planes = rng.integers(0, 60, size=(len(labels), 3, 32, 32), dtype=np.uint8)
        # The class is visible: class c brightens channel c % 3 in quadrant c % 4.
        for label in range(classes):
            row, col = divmod(label % 4, 2)
            planes[labels == label, label % 3, row * 16:(row + 1) * 16, col * 16:(col + 1) * 16] = 220
        batch = {"filenames": [f"img_{i}.png" for i in range(len(labels))],
                 "batch_label": f"{split} batch",
                 "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist(),
                 "data": planes.reshape(len(labels), 3072)}
        with open(folder / split, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta = {"fine_label_names": [f"fine_{i}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i}" for i in range(20)]}
    with open(folder / "meta", "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return root


def _cifar_planes(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """(N, 3, 32, 32) uint8 noise where class c brightens channel c % 3 in quadrant c % 4."""
    planes = rng.integers(0, 60, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    for label in np.unique(labels):
        row, col = divmod(int(label) % 4, 2)
        planes[labels == label, label % 3, row * 16:(row + 1) * 16, col * 16:(col + 1) * 16] = 220
    return planes


def make_cifar10(root: Path, classes: int = 4, train_per_class: int = 8,
                 test_per_class: int = 4, seed: int = 0) -> Path:
    """root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}, the official layout.

    The training images (labels < `classes`, shuffled) are spread over the five batches; meta
    names all 10 classes like the real file.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_labels = rng.permutation(np.repeat(np.arange(classes), train_per_class))  # (N,) int64
    test_labels = np.repeat(np.arange(classes), test_per_class)
    batches = {f"data_batch_{i + 1}": part
               for i, part in enumerate(np.array_split(train_labels, 5))}
    batches["test_batch"] = test_labels
    for name, labels in batches.items():
        batch = {"batch_label": name, "labels": labels.tolist(),
                 "data": _cifar_planes(rng, labels).reshape(len(labels), 3072),
                 "filenames": [f"{name}_{i}.png" for i in range(len(labels))]}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta = {"label_names": [f"class_{i}" for i in range(10)], "num_cases_per_batch": 10000,
            "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return root
