"""Pre-training datasets of a `compare`: folders, generation configs, and the `scratch` and
`noise` baselines.

A dataset spec has a `name`, an `identity()` (what compare.json's plan records), `path(cache_dir)`
(the ImageFolder to pre-train on; None: no pre-training) and `prepare(cache_dir, log)`, which
creates that folder under the compare folder's cache first when the spec is `cached`: the noise
baseline, and generation configs (a recipe name or a saved GenerationConfig JSON), generated once
into `cache_dir / gen-<name>-<config hash>` by `submission.generate` (which resumes after a kill).
"""
from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Protocol, Sequence, Tuple

from submission.errors import UserError
from submission.fileio import make_dirs

from .data import _image_class_dirs, check_image_folder
from .transforms import image_size

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BUILTINS = ("scratch", "noise")


Shape = Tuple[int, int, int]  # (classes, images per class, image side in pixels)


class DatasetSpec(Protocol):
    name: str
    cached: bool  # written into the compare cache by `prepare` (not there before the first run)

    def identity(self) -> Dict[str, Any]: ...

    def check(self) -> None: ...

    def path(self, cache_dir: Path) -> Optional[Path]: ...

    def prepare(self, cache_dir: Path, log: Callable[[str], None]) -> None: ...


class _Ready:
    """A dataset that is there already (a folder) or needs none (scratch)."""

    cached = False

    def prepare(self, cache_dir: Path, log: Callable[[str], None]) -> None:
        return None

    def materialize(self, cache_dir: Path) -> Optional[Path]:
        return self.path(cache_dir)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FolderDataset(_Ready):
    """An existing generated ImageFolder."""

    name: str
    folder: Path

    def identity(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": "folder", "path": str(self.folder.resolve())}

    def check(self) -> None:
        check_image_folder(self.folder, f"dataset {self.name}", f"{self.name}=PATH")

    def path(self, cache_dir: Path) -> Optional[Path]:
        return self.folder

    def shape(self, configs: Sequence[Any]) -> Shape:
        """As much of the folder as the presets use: classes, images per class, image side."""
        class_dirs = _image_class_dirs(self.folder)
        wanted = [c.pretrain_classes for c in configs]
        classes = len(class_dirs) if None in wanted else min(len(class_dirs), max(wanted))
        available = sum(1 for f in class_dirs[0].iterdir() if f.is_file())
        per_class = [c.pretrain_images_per_class for c in configs]
        images = available if None in per_class else min(available, max(per_class))
        width, height = image_size(self.folder)
        return classes, images, min(width, height)


@dataclass(frozen=True)
class ScratchDataset(_Ready):
    """No pre-training: fine-tune from random initialization."""

    name: str = "scratch"

    def identity(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": "scratch"}

    def check(self) -> None:
        return None

    def path(self, cache_dir: Path) -> Optional[Path]:
        return None


@dataclass(frozen=True)
class GeneratedDataset:
    """A generation config (`source`: "recipe:NAME" or a GenerationConfig JSON file), sized to
    what the presets take and generated once into the compare cache, keyed by its config hash."""

    name: str
    source: str
    config_json: str  # the GenerationConfig, before `sized` sets its class and image counts
    cached = True

    def config(self) -> Any:
        from submission.config import GenerationConfig

        return GenerationConfig.from_json(self.config_json)

    def digest(self) -> str:
        """sha256 of the fields that decide the images (not speed or device), 12 hex digits."""
        import json

        content = json.dumps(self.config().content_dict(), sort_keys=True).encode()
        return hashlib.sha256(content).hexdigest()[:12]

    def identity(self) -> Dict[str, Any]:
        config = self.config()
        return {"name": self.name, "kind": "generated", "source": self.source,
                "config_sha256": self.digest(), "family": config.family,
                "classes": config.classes, "images_per_class": config.images_per_class}

    def check(self) -> None:
        self.config()

    def path(self, cache_dir: Path) -> Optional[Path]:
        return cache_dir / f"gen-{self.name}-{self.digest()}"

    def prepare(self, cache_dir: Path, log: Callable[[str], None]) -> None:
        from submission import generate

        config, folder = self.config(), self.path(cache_dir)
        make_dirs(cache_dir, "the compare cache")
        log(f"generating {self.name} ({self.source}: {config.classes} classes x "
            f"{config.images_per_class} images, {config.image_size} px) into {folder}")
        generate(folder, config, progress=False)  # nothing to do when it is already complete

    def materialize(self, cache_dir: Path) -> Optional[Path]:
        self.prepare(cache_dir, lambda line: None)
        return self.path(cache_dir)

    def shape(self, configs: Sequence[Any]) -> Shape:
        config = self.config()
        return config.classes, config.images_per_class, config.image_size

    def sized(self, configs: Sequence[Any]) -> "GeneratedDataset":
        """As many classes and images per class as the largest preset takes (all the recipe's
        when a preset takes every one)."""
        config = self.config()
        wanted = [c.pretrain_classes for c in configs]
        per_class = [c.pretrain_images_per_class for c in configs]
        sized = config.with_overrides(
            classes=None if None in wanted else max(wanted),
            images_per_class=None if None in per_class else max(per_class))
        return replace(self, config_json=sized.to_json())

    @classmethod
    def from_source(cls, name: str, source: str) -> "GeneratedDataset":
        from submission.config import GenerationConfig
        from submission.recipes import create_recipe

        if source.startswith("recipe:"):
            config = create_recipe(source[len("recipe:"):])
        else:
            config = GenerationConfig.from_file(source)
        return cls(name, source, config.to_json())


@dataclass(frozen=True)
class NoiseDataset:
    """Uniform-noise images (local_eval.noise) shaped like a reference dataset; sizes are None
    until `matched` fills them in."""

    name: str = "noise"
    classes: Optional[int] = None
    images_per_class: Optional[int] = None
    image_size: Optional[int] = None
    seed: int = 0
    cached = True

    def identity(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": "noise", "classes": self.classes,
                "images_per_class": self.images_per_class, "image_size": self.image_size,
                "seed": self.seed}

    def check(self) -> None:
        return None

    def path(self, cache_dir: Path) -> Optional[Path]:
        return cache_dir / (f"noise-{self.classes}x{self.images_per_class}-{self.image_size}px-"
                            f"seed{self.seed}")

    def prepare(self, cache_dir: Path, log: Callable[[str], None]) -> None:
        if not self.path(cache_dir).is_dir():
            log(f"writing the noise baseline ({self.classes} classes x {self.images_per_class} "
                f"images, {self.image_size} px) to {self.path(cache_dir)}")
            self.materialize(cache_dir)

    def materialize(self, cache_dir: Path) -> Optional[Path]:
        """The cached noise folder, written once (through a .partial folder that a killed
        compare may leave behind, removed here)."""
        from .noise import write_noise_dataset

        folder = self.path(cache_dir)
        if folder.is_dir():
            return folder
        partial = folder.with_name(folder.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        make_dirs(cache_dir, "the compare cache")
        return write_noise_dataset(folder, self.classes, self.images_per_class, self.image_size,
                                   self.seed)

    def matched(self, reference: Any, configs: Sequence[Any]) -> "NoiseDataset":
        """Sized like `reference` (a folder or generated dataset) as far as the presets use it:
        as many classes and images per class as the largest preset takes, at its image size."""
        classes, images, size = reference.shape(configs)
        return replace(self, classes=classes, images_per_class=images, image_size=size)


def parse_dataset(text: str) -> DatasetSpec:
    """`scratch`, `noise`, `recipe:NAME`, `NAME=recipe:RECIPE`, `NAME=CONFIG.json` or
    `NAME=PATH` (raises UserError)."""
    if text in BUILTINS:
        return ScratchDataset() if text == "scratch" else NoiseDataset()
    if text.startswith("recipe:"):
        text = f"{text[len('recipe:'):]}={text}"
    name, separator, path = text.partition("=")
    if not separator or not path:
        raise UserError(f"dataset {text!r} is neither scratch, noise, recipe:NAME nor NAME=PATH; "
                        f"write e.g. mine=/data/generated or recipe:fractal")
    if not NAME_PATTERN.match(name):
        raise UserError(f"dataset name {name!r} must be letters, digits, '.', '_' or '-' (it "
                        f"names a folder); e.g. mine=/data/generated")
    if name in BUILTINS:
        raise UserError(f"dataset name {name!r} is a built-in baseline; give the folder another "
                        f"name")
    if path.startswith("recipe:") or path.endswith(".json"):
        return GeneratedDataset.from_source(name, path)
    return FolderDataset(name, Path(path).expanduser())


def resolve_datasets(specs: Sequence[DatasetSpec], configs: Sequence[Any]) -> list:
    """Check the folders, size the generated datasets to the presets and the noise baseline
    like the first folder or generated dataset."""
    names = [spec.name for spec in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"dataset {', '.join(twice)} is listed twice; list each once")
    for spec in specs:
        spec.check()
    specs = [spec.sized(configs) if isinstance(spec, GeneratedDataset) else spec for spec in specs]
    references = [spec for spec in specs if isinstance(spec, (FolderDataset, GeneratedDataset))]
    resolved = []
    for spec in specs:
        if isinstance(spec, NoiseDataset) and spec.classes is None:
            if not references:
                raise UserError("the noise baseline copies its class count and image size from "
                                "a folder dataset or a generated one; list one too (NAME=PATH or "
                                "recipe:NAME)")
            spec = spec.matched(references[0], configs)
        resolved.append(spec)
    return resolved
