"""`GenerationConfig`: the one frozen config object that flows from the CLI to the writer."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple, Union

from .config_json import from_json_dict, nest_legacy_keys
from .errors import UserError
from .families import FAMILY_NAMES, family_config_classes
from .fileio import loads_json, read_text_file
from .image_augment_config import ImageAugmentConfig, check_image_augment
from .limits import (
    DEFAULT_IMAGE_SIZE,
    MAX_IMAGE_SIZE,
    MAX_SEED,
    MIN_IMAGE_SIZE,
    _is_int,
    _short,
    need,
    need_int,
)

IMAGE_FORMATS = ("png", "jpg")
# channel_order: "rgb" writes the colours drawn; "bgr" writes red and blue swapped, as the 4th place's
# generator.py:177 does (cv2.imwrite of an RGB array).
CHANNEL_ORDERS = ("rgb", "bgr")
DEVICES = ("auto", "cpu", "cuda")

# Upper bounds: generous for real use (the contest default is 1000 x 1000 images of 384 px from 10k
# points), small enough that a typo fails at once instead of exhausting memory or running for years.
MAX_CLASSES = 100_000
MAX_IMAGES_PER_CLASS = 100_000
MAX_TOTAL_IMAGES = 100_000_000  # classes x images_per_class: 100x the contest's million (days of rendering, TBs)
MAX_WORKERS = 1024
MAX_CONFIG_BYTES = 2**20  # a GenerationConfig JSON is about 2 KB; refuse to slurp a huge (or endless) file


def is_device_name(name: Any) -> bool:
    """One of `DEVICES`, or "cuda:N" for the N-th GPU."""
    return isinstance(name, str) and (name in DEVICES or (name.startswith("cuda:") and name[5:].isdigit()))


def _field(default: Any, help_text: str) -> Any:
    """A dataclass field whose `metadata["help"]` is its one-line description (CLI help)."""
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class _GenerationSettings:
    """The settings every family shares; `GenerationConfig` adds one field per registered family."""

    # The help text of each field is its command-line help (see submission/tools/options.py).
    classes: int = _field(1000, "number of categories (the contest needs 1000)")
    images_per_class: int = _field(1000, "images per category (the contest needs 1000)")
    image_size: int = _field(DEFAULT_IMAGE_SIZE, "square image side in pixels")
    seed: int = _field(0, "base seed; every image derives its own from (seed, class, index)")
    family: str = _field("fractal", "data family: the part that turns (seed, class, index) into an image")
    device: str = _field("auto", "auto, cpu, cuda or cuda:N (auto: cuda when available)")
    workers: Optional[int] = _field(None, "worker processes (default: all cores; at most 16 on cuda)")
    batch_size: int = _field(50, "images per family call (speed only: images do not depend on it)")
    image_format: str = _field("png", "image file format: png or jpg")
    jpeg_quality: int = _field(95, "JPEG quality when image_format is jpg")
    # "bgr": the 4th place's generator.py:177 (cv2.imwrite of an RGB array), part of their exact recipe
    channel_order: str = _field("bgr", "channel order on disk: rgb (as drawn) or bgr (red and blue "
                                "swapped, as the 4th place's cv2.imwrite of RGB arrays wrote them)")
    shard_index: int = _field(0, "this run generates classes c with c % shard_count == shard_index")
    shard_count: int = _field(1, "number of shards the classes are split into")
    image_augment: ImageAugmentConfig = field(default_factory=ImageAugmentConfig)

    def __post_init__(self) -> None:
        # A settings object given as None means "use the default", as None does for `workers`.
        for name, cls in (("image_augment", ImageAugmentConfig), *FAMILY_CONFIGS.items()):
            if getattr(self, name, False) is None:
                object.__setattr__(self, name, cls())
        validate(self)

    # --- (de)serialization: the packed submission ships this as params/config.json ---
    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "GenerationConfig":
        if not isinstance(data, dict):
            raise UserError(f"config must be a JSON object, got {type(data).__name__}")
        return from_json_dict(cls, nest_legacy_keys(data, cls, FAMILY_CONFIGS), "config")

    @classmethod
    def from_json(cls, text: str) -> "GenerationConfig":
        try:
            data = loads_json(text)  # a repeated key is refused, not last-wins
        except RecursionError:
            raise UserError("config is not a GenerationConfig: its JSON is nested too deeply; "
                            "regenerate it with `python -m submission pack`") from None
        except ValueError as exc:  # JSONDecodeError, or an integer literal too long to convert
            raise UserError(f"config is not valid JSON ({exc}); regenerate it with `python -m submission pack`") from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], label: Optional[str] = None) -> "GenerationConfig":
        """The config saved in `path` (UTF-8 JSON, at most `MAX_CONFIG_BYTES`); every problem is a
        one-line `UserError` that names the file by `label` (default "--config PATH")."""
        label = f"--config {path}" if label is None else label
        text = read_text_file(path, label, MAX_CONFIG_BYTES, "a GenerationConfig JSON (those are about 2 KB)",
                              "give a GenerationConfig JSON file saved as UTF-8 (e.g. params/config.json)")
        try:
            return cls.from_json(text)
        except UserError as exc:
            raise UserError(f"{label}: {exc}") from None

    def replace(self, **changes: Any) -> "GenerationConfig":
        """A copy with some fields changed (validated again). A family's field may be named on its
        own (``replace(points=2000)`` sets ``fractal.points``): it goes to the family that has it,
        the active one first."""
        top = {f.name for f in dataclasses.fields(self)}
        direct = {k: v for k, v in changes.items() if k in top}
        nested: Dict[str, Dict[str, Any]] = {}
        for key, value in changes.items():
            if key not in top:
                nested.setdefault(_family_of_field(key, self.family), {})[key] = value
        for name, sub in nested.items():
            direct[name] = dataclasses.replace(direct.get(name, getattr(self, name)), **sub)
        return dataclasses.replace(self, **direct)

    def with_overrides(self, **overrides: Any) -> "GenerationConfig":
        """A copy with the given options applied; ``None`` means "not given": keep the current value."""
        return self.replace(**{k: v for k, v in overrides.items() if v is not None})

    def class_ids(self) -> Tuple[int, ...]:
        """The classes this shard generates (all of them when unsharded)."""
        return tuple(range(self.shard_index, self.classes, self.shard_count))

    @property
    def settings(self) -> Any:
        """The active family's settings (``config.fractal`` when family is "fractal")."""
        return getattr(self, self.family)

    def content_dict(self) -> Dict[str, Any]:
        """The fields that decide the bytes written (not how fast or where they are produced): the
        shared ones and the active family's, so another family's settings never count."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(_GenerationSettings)
                if f.name not in ("workers", "device", "batch_size")}
        data["image_augment"] = dataclasses.asdict(self.image_augment)
        settings = self.settings
        data[self.family] = settings.content_dict() if hasattr(settings, "content_dict") else dataclasses.asdict(settings)
        return data

    @staticmethod
    def field_spec(name: str) -> dataclasses.Field:
        """The dataclass field called `name`: a shared one, or a family's (its help text for the CLI)."""
        for cls in (_GenerationSettings, *FAMILY_CONFIGS.values()):
            for spec in dataclasses.fields(cls):
                if spec.name == name:
                    return spec
        raise KeyError(name)


