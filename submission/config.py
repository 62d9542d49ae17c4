"""`GenerationConfig`: the one frozen config object that flows from the CLI to the writer."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

from .errors import UserError
from .families import FAMILY_NAMES
from .fileio import loads_json
from .family_config import GlyphConfig, VisualAtomConfig, validate_glyphs
from .limits import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, _is_finite, _is_int, _short

IMAGE_FORMATS = ("png", "jpg")
DEVICES = ("auto", "cpu", "cuda")

# Upper bounds: generous for real use (the contest is 1000 x 1000 images of 224 px from 10k
# points), small enough that a typo fails at once instead of exhausting memory or running for years.
MAX_CLASSES = 100_000
MAX_IMAGES_PER_CLASS = 100_000
MAX_TOTAL_IMAGES = 100_000_000  # classes x images_per_class: 100x the contest's million (days of rendering, TBs)
MAX_POINTS = 1_000_000  # 100x the default; bank build time and renderer memory grow linearly with it
MAX_SEED = 2**56 - 1  # the largest seed whose counter-RNG key (seed * 256 + stream) fits in 64 bits
MAX_POINTS_PER_PIXEL = 150  # PyTorch3D's rasterizer limit (kMaxPointsPerPixel)
MAX_CAMERA_DISTANCE = 1000.0  # farther, the cloud is a few pixels wide and float32 depths lose their order
MAX_WORKERS = 1024
MAX_BATCH_BYTES = 4 * 2**30  # estimated memory of one render batch per worker (see `batch_bytes`)
MAX_POINT_SCALE = 10.0  # point_augment.scale_max: the cloud spans [-1, 1] and the camera sits 10 away
MAX_POINT_SHIFT = 10.0
MAX_NOISE_STD = 1.0  # as large as the cloud's half-extent: the fractal is gone long before
BACKGROUNDS = ("black", "diamond_square")  # point_augment.background
MAX_POINTWOLF_ANCHORS = 64  # PointWOLF holds an (anchors, points, 3) array per view


def is_device_name(name: Any) -> bool:
    """One of `DEVICES`, or "cuda:N" for the N-th GPU."""
    return isinstance(name, str) and (name in DEVICES or (name.startswith("cuda:") and name[5:].isdigit()))


def batch_bytes(clouds: int, image_size: int, points: int) -> int:
    """Rough memory of rendering `clouds` views at once: the padded clouds (xyz + rgba float32,
    28 bytes a point) and the float32 RGB images (12 bytes a pixel); the renderer's working memory
    on top is bounded separately (the splat backend works in chunks)."""
    return clouds * (points * 28 + image_size * image_size * 12)


def max_batch(image_size: int, points: int) -> int:
    """The most clouds one render batch may hold within `MAX_BATCH_BYTES` (at least 1)."""
    return max(1, MAX_BATCH_BYTES // batch_bytes(1, image_size, points))


def _field(default: Any, help_text: str) -> Any:
    """A dataclass field whose `metadata["help"]` is its one-line description (CLI help)."""
    return field(default=default, metadata={"help": help_text})


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
    # PointWOLF (Kim et al. 2021), off: weighted local transformations around FPS anchors; the
    # defaults are the paper's (unit-sphere units; see pointcloud.pointwolf).
    pointwolf: bool = False
    pointwolf_anchors: int = 4  # anchor points, by farthest-point sampling
    pointwolf_sigma: float = 0.5  # Gaussian kernel bandwidth
    pointwolf_rotate: float = 10.0  # local rotation angles in U(-limit, limit) degrees per axis
    pointwolf_scale: float = 3.0  # local scale in U(1, limit) per axis
    pointwolf_translate: float = 0.25  # local translation in U(-limit, limit) per axis
    # What the points are composited over: black, or a colourised diamond-square plasma fractal
    # (Anderson & Farrell 2021; see backgrounds.py). Did not help in the 4th-place study.
    background: str = "black"

    @property
    def enabled(self) -> bool:
        """Whether any per-image point-cloud augmentation is on."""
        return (self.subsample or self.scale_shift or self.rotate or self.noise_std > 0 or self.colorize
                or self.pointwolf or self.background != "black")


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
    # Off by default (each made the 4th-place leaderboard score worse); applied after the above.
    cutout_p: float = 0.0  # CoarseDropout: black rectangles
    cutout_holes: int = 8  # 1..holes rectangles per image
    cutout_size: float = 0.1  # rectangle sides drawn in [size / 2, size] x the image side
    distortion_p: float = 0.0  # GridDistortion (5 x 5 grid, reflected border)
    distortion_limit: float = 0.3  # grid steps scaled by 1 + U(-limit, limit)
    trivialaugment_p: float = 0.0  # torchvision TrivialAugmentWide (one random op at a random strength)

    @property
    def enabled(self) -> bool:
        """Whether any transform can fire (each is on when its probability `*_p` is above 0)."""
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self) if f.name.endswith("_p"))


@dataclass(frozen=True)
class GenerationConfig:
    """Everything `generate` needs; the defaults reproduce the contest setting (1000 x 1000).

    ``None`` for an option means "use the default" where noted.
    """

    # The help text of each field is its command-line help (see submission/tools/options.py).
    classes: int = _field(1000, "number of categories (the contest needs 1000)")
    images_per_class: int = _field(1000, "images per category (the contest needs 1000)")
    image_size: int = _field(224, "square image side in pixels")
    points: int = _field(10_000, "IFS points per category before subsampling")
    radius: float = _field(0.015, "point radius in NDC units (PyTorch3D semantics)")
    points_per_pixel: int = _field(4, "nearest points alpha-composited per pixel")
    camera_distance: float = _field(10.0, "camera distance from the origin (the cloud spans [-1, 1])")
    fov_degrees: float = _field(10.0, "camera field of view in degrees")
    seed: int = _field(0, "base seed; every image derives its own from (seed, class, index)")
    family: str = _field("fractal", "data family: the part that turns (seed, class, index) into an image")
    device: str = _field("auto", "auto, cpu, cuda or cuda:N (auto: cuda when available)")
    backend: str = _field("auto", "renderer: auto, pytorch3d or splat (auto: splat, the faster on CPU and CUDA alike)")
    workers: Optional[int] = _field(None, "worker processes (default: all cores; at most 16 on cuda)")
    batch_size: int = _field(50, "clouds per renderer call (speed only: images do not depend on it)")
    image_format: str = _field("png", "image file format: png or jpg")
    jpeg_quality: int = _field(95, "JPEG quality when image_format is jpg")
    bank_path: Optional[str] = _field(None, "a saved category bank (npz) instead of building one from the seed")
    shard_index: int = _field(0, "this run generates classes c with c % shard_count == shard_index")
    shard_count: int = _field(1, "number of shards the classes are split into")
    point_augment: PointAugmentConfig = field(default_factory=PointAugmentConfig)
    image_augment: ImageAugmentConfig = field(default_factory=ImageAugmentConfig)
    glyphs: GlyphConfig = field(default_factory=GlyphConfig)
    visualatom: VisualAtomConfig = field(default_factory=VisualAtomConfig)

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
        for name, sub_cls in (("point_augment", PointAugmentConfig), ("image_augment", ImageAugmentConfig),
                              ("visualatom", VisualAtomConfig), ("glyphs", GlyphConfig)):
            if name in kwargs:
                kwargs[name] = sub_cls(**_typed_kwargs(sub_cls, kwargs[name], name))
        return cls(**kwargs)

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

    def replace(self, **changes: Any) -> "GenerationConfig":
        """A copy with some fields changed (`dataclasses.replace`; validated again)."""
        return dataclasses.replace(self, **changes)

    def with_overrides(self, **overrides: Any) -> "GenerationConfig":
        """A copy with the given options applied; ``None`` means "not given": keep the current value."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

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
            raise UserError(f"{where}.{key} must be {_type_name(expected)}, got {type(value).__name__} {_short(value)}")
        if isinstance(default, float):
            try:
                value = float(value)
            except OverflowError:
                raise UserError(f"{where}.{key} must be a finite number, got an integer of {len(str(value))} digits") from None
        out[key] = value
    return out


