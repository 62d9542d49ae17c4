"""`GenerationConfig`: the one frozen config object that flows from the CLI to the writer."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from .errors import UserError

IMAGE_FORMATS = ("png", "jpg")
DEVICES = ("auto", "cpu", "cuda")
MIN_IMAGE_SIZE = 16


@dataclass(frozen=True)
class PointAugmentConfig:
    """Per-image point-cloud augmentation (the 4th-place best recipe by default)."""

    subsample: bool = True
    keep_min: float = 0.8  # fraction of points kept, drawn uniformly in [keep_min, keep_max]
    keep_max: float = 1.0
    scale_shift: bool = True
    scale_min: float = 0.8
    scale_max: float = 1.2
    shift: float = 0.2  # each axis shifted by U(-shift, shift)
    rotate: bool = True  # uniform random 3D rotation (Haar measure on SO(3))
    noise_std: float = 0.0  # Gaussian point noise; 0 = off (did not help in the 4th-place study)
    colorize: bool = False  # z-based HSV colouring instead of white points (off: did not help)


@dataclass(frozen=True)
class ImageAugmentConfig:
    """The fixed albumentations recipe baked into the saved files; p=0 switches a transform off."""

    transpose_p: float = 0.5
    hflip_p: float = 0.5
    vflip_p: float = 0.5
    affine_p: float = 0.5
    shift_limit: float = 0.0625  # fraction of the image size
    scale_limit: float = 0.1  # scale drawn in [1 - limit, 1 + limit]
    rotate_limit: float = 45.0  # degrees
    brightness_contrast_p: float = 0.5
    brightness_limit: float = 0.2
    contrast_limit: float = 0.2
    hsv_p: float = 0.5
    hue_shift_limit: float = 20.0
    sat_shift_limit: float = 30.0
    val_shift_limit: float = 20.0


@dataclass(frozen=True)
class GenerationConfig:
    """Everything `generate` needs; the defaults reproduce the contest setting (1000 x 1000).

    ``None`` for an option means "use the default" where noted.
    """

    classes: int = 1000
    images_per_class: int = 1000
    image_size: int = 224
    points: int = 10_000  # IFS points per category before subsampling
    radius: float = 0.015  # point radius in NDC units (PyTorch3D semantics)
    points_per_pixel: int = 4
    camera_distance: float = 10.0
    fov_degrees: float = 10.0
    seed: int = 0
    device: str = "auto"  # auto: cuda when available, else cpu
    backend: str = "auto"  # auto: pytorch3d on cuda, splat on cpu; see submission.render
    workers: Optional[int] = None  # None: all cores
    batch_size: int = 50  # clouds rendered per renderer call (speed only: images do not depend on it)
    image_format: str = "png"
    jpeg_quality: int = 95
    bank_path: Optional[str] = None  # a saved category bank; None: build it from `seed`
    shard_index: int = 0  # this run generates classes c with c % shard_count == shard_index
    shard_count: int = 1
    point_augment: PointAugmentConfig = field(default_factory=PointAugmentConfig)
    image_augment: ImageAugmentConfig = field(default_factory=ImageAugmentConfig)

    def __post_init__(self) -> None:
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
        kwargs = _typed_kwargs(cls, data, "config")
        for name, sub_cls in (("point_augment", PointAugmentConfig), ("image_augment", ImageAugmentConfig)):
            if name in kwargs:
                kwargs[name] = sub_cls(**_typed_kwargs(sub_cls, kwargs[name], name))
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "GenerationConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"config is not valid JSON ({exc}); regenerate it with `python -m submission pack`") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "GenerationConfig":
        """A copy with some fields changed; ``None`` values are ignored (keep the current value)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def class_ids(self) -> Tuple[int, ...]:
        """The classes this shard generates (all of them when unsharded)."""
        return tuple(range(self.shard_index, self.classes, self.shard_count))

    def content_dict(self) -> Dict[str, Any]:
        """The fields that decide the bytes written (not how fast or where they are produced)."""
        data = self.to_dict()
        for key in ("workers", "device", "bank_path", "batch_size"):
            data.pop(key)
        return data


