"""`FractalConfig`: the fractal family's settings, nested in `GenerationConfig` as `fractal`
(points, renderer, camera, the category bank file and the per-image point-cloud augmentation)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

from ...limits import _is_finite, _short, need, need_int, need_number

MAX_POINTS = 1_000_000  # 100x the default; bank build time and renderer memory grow linearly with it
MAX_POINTS_PER_PIXEL = 150  # PyTorch3D's rasterizer limit (kMaxPointsPerPixel)
MAX_CAMERA_DISTANCE = 1000.0  # farther, the cloud is a few pixels wide and float32 depths lose their order
MAX_BATCH_BYTES = 4 * 2**30  # estimated memory of one render batch per worker (see `batch_bytes`)
MAX_POINT_SCALE = 10.0  # point_augment.scale_max: the cloud spans [-1, 1] and the camera sits 10 away
MAX_POINT_SHIFT = 10.0
MAX_NOISE_STD = 1.0  # as large as the cloud's half-extent: the fractal is gone long before
BACKGROUNDS = ("black", "diamond_square", "color_patch")  # point_augment.background
INSTANCE_COLORS = ("white", "random_hue")  # FractalConfig.instance_color
MAX_PERTURB_DELTA = 1.0  # as wide as the parameters' own range U(-1, 1)
MAX_INSTANCES = 16  # each instance adds the class's points to the image's render
MAX_INSTANCE_SIZE = 4.0  # a box 4 x the frame shows a sixteenth of the instance: past that, a blur of points
# The levers of issue 29 at their "off" values: content_dict leaves a lever out while it is off, so
# configs written before the levers existed keep their resume and cache identity.
LEVERS_OFF = {"perturb_delta": 0.0, "instances": 0, "instance_size_min": 0.15, "instance_size_max": 0.6,
              "instance_color": "white"}
COLORIZE_STYLES = ("ours", "4th")  # point_augment.colorize_style and background_style
POINTWOLF_RESCALES = ("restore", "unit_sphere")  # point_augment.pointwolf_rescale
MAX_POINTWOLF_ANCHORS = 64  # PointWOLF holds an (anchors, points, 3) array per view
# FractalConfig.normalization: ours (each axis centred on its mid-range, the longest axis scaled to
# [-1, 1]) and the 4th place's (one min-max over all coordinates to [-1, 1], then the mean subtracted).
NORMALIZATIONS = ("longest_axis_midrange", "global_minmax_mean")


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
    # The 4th place's scale/shift (the defaults; _point_cloud.py:22-29, called with p 0.5 at
    # generator.py:155) fires with probability 0.5, draws one scale for all axes and runs before the
    # rotation (generator.py:154-156), so the shift turns with the cloud. Ours (recipe `fractal-ours`):
    # always (1.0), a scale per axis (False), after the rotation (False).
    scale_shift_p: float = 0.5  # probability that a view is scaled and shifted
    isotropic_scale: bool = True  # one scale U(scale_min, scale_max) for all axes (no aspect change)
    scale_shift_first: bool = True  # scale and shift in the object's frame, then rotate
    rotate: bool = True  # uniform random 3D rotation (Haar measure on SO(3))
    noise_std: float = 0.0  # Gaussian point noise; 0 = off (did not help in the 4th-place study)
    # Probability that a view gets the noise; the 4th place's function defaults to 0.5 (_point_cloud.py:47-53).
    noise_p: float = 1.0
    colorize: bool = False  # z-based HSV colouring instead of white points (off: did not help)
    # "ours": hue = z over a full turn, S = V = 1. "4th": the 4th place's colorize_point_cloud
    # (_point_cloud.py:74-106, its defaults): OpenCV uint8 HSV with hue uint8(z_norm * 255) in 0-180
    # units (the top of the cloud wraps round to red again), S ~ U(0.3, 1), V ~ U(0.5, 1) per view.
    colorize_style: str = COLORIZE_STYLES[0]
    # PointWOLF (Kim et al. 2021), off: weighted local transformations around FPS anchors; the
    # defaults are the paper's (unit-sphere units; see pointcloud.pointwolf).
    pointwolf: bool = False
    pointwolf_anchors: int = 4  # anchor points, by farthest-point sampling
    pointwolf_sigma: float = 0.5  # Gaussian kernel bandwidth
    pointwolf_rotate: float = 10.0  # local rotation angles in U(-limit, limit) degrees per axis
    pointwolf_scale: float = 3.0  # local scale in U(1, limit) per axis
    pointwolf_translate: float = 0.25  # local translation in U(-limit, limit) per axis
    # "restore": deform in unit-sphere units and map back to the input's centre and radius (keeps the
    # framing). "unit_sphere": as the 4th place's copy of the paper's code (notebooks/_point_wolf.py):
    # deform in the input's own units and leave the result centred with radius 0.999999.
    pointwolf_rescale: str = POINTWOLF_RESCALES[0]
    # What the points are composited over: black, or a colourised diamond-square plasma fractal
    # (Anderson & Farrell 2021; see backgrounds.py). Did not help in the 4th-place study.
    background: str = "black"
    # "4th": the 4th place's diamond-square (notebooks/_diamondsquare.py, pc exp 022): a (2^n + 1) grid,
    # random corners, raw heights to uint8 OpenCV HSV (hue wraps). "ours": see backgrounds.py.
    background_style: str = COLORIZE_STYLES[0]

    def __post_init__(self) -> None:
        _validate_point_augment(self)

    @property
    def enabled(self) -> bool:
        """Whether any per-image point-cloud augmentation is on."""
        return (self.subsample or (self.scale_shift and self.scale_shift_p > 0) or self.rotate or (self.noise_std > 0 and self.noise_p > 0) or self.colorize
                or self.pointwolf or self.background != "black")


@dataclass(frozen=True)
class FractalConfig:
    """The fractal family (the 4th-place 3D-OFDB recipe): one IFS point cloud per class, rendered
    from a random view per image. Field help texts are the command-line help of --points etc."""

    points: int = _field(10_000, "IFS points per category before subsampling")
    radius: float = _field(0.015, "point radius in NDC units (PyTorch3D semantics)")
    points_per_pixel: int = _field(4, "nearest points alpha-composited per pixel")
    camera_distance: float = _field(10.0, "camera distance from the origin (the cloud spans [-1, 1])")
    fov_degrees: float = _field(10.0, "camera field of view in degrees")
    backend: str = _field("auto", "renderer: auto, pytorch3d or splat (auto: splat, the faster on CPU and CUDA alike)")
    bank_path: Optional[str] = _field(None, "a saved category bank (npz) instead of building one from the seed")
    # How an IFS orbit becomes the [-1, 1] cloud, and so which categories the variance filter keeps
    # (it judges the normalised cloud). "global_minmax_mean" is the 4th place's: _fractal.py:26-30
    # (min-max over all coordinates, axis=None, to [-1, 1]), :40-53 (mean subtracted) and
    # generator.py:71-73 (np.var > 0.05 on that scaling); their clouds' longest axis averages 1.85.
    # The 4th place's (_fractal.py:26-30, 40-53); ours, "longest_axis_midrange", is `fractal-ours`'s.
    normalization: str = _field("global_minmax_mean", f"IFS cloud normalisation: {' or '.join(NORMALIZATIONS)}")
    point_augment: PointAugmentConfig = field(default_factory=PointAugmentConfig)
    # Lever 1 (1p-frac, Nakamura et al., ECCV 2024): every image draws its own IFS, the class's with
    # each of its maps' 12 parameters (A and b) plus U(-delta, delta) noise (perturb.py).
    perturb_delta: float = _field(0.0, "1p-frac perturbation: each image's IFS is the class's with every map "
                                  "parameter + U(-delta, delta) (0 = off: one cloud per class)")
    # Lever 2 (Anderson & Farrell, WACV 2022): several coloured instances of the class per image,
    # each framed to a random share of the image (instances.py); with point_augment.background.
    instances: int = _field(0, "instances of the class per image, 1..instances drawn per image, each scaled to "
                            "a random share of the frame and placed inside it (0 = off: the camera's one view)")
    instance_size_min: float = _field(0.15, "smallest instance box as a share of the image side")
    instance_size_max: float = _field(0.6, "largest instance box as a share of the image side (above 1 the "
                                      "instance overflows the frame and covers it)")
    instance_color: str = _field("white", f"instance colour: {' or '.join(INSTANCE_COLORS)} (one hue per instance)")

    def __post_init__(self) -> None:
        _validate_fractal(self)

    def content_dict(self) -> Dict[str, Any]:
        """The settings that decide the bytes written: the bank file is only where the seed's bank is
        read, and a lever left off (`LEVERS_OFF`) is left out, so older configs keep their identity."""
        data = asdict(self)
        data.pop("bank_path")
        for name, off in LEVERS_OFF.items():
            if data[name] == off and (name.startswith("perturb") or self.instances == 0):
                data.pop(name)
        return data

    def check_with(self, config: Any) -> None:
        """Checks that need the whole `GenerationConfig` (run when this family is the active one)."""
        clouds = min(config.batch_size, config.images_per_class)  # a batch never spans two classes
        size = config.image_size
        points = self.points * max(1, self.instances)  # an image of n instances renders n clouds' points
        need(batch_bytes(clouds, size, points) <= MAX_BATCH_BYTES,
             f"batch_size {config.batch_size} needs about {batch_bytes(clouds, size, points) / 2**30:.1f} GiB "
             f"per render batch at {size} px and {points} points (at most {MAX_BATCH_BYTES >> 30} GiB); "
             f"use --batch-size {max_batch(size, points)} or less (it does not change the images)")


def _validate_fractal(config: FractalConfig) -> None:
    need_int("points", config.points, 1, f"points must be at least 1, got {_short(config.points)} (e.g. --points 10000)",
             MAX_POINTS, " (e.g. --points 10000)")
    need_number("radius", config.radius, lambda v: 0 < v < 1, "in (0, 1) NDC units (e.g. 0.015)")
    need_int("points_per_pixel", config.points_per_pixel, 1,
             f"points_per_pixel must be at least 1, got {_short(config.points_per_pixel)}", MAX_POINTS_PER_PIXEL, " (e.g. 4)")
    need_number("camera_distance", config.camera_distance, lambda v: 1 < v <= MAX_CAMERA_DISTANCE,
                f"in (1, {MAX_CAMERA_DISTANCE:g}] (the cloud spans [-1, 1]; e.g. 10)")
    need_number("fov_degrees", config.fov_degrees, lambda v: 0 < v < 180, "in (0, 180) (e.g. 10)")
    need(isinstance(config.backend, str), f"backend must be a name, got {_short(config.backend)}")
    need(config.bank_path is None or (isinstance(config.bank_path, str) and config.bank_path != ""),
         f"bank_path must be a path or null, got {_short(config.bank_path)}")
    need(config.normalization in NORMALIZATIONS,
         f"unknown normalization {_short(config.normalization)}; choose one of {list(NORMALIZATIONS)}")
    need_number("perturb_delta", config.perturb_delta, lambda v: 0 <= v <= MAX_PERTURB_DELTA,
                f"in [0, {MAX_PERTURB_DELTA:g}] (0 = off; e.g. 0.1)")
    need_int("instances", config.instances, 0, f"instances must be at least 0 (0 = off), got {_short(config.instances)}",
             MAX_INSTANCES, " (e.g. 4)")
    need(_is_finite(config.instance_size_min) and _is_finite(config.instance_size_max)
         and 0 < config.instance_size_min <= config.instance_size_max <= MAX_INSTANCE_SIZE,
         f"instance sizes must satisfy 0 < instance_size_min <= instance_size_max <= {MAX_INSTANCE_SIZE:g} "
         "(above 1 an instance overflows the frame), "
         f"got {_short(config.instance_size_min)}..{_short(config.instance_size_max)}")
    need(config.instance_color in INSTANCE_COLORS,
         f"unknown instance_color {_short(config.instance_color)}; choose one of {list(INSTANCE_COLORS)}")
    need(isinstance(config.point_augment, PointAugmentConfig),
         f"point_augment must be a PointAugmentConfig, got {type(config.point_augment).__name__}")


def _validate_point_augment(pa: PointAugmentConfig) -> None:
    need(_is_finite(pa.keep_min) and _is_finite(pa.keep_max) and 0 < pa.keep_min <= pa.keep_max <= 1,
         f"point_augment keep fraction must satisfy 0 < keep_min <= keep_max <= 1, got {pa.keep_min}..{pa.keep_max}")
    need(_is_finite(pa.scale_min) and _is_finite(pa.scale_max) and 0 < pa.scale_min <= pa.scale_max <= MAX_POINT_SCALE,
         f"point_augment scale must satisfy 0 < scale_min <= scale_max <= {MAX_POINT_SCALE:g}, got {pa.scale_min}..{pa.scale_max}")
    need_number("point_augment.shift", pa.shift, lambda v: 0 <= v <= MAX_POINT_SHIFT, f"in [0, {MAX_POINT_SHIFT:g}] (e.g. 0.2)")
    need_number("point_augment.scale_shift_p", pa.scale_shift_p, lambda v: 0 <= v <= 1, "a probability in [0, 1] (e.g. 0.5)")
    for name in ("isotropic_scale", "scale_shift_first"):
        need(isinstance(getattr(pa, name), bool), f"point_augment.{name} must be true or false, got {_short(getattr(pa, name))}")
    need_number("point_augment.noise_std", pa.noise_std, lambda v: 0 <= v <= MAX_NOISE_STD, f"in [0, {MAX_NOISE_STD:g}] (0 = off)")
    need_number("point_augment.noise_p", pa.noise_p, lambda v: 0 <= v <= 1, "a probability in [0, 1] (e.g. 0.5)")
    need(pa.colorize_style in COLORIZE_STYLES,
         f"unknown point_augment.colorize_style {_short(pa.colorize_style)}; choose one of {list(COLORIZE_STYLES)}")
    need(isinstance(pa.pointwolf, bool), f"point_augment.pointwolf must be true or false, got {_short(pa.pointwolf)}")
    need(pa.pointwolf_rescale in POINTWOLF_RESCALES,
         f"unknown point_augment.pointwolf_rescale {_short(pa.pointwolf_rescale)}; choose one of {list(POINTWOLF_RESCALES)}")
    need_int("point_augment.pointwolf_anchors", pa.pointwolf_anchors, 1,
             f"point_augment.pointwolf_anchors must be at least 1, got {_short(pa.pointwolf_anchors)} (e.g. 4)",
             MAX_POINTWOLF_ANCHORS, " (e.g. 4)")
    need_number("point_augment.pointwolf_sigma", pa.pointwolf_sigma, lambda v: 0 < v <= 10, "in (0, 10] (e.g. 0.5)")
    need_number("point_augment.pointwolf_rotate", pa.pointwolf_rotate, lambda v: 0 <= v <= 180, "in [0, 180] degrees (e.g. 10)")
    need_number("point_augment.pointwolf_scale", pa.pointwolf_scale, lambda v: 1 <= v <= MAX_POINT_SCALE,
                f"in [1, {MAX_POINT_SCALE:g}] (e.g. 3)")
    need_number("point_augment.pointwolf_translate", pa.pointwolf_translate, lambda v: 0 <= v <= MAX_POINT_SHIFT,
                f"in [0, {MAX_POINT_SHIFT:g}] (e.g. 0.25)")
    need(pa.background_style in COLORIZE_STYLES,
         f"unknown point_augment.background_style {_short(pa.background_style)}; choose one of {list(COLORIZE_STYLES)}")
    need(pa.background in BACKGROUNDS, f"unknown point_augment.background {_short(pa.background)}; choose one of {list(BACKGROUNDS)}")