def _type_name(expected: Any) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def validate(config: GenerationConfig) -> None:
    """Raise `UserError` naming the first bad field and how to fix it.

    Every numeric field is checked for its type, finiteness and range, so a config that passes
    cannot produce blank or NaN images, a traceback deep in a worker, or an absurd allocation.
    """

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    def integer(name: str, value: Any, low: int, low_message: str, high: Optional[int] = None, how: str = "") -> None:
        need(_is_int(value), f"{name} must be an integer, got {type(value).__name__} {_short(value)}")
        need(value >= low, low_message)
        if high is not None:
            need(value <= high, f"{name} must be at most {high}, got {_short(value)}{how}")

    def number(name: str, value: Any, ok: Callable[[float], bool], rule: str) -> None:
        """A finite number for which `ok(value)` holds, described by `rule`."""
        need(_is_finite(value) and ok(value), f"{name} must be a finite number {rule}, got {_short(value)}")

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
    integer("points", config.points, 1, f"points must be at least 1, got {config.points} (e.g. --points 10000)",
            MAX_POINTS, " (e.g. --points 10000)")
    number("radius", config.radius, lambda v: 0 < v < 1, "in (0, 1) NDC units (e.g. 0.015)")
    integer("points_per_pixel", config.points_per_pixel, 1, f"points_per_pixel must be at least 1, got {config.points_per_pixel}",
            MAX_POINTS_PER_PIXEL, " (e.g. 4)")
    number("camera_distance", config.camera_distance, lambda v: 1 < v <= MAX_CAMERA_DISTANCE,
           f"in (1, {MAX_CAMERA_DISTANCE:g}] (the cloud spans [-1, 1]; e.g. 10)")
    number("fov_degrees", config.fov_degrees, lambda v: 0 < v < 180, "in (0, 180) (e.g. 10)")
    integer("seed", config.seed, 0, f"seed must be a non-negative integer, got {config.seed}", MAX_SEED, " (the largest seed is 2**56 - 1)")
    need(is_device_name(config.device), f"unknown device {config.device!r}; choose one of {list(DEVICES)} (or cuda:N)")
    need(config.family in FAMILY_NAMES, f"unknown data family {config.family!r}; known families: {', '.join(FAMILY_NAMES)}")
    if config.workers is not None:
        integer("workers", config.workers, 1, f"workers must be at least 1 (or omitted for all cores), got {config.workers}",
                MAX_WORKERS, " (or omit it for all cores)")
    integer("batch_size", config.batch_size, 1, f"batch_size must be at least 1, got {config.batch_size}")
    clouds = min(config.batch_size, config.images_per_class)  # a batch never spans two classes
    need(batch_bytes(clouds, config.image_size, config.points) <= MAX_BATCH_BYTES,
         f"batch_size {config.batch_size} needs about {batch_bytes(clouds, config.image_size, config.points) / 2**30:.1f} GiB "
         f"per render batch at {config.image_size} px and {config.points} points (at most {MAX_BATCH_BYTES >> 30} GiB); "
         f"use --batch-size {max_batch(config.image_size, config.points)} or less (it does not change the images)")
    need(config.image_format in IMAGE_FORMATS, f"unknown image format {config.image_format!r}; choose one of {list(IMAGE_FORMATS)}")
    need(_is_int(config.jpeg_quality) and 1 <= config.jpeg_quality <= 100, f"jpeg_quality must be in [1, 100], got {config.jpeg_quality}")
    need(_is_int(config.shard_index) and _is_int(config.shard_count), f"shard must be two integers I/N, got "
         f"{_short(config.shard_index)}/{_short(config.shard_count)} (e.g. --shard 0/4)")
    need(config.shard_count >= 1 and 0 <= config.shard_index < config.shard_count,
         f"shard must be I/N with 0 <= I < N, got {config.shard_index}/{config.shard_count} (e.g. --shard 0/4)")
    need(config.shard_count <= MAX_CLASSES, f"shard count N must be at most {MAX_CLASSES}, got {config.shard_count}")

    pa = config.point_augment
    need(_is_finite(pa.keep_min) and _is_finite(pa.keep_max) and 0 < pa.keep_min <= pa.keep_max <= 1,
         f"point_augment keep fraction must satisfy 0 < keep_min <= keep_max <= 1, got {pa.keep_min}..{pa.keep_max}")
    need(_is_finite(pa.scale_min) and _is_finite(pa.scale_max) and 0 < pa.scale_min <= pa.scale_max <= MAX_POINT_SCALE,
         f"point_augment scale must satisfy 0 < scale_min <= scale_max <= {MAX_POINT_SCALE:g}, got {pa.scale_min}..{pa.scale_max}")
    number("point_augment.shift", pa.shift, lambda v: 0 <= v <= MAX_POINT_SHIFT, f"in [0, {MAX_POINT_SHIFT:g}] (e.g. 0.2)")
    number("point_augment.noise_std", pa.noise_std, lambda v: 0 <= v <= MAX_NOISE_STD, f"in [0, {MAX_NOISE_STD:g}] (0 = off)")
    need(isinstance(pa.pointwolf, bool), f"point_augment.pointwolf must be true or false, got {_short(pa.pointwolf)}")
    integer("point_augment.pointwolf_anchors", pa.pointwolf_anchors, 1,
            f"point_augment.pointwolf_anchors must be at least 1, got {_short(pa.pointwolf_anchors)} (e.g. 4)",
            MAX_POINTWOLF_ANCHORS, " (e.g. 4)")
    number("point_augment.pointwolf_sigma", pa.pointwolf_sigma, lambda v: 0 < v <= 10, "in (0, 10] (e.g. 0.5)")
    number("point_augment.pointwolf_rotate", pa.pointwolf_rotate, lambda v: 0 <= v <= 180, "in [0, 180] degrees (e.g. 10)")
    number("point_augment.pointwolf_scale", pa.pointwolf_scale, lambda v: 1 <= v <= MAX_POINT_SCALE,
           f"in [1, {MAX_POINT_SCALE:g}] (e.g. 3)")
    number("point_augment.pointwolf_translate", pa.pointwolf_translate, lambda v: 0 <= v <= MAX_POINT_SHIFT,
           f"in [0, {MAX_POINT_SHIFT:g}] (e.g. 0.25)")
    need(pa.background in BACKGROUNDS, f"unknown point_augment.background {_short(pa.background)}; choose one of {list(BACKGROUNDS)}")

    need(isinstance(config.visualatom, VisualAtomConfig),
         f"visualatom must be a VisualAtomConfig, got {type(config.visualatom).__name__}")
    ia = config.image_augment
    for name in (f.name for f in dataclasses.fields(ia) if f.name.endswith("_p")):
        p = getattr(ia, name)
        need(_is_finite(p) and 0.0 <= p <= 1.0, f"image_augment.{name} is a probability and must be in [0, 1], got {p}")
    # (field, low, high, high included, what it is): the ranges albumentations and OpenCV make sense of.
    for name, low, high, closed, what in (
            ("shift_limit", 0.0, 1.0, True, "a fraction of the image size"),
            ("scale_limit", 0.0, 1.0, False, "scale is drawn in [1 - limit, 1 + limit]"),
            ("rotate_limit", 0.0, 180.0, True, "degrees"),
            ("brightness_limit", 0.0, 1.0, True, "a fraction of the full range"),
            ("contrast_limit", 0.0, 1.0, True, "a fraction of the contrast"),
            ("hue_shift_limit", 0.0, 180.0, True, "OpenCV hue units, 0-179"),
            ("sat_shift_limit", 0.0, 255.0, True, "8-bit saturation units"),
            ("val_shift_limit", 0.0, 255.0, True, "8-bit value units"),
            ("cutout_size", 0.0, 1.0, True, "a fraction of the image side"),
            ("distortion_limit", 0.0, 1.0, False, "grid steps scaled by 1 + U(-limit, limit)")):
        value = getattr(ia, name)
        ok = _is_finite(value) and low <= value and (value <= high if closed else value < high)
        need(ok, f"image_augment.{name} must be a finite number in [{low:g}, {high:g}{']' if closed else ')'} ({what}), "
                 f"got {_short(value)}")
    integer("image_augment.cutout_holes", ia.cutout_holes, 1,
            f"image_augment.cutout_holes must be at least 1, got {_short(ia.cutout_holes)} (e.g. 8)", 1000, " (e.g. 8)")
    need(ia.cutout_p == 0 or ia.cutout_size > 0, "image_augment.cutout_size must be above 0 when cutout_p is on (e.g. 0.1)")
    validate_glyphs(config.glyphs, need, integer, number)
