"""Pre-training datasets of a `compare`: folders, and the `scratch` and `noise` baselines.

A dataset spec has a `name`, an `identity()` (what compare.json's plan records) and
`materialize(cache_dir)`, which returns the ImageFolder to pre-train on, creating it under the
compare folder's cache first if it has to (None: no pre-training). A generation config that is
generated once and cached by its hash fits the same seam: a spec whose `materialize` runs the
generator into `cache_dir / <hash>` unless that folder is already complete.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Optional, Protocol, Sequence

from submission.errors import UserError
from submission.fileio import make_dirs

from .data import _image_class_dirs, check_image_folder
from .transforms import image_size

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BUILTINS = ("scratch", "noise")


class DatasetSpec(Protocol):
    name: str

    def identity(self) -> Dict[str, Any]: ...

    def check(self) -> None: ...

    def materialize(self, cache_dir: Path) -> Optional[Path]: ...


@dataclass(frozen=True)
class FolderDataset:
    """An existing generated ImageFolder."""

    name: str
    path: Path

    def identity(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": "folder", "path": str(self.path.resolve())}

    def check(self) -> None:
        check_image_folder(self.path, f"dataset {self.name}", f"{self.name}=PATH")

    def materialize(self, cache_dir: Path) -> Optional[Path]:
        return self.path


@dataclass(frozen=True)
class ScratchDataset:
    """No pre-training: fine-tune from random initialization."""

    name: str = "scratch"

    def identity(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": "scratch"}

    def check(self) -> None:
        return None

    def materialize(self, cache_dir: Path) -> Optional[Path]:
        return None


@dataclass(frozen=True)
class NoiseDataset:
    """Uniform-noise images (local_eval.noise) shaped like a reference dataset; sizes are None
    until `matched` fills them in."""

    name: str = "noise"
    classes: Optional[int] = None
    images_per_class: Optional[int] = None
    image_size: Optional[int] = None
    seed: int = 0

    def identity(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": "noise", "classes": self.classes,
                "images_per_class": self.images_per_class, "image_size": self.image_size,
                "seed": self.seed}

    def check(self) -> None:
        return None

    def folder(self, cache_dir: Path) -> Path:
        return cache_dir / (f"noise-{self.classes}x{self.images_per_class}-{self.image_size}px-"
                            f"seed{self.seed}")

    def materialize(self, cache_dir: Path) -> Optional[Path]:
        """The cached noise folder, written once (through a .partial folder that a killed
        compare may leave behind, removed here)."""
        from .noise import write_noise_dataset

        folder = self.folder(cache_dir)
        if folder.is_dir():
            return folder
        partial = folder.with_name(folder.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        make_dirs(cache_dir, "the compare cache")
        return write_noise_dataset(folder, self.classes, self.images_per_class, self.image_size,
                                   self.seed)

    def matched(self, reference: FolderDataset, configs: Sequence[Any]) -> "NoiseDataset":
        """Sized like `reference` as far as the presets use it: as many classes and images
        per class as the largest preset takes, at the reference's image size."""
        class_dirs = _image_class_dirs(reference.path)
        wanted = [c.pretrain_classes for c in configs]
        classes = len(class_dirs) if None in wanted else min(len(class_dirs), max(wanted))
        available = sum(1 for f in class_dirs[0].iterdir() if f.is_file())
        per_class = [c.pretrain_images_per_class for c in configs]
        images = available if None in per_class else min(available, max(per_class))
        width, height = image_size(reference.path)
        return replace(self, classes=classes, images_per_class=images,
                       image_size=min(width, height))


def parse_dataset(text: str) -> DatasetSpec:
    """`scratch`, `noise` or `NAME=PATH` (raises UserError)."""
    if text in BUILTINS:
        return ScratchDataset() if text == "scratch" else NoiseDataset()
    name, separator, path = text.partition("=")
    if not separator or not path:
        raise UserError(f"dataset {text!r} is neither scratch, noise nor NAME=PATH; write e.g. "
                        f"mine=/data/generated")
    if not NAME_PATTERN.match(name):
        raise UserError(f"dataset name {name!r} must be letters, digits, '.', '_' or '-' (it "
                        f"names a folder); e.g. mine=/data/generated")
    if name in BUILTINS:
        raise UserError(f"dataset name {name!r} is a built-in baseline; give the folder another "
                        f"name")
    return FolderDataset(name, Path(path).expanduser())


def resolve_datasets(specs: Sequence[DatasetSpec], configs: Sequence[Any]) -> list:
    """Check the folders and size the noise baseline like the first folder dataset."""
    names = [spec.name for spec in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"dataset {', '.join(twice)} is listed twice; list each once")
    for spec in specs:
        spec.check()
    folders = [spec for spec in specs if isinstance(spec, FolderDataset)]
    resolved = []
    for spec in specs:
        if isinstance(spec, NoiseDataset) and spec.classes is None:
            if not folders:
                raise UserError("the noise baseline copies its class count and image size from "
                                "a folder dataset; list one too (NAME=PATH)")
            spec = spec.matched(folders[0], configs)
        resolved.append(spec)
    return resolved