# The registered families' settings classes, in registry order: one `GenerationConfig` field each.
FAMILY_CONFIGS: Dict[str, type] = family_config_classes()

GenerationConfig = dataclasses.make_dataclass(
    "GenerationConfig",
    [(name, cls, field(default_factory=cls)) for name, cls in FAMILY_CONFIGS.items()],
    bases=(_GenerationSettings,), frozen=True,
    namespace={"__module__": __name__, "__doc__": """Everything `generate` needs; the defaults are the contest default: the 4th place's best
    entry exactly as their code makes it (recipe `fractal` = `fractal-4th`; 1000 x 1000 at 384 px,
    docs/families.md). ``family="glyphs"`` etc. keep these shared settings (384 px, bgr, the 4th
    place's image augmentation); a family's own recipe (``create_recipe("glyphs")``) sets its own.

    The shared settings (`_GenerationSettings`) and one field per registered family, named like the
    family and holding its frozen settings class: ``config.fractal.points``, ``config.glyphs``, ...
    ``None`` for an option means "use the default" where noted, and for a settings object
    (``image_augment``, ``fractal``, ...) always.
    """})


def _family_of_field(key: str, active: str) -> str:
    """The family whose settings have a field `key`: the active family when it has one."""
    owners = [name for name, cls in FAMILY_CONFIGS.items() if key in {f.name for f in dataclasses.fields(cls)}]
    if not owners:
        known = sorted({f.name for f in dataclasses.fields(GenerationConfig)})
        raise TypeError(f"GenerationConfig has no field {key!r} (shared fields: {known})")
    return active if active in owners else owners[0]


