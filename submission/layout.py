"""The tree `generate` writes, OUT/<class>/<class>_<image>.<ext>, and checks of what a folder holds.

Class folders are zero-padded because torchvision's `ImageFolder` numbers classes by sorted name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

from .config import GenerationConfig
from .fileio import STATE_DIRNAME, TMP_SUFFIX


def name_width(count: int) -> int:
    """Zero-padding width: ImageFolder sorts class folders by name, so names must sort numerically."""
    return max(5, len(str(count - 1)))


def class_dirname(config: GenerationConfig, category: int) -> str:
    return f"{category:0{name_width(config.classes)}d}"


def image_filename(config: GenerationConfig, category: int, index: int) -> str:
    return f"{class_dirname(config, category)}_{index:0{name_width(config.images_per_class)}d}.{config.image_format}"


def expected_filenames(config: GenerationConfig, category: int) -> List[str]:
    return [image_filename(config, category, j) for j in range(config.images_per_class)]


def is_class_dirname(name: str, config: GenerationConfig) -> bool:
    return name.isdigit() and int(name) < config.classes and name == class_dirname(config, int(name))


def has_finished_layout(out: Path, config: GenerationConfig) -> bool:
    """`out` holds exactly this config's tree (every class folder with every file name) and no state."""
    if not out.is_dir() or (out / STATE_DIRNAME).exists():
        return False
    if sorted(p.name for p in out.iterdir()) != [class_dirname(config, c) for c in range(config.classes)]:
        return False
    return all(sorted(os.listdir(out / class_dirname(config, c))) == sorted(expected_filenames(config, c))
               for c in range(config.classes))


def unexpected_entries(out: Path, config: GenerationConfig) -> List[str]:
    """Paths under `out` that a run of this config would not write (its temp files and state aside)."""
    unexpected = []
    for entry in sorted(out.iterdir()):
        if entry.name == STATE_DIRNAME:
            continue
        if not (entry.is_dir() and is_class_dirname(entry.name, config)):
            unexpected.append(str(entry))
            continue
        names = expected_filenames(config, int(entry.name))
        allowed = set(names) | {f".{name}{TMP_SUFFIX}" for name in names}
        unexpected += sorted(str(entry / name) for name in os.listdir(entry) if name not in allowed)
    return unexpected


def class_is_complete(out: Path, config: GenerationConfig, category: int) -> bool:
    """Every image file of `category` is there and none is empty."""
    try:
        sizes = {entry.name: entry.stat().st_size for entry in os.scandir(out / class_dirname(config, category))
                 if not entry.name.startswith(".")}
    except OSError:
        return False
    expected = expected_filenames(config, category)
    return len(sizes) == len(expected) and all(sizes.get(name, 0) > 0 for name in expected)