def _typed_kwargs(cls: type, data: Any, where: str) -> Dict[str, Any]:
    """Check keys and JSON types against the dataclass fields before constructing it."""
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"unknown {where} key(s) {unknown}; known keys: {sorted(fields)}")
    defaults = cls()  # type: ignore[call-arg]
    out: Dict[str, Any] = {}
    for key, value in data.items():
        default = getattr(defaults, key)
        if dataclasses.is_dataclass(default):
            out[key] = value  # checked by the caller with the nested class
            continue
        expected = (int, float) if isinstance(default, float) else type(default)
        if default is None:  # Optional fields: None or the natural type
            expected = (type(None), int) if key == "workers" else (type(None), str)
        if isinstance(value, bool) and expected is not bool and bool not in (expected if isinstance(expected, tuple) else (expected,)):
            raise UserError(f"{where}.{key} must be {_type_name(expected)}, got a boolean")
        if not isinstance(value, expected):
            raise UserError(f"{where}.{key} must be {_type_name(expected)}, got {type(value).__name__} {value!r}")
        out[key] = float(value) if isinstance(default, float) else value
    return out


def _type_name(expected: Any) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def validate(config: GenerationConfig) -> None:
    """Raise `UserError` naming the first bad field and how to fix it."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    need(config.classes > 0, f"classes must be a positive integer, got {config.classes} (e.g. --classes 1000)")
    need(config.images_per_class > 0, f"images_per_class must be a positive integer, got {config.images_per_class} (e.g. --images-per-class 1000)")
    need(config.image_size >= MIN_IMAGE_SIZE, f"image_size must be at least {MIN_IMAGE_SIZE} pixels, got {config.image_size} (e.g. --image-size 224)")
    need(config.points >= 1, f"points must be at least 1, got {config.points} (e.g. --points 10000)")
    need(0 < config.radius < 1, f"radius must be in (0, 1) NDC units, got {config.radius} (e.g. 0.015)")
    need(config.points_per_pixel >= 1, f"points_per_pixel must be at least 1, got {config.points_per_pixel}")
    need(config.camera_distance > 1, f"camera_distance must be greater than 1 (the cloud spans [-1, 1]), got {config.camera_distance}")
    need(0 < config.fov_degrees < 180, f"fov_degrees must be in (0, 180), got {config.fov_degrees}")
    need(config.seed >= 0, f"seed must be a non-negative integer, got {config.seed}")
    need(config.device in DEVICES, f"unknown device {config.device!r}; choose one of {list(DEVICES)}")
    need(config.workers is None or config.workers >= 1, f"workers must be at least 1 (or omitted for all cores), got {config.workers}")
    need(config.batch_size >= 1, f"batch_size must be at least 1, got {config.batch_size}")
    need(config.image_format in IMAGE_FORMATS, f"unknown image format {config.image_format!r}; choose one of {list(IMAGE_FORMATS)}")
    need(1 <= config.jpeg_quality <= 100, f"jpeg_quality must be in [1, 100], got {config.jpeg_quality}")
    need(config.shard_count >= 1 and 0 <= config.shard_index < config.shard_count,
         f"shard must be I/N with 0 <= I < N, got {config.shard_index}/{config.shard_count} (e.g. --shard 0/4)")
    pa = config.point_augment
    need(0 < pa.keep_min <= pa.keep_max <= 1, f"point_augment keep fraction must satisfy 0 < keep_min <= keep_max <= 1, got {pa.keep_min}..{pa.keep_max}")
    need(0 < pa.scale_min <= pa.scale_max, f"point_augment scale must satisfy 0 < scale_min <= scale_max, got {pa.scale_min}..{pa.scale_max}")
    need(pa.shift >= 0 and pa.noise_std >= 0, "point_augment shift and noise_std must be non-negative")
    ia = config.image_augment
    for name in ("transpose_p", "hflip_p", "vflip_p", "affine_p", "brightness_contrast_p", "hsv_p"):
        p = getattr(ia, name)
        need(0.0 <= p <= 1.0, f"image_augment.{name} is a probability and must be in [0, 1], got {p}")