def validate(config: Any) -> None:
    """Raise `UserError` naming the first bad field and how to fix it.

    Every numeric field is checked for its type, finiteness and range, so a config that passes
    cannot produce blank or NaN images, a traceback deep in a worker, or an absurd allocation.
    Each family's settings validate themselves when built; the active family's may add checks
    against the shared settings (`check_with`, e.g. the fractal renderer's batch memory).
    """
    integer = need_int
    integer("classes", config.classes, 1, f"classes must be a positive integer, got {config.classes} (e.g. --classes 1000)",
            MAX_CLASSES)
    integer("images_per_class", config.images_per_class, 1,
            f"images_per_class must be a positive integer, got {config.images_per_class} (e.g. --images-per-class 1000)",
            MAX_IMAGES_PER_CLASS)
    total = config.classes * config.images_per_class
    need(total <= MAX_TOTAL_IMAGES, f"classes x images_per_class must be at most {MAX_TOTAL_IMAGES} images, got "
         f"{config.classes} x {config.images_per_class} = {total}; lower --classes or --images-per-class")
    integer("image_size", config.image_size, MIN_IMAGE_SIZE,
            f"image_size must be at least {MIN_IMAGE_SIZE} pixels, got {config.image_size} (e.g. --image-size 224)",
            MAX_IMAGE_SIZE, " pixels (e.g. --image-size 224)")
    integer("seed", config.seed, 0, f"seed must be a non-negative integer, got {config.seed}", MAX_SEED, " (the largest seed is 2**56 - 1)")
    need(is_device_name(config.device), f"unknown device {config.device!r}; choose one of {list(DEVICES)} (or cuda:N)")
    need(config.family in FAMILY_NAMES, f"unknown data family {config.family!r}; known families: {', '.join(FAMILY_NAMES)}")
    if config.workers is not None:
        integer("workers", config.workers, 1, f"workers must be at least 1 (or omitted for all cores), got {config.workers}",
                MAX_WORKERS, " (or omit it for all cores)")
    integer("batch_size", config.batch_size, 1, f"batch_size must be at least 1, got {config.batch_size}")
    need(config.image_format in IMAGE_FORMATS, f"unknown image format {config.image_format!r}; choose one of {list(IMAGE_FORMATS)}")
    need(_is_int(config.jpeg_quality) and 1 <= config.jpeg_quality <= 100, f"jpeg_quality must be in [1, 100], got {config.jpeg_quality}")
    need(config.channel_order in CHANNEL_ORDERS,
         f"unknown channel_order {_short(config.channel_order)}; choose one of {list(CHANNEL_ORDERS)}")
    need(_is_int(config.shard_index) and _is_int(config.shard_count), f"shard must be two integers I/N, got "
         f"{_short(config.shard_index)}/{_short(config.shard_count)} (e.g. --shard 0/4)")
    need(config.shard_count >= 1 and 0 <= config.shard_index < config.shard_count,
         f"shard must be I/N with 0 <= I < N, got {config.shard_index}/{config.shard_count} (e.g. --shard 0/4)")
    need(config.shard_count <= MAX_CLASSES, f"shard count N must be at most {MAX_CLASSES}, got {config.shard_count}")

    check_image_augment(config.image_augment)
    for name, cls in FAMILY_CONFIGS.items():
        settings = getattr(config, name, None)
        need(isinstance(settings, cls), f"{name} must be a {cls.__name__} (or None for the default), got "
                                        f"{type(settings).__name__} {_short(settings)}")
    check_with = getattr(config.settings, "check_with", None)
    if check_with is not None:
        check_with(config)
