"""The settings of the glyph and visualatom families, nested in `GenerationConfig` (kept apart
from config.py so each file stays readable)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from .errors import UserError
from .limits import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, _is_finite, _is_int, _short


@dataclass(frozen=True)
class GlyphConfig:
    """The glyph family (the 3rd-place CJK character recipe, submission/families/glyphs.py). Sizes and
    offsets are fractions of the image side (0.55-1.1 is the write-up's 141-282 px at 256 px)."""

    font_dir: Optional[str] = None  # folder of the table's font files; None: found by name under /usr/share/fonts
    table_path: Optional[str] = None  # class table JSON; None: the packaged submission/families/glyphs/glyph_table.json
    chars_per_class: int = 6  # the first (most central) characters of each class row that are drawn
    size_min: float = 0.55  # font size drawn uniformly in [size_min, size_max] x image side
    size_max: float = 1.1
    rotation_step: float = 5.0  # degrees; the angle is a random multiple of it (0 = upright)
    flip_p: float = 0.5  # probability of a horizontal flip, and (drawn apart) of a vertical one
    offset_std: float = 0.25  # Gaussian offset of each character from the centre (std, x image side)
    wrap: bool = True  # offsets wrap around the edges (as the write-up's ImageChops.offset does)
    blur_p: float = 0.125  # probability that a character is box-blurred
    blur_size: int = 3  # box-blur kernel side in pixels
    ink_min: float = 0.0625  # each character's grey level is drawn uniformly in [ink_min, 1]
    mix_alpha: float = 1.0  # Dirichlet concentration of each channel's convex mix of the characters
    layers: int = 2  # RGB images alpha-blended into one with Dirichlet(1) weights (1: no blend)


@dataclass(frozen=True)
class VisualAtomConfig:
    """The visualatom family (Takashima et al., CVPR 2023, "Visual Atoms"); defaults are the public
    renderer's best-practice VisualAtom-1k settings (visual_atomic_renderer/make_VisualAtom.sh).
    Lengths are pixels of the paper's 512 px canvas (scaled to `canvas_size`). Per class: vertices,
    orbits, n1 != n2, noise, step, radius, ovals; per image: centre, orbit grays, vertex noise."""

    canvas_size: int = 512  # drawn at this side (1 px lines), then area-resized to image_size
    vertices_min: int = 200  # q, the quantization: vertices per orbit, per class
    vertices_max: int = 1000
    orbits_min: int = 1  # K, orbits per class
    orbits_max: int = 200
    freq_min: int = 0  # n1, n2: the two sinusoid frequencies, per class
    freq_max: int = 20
    amplitude: float = 0.5  # lambda1 = lambda2: each wave's outward step per orbit
    noise_min: float = 0.0  # eta ~ U(noise_min, noise_max): the Perlin-noise coefficient, per class
    noise_max: float = 4.0
    radial_step_max: float = 0.1  # the renderer's `line_width`: extra outward step U(0, max) per class
    radius_min: int = 10  # first orbit's radius, an integer in [min, max] per class
    radius_max: int = 60
    oval_max: float = 2.0  # x and y stretch of the first orbit, each U(1, oval_max) per class
    center_range: float = 1.0  # centre uniform in canvas/2 +- center_range * canvas/2, per image
    gray_min: int = 0  # each orbit's gray level, uniform per image
    gray_max: int = 255
    line_thickness: int = 1  # canvas pixels
    antialias: bool = False  # the renderer draws aliased 1 px lines

    def __post_init__(self) -> None:
        _validate_visualatom(self)


# Upper bounds of the visualatom family: 25x / 10x the paper's, so a typo fails at once.
MAX_ATOM_VERTICES = 10_000
MAX_ATOM_ORBITS = 1_000
MAX_ATOM_POINTS = 4_000_000  # vertices_max x orbits_max: 64 MB of float64 x/y per image
MAX_ATOM_LENGTH = 10_000.0  # paper pixels; the canvas is 512


def _validate_visualatom(va: "VisualAtomConfig") -> None:
    """Raise `UserError` naming the first bad visualatom field (types, finiteness, ranges, order)."""

    def integer(name: str, low: int, high: int) -> int:
        value = getattr(va, name)
        if not (_is_int(value) and low <= value <= high):
            raise UserError(f"visualatom.{name} must be an integer in [{low}, {high}], got {_short(value)}")
        return value

    def number(name: str, low: float, high: float) -> float:
        value = getattr(va, name)
        if not (_is_finite(value) and low <= value <= high):
            raise UserError(f"visualatom.{name} must be a finite number in [{low:g}, {high:g}], got {_short(value)}")
        return value

    def ordered(low: str, high: str) -> None:
        if getattr(va, low) > getattr(va, high):
            raise UserError(f"visualatom.{low} must be at most visualatom.{high}, got "
                            f"{getattr(va, low)} > {getattr(va, high)}")

    integer("canvas_size", MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    integer("vertices_min", 3, MAX_ATOM_VERTICES)
    integer("vertices_max", 3, MAX_ATOM_VERTICES)
    ordered("vertices_min", "vertices_max")
    integer("orbits_min", 1, MAX_ATOM_ORBITS)
    integer("orbits_max", 1, MAX_ATOM_ORBITS)
    ordered("orbits_min", "orbits_max")
    if va.vertices_max * va.orbits_max > MAX_ATOM_POINTS:
        raise UserError(f"visualatom.vertices_max x orbits_max must be at most {MAX_ATOM_POINTS}, got "
                        f"{va.vertices_max} x {va.orbits_max}; lower one of them (the paper: 1000 x 200)")
    integer("freq_min", 0, 1000)
    integer("freq_max", 0, 1000)
    if va.freq_min >= va.freq_max:
        raise UserError(f"visualatom.freq_min must be below freq_max (n1 and n2 differ), got {va.freq_min}..{va.freq_max}")
    number("amplitude", 0.0, MAX_ATOM_LENGTH)
    number("noise_min", 0.0, MAX_ATOM_LENGTH)
    number("noise_max", 0.0, MAX_ATOM_LENGTH)
    ordered("noise_min", "noise_max")
    number("radial_step_max", 0.0, MAX_ATOM_LENGTH)
    integer("radius_min", 0, int(MAX_ATOM_LENGTH))
    integer("radius_max", 0, int(MAX_ATOM_LENGTH))
    ordered("radius_min", "radius_max")
    number("oval_max", 1.0, 100.0)
    number("center_range", 0.0, 1.0)
    integer("gray_min", 0, 255)
    integer("gray_max", 0, 255)
    ordered("gray_min", "gray_max")
    integer("line_thickness", 1, 64)
    if not isinstance(va.antialias, bool):
        raise UserError(f"visualatom.antialias must be true or false, got {_short(va.antialias)}")


MAX_GLYPH_CHARS = 64  # characters drawn per class: every one is drawn in each channel of every image
MAX_GLYPH_SIZE = 4.0  # font size in image sides: larger, one stroke fills the frame
MAX_GLYPH_LAYERS = 8


def validate_glyphs(g: GlyphConfig, need: Callable[..., None], integer: Callable[..., None],
                     number: Callable[..., None]) -> None:
    """The glyph family's fields (checked for every family: a config is valid or not as a whole)."""
    for name in ("font_dir", "table_path"):
        value = getattr(g, name)
        need(value is None or (isinstance(value, str) and value != ""),
             f"glyphs.{name} must be a path or null (null: the default), got {_short(value)}")
    integer("glyphs.chars_per_class", g.chars_per_class, 1,
            f"glyphs.chars_per_class must be at least 1, got {_short(g.chars_per_class)} (e.g. 6)", MAX_GLYPH_CHARS)
    need(_is_finite(g.size_min) and _is_finite(g.size_max) and 0 < g.size_min <= g.size_max <= MAX_GLYPH_SIZE,
         f"glyphs size must satisfy 0 < size_min <= size_max <= {MAX_GLYPH_SIZE:g} (fractions of the image side), "
         f"got {_short(g.size_min)}..{_short(g.size_max)} (e.g. 0.55..1.1)")
    number("glyphs.rotation_step", g.rotation_step, lambda v: 0 <= v <= 360, "in [0, 360] degrees (0 = upright; e.g. 5)")
    for name in ("flip_p", "blur_p"):
        number(f"glyphs.{name}", getattr(g, name), lambda v: 0 <= v <= 1, "in [0, 1] (a probability)")
    number("glyphs.offset_std", g.offset_std, lambda v: 0 <= v <= 2, "in [0, 2] image sides (e.g. 0.25)")
    need(isinstance(g.wrap, bool), f"glyphs.wrap must be true or false, got {_short(g.wrap)}")
    integer("glyphs.blur_size", g.blur_size, 1, f"glyphs.blur_size must be at least 1 pixel, got {_short(g.blur_size)}", 63)
    number("glyphs.ink_min", g.ink_min, lambda v: 0 < v <= 1, "in (0, 1] (the darkest grey level of a character)")
    number("glyphs.mix_alpha", g.mix_alpha, lambda v: 0.01 <= v <= 100, "in [0.01, 100] (Dirichlet concentration; e.g. 1)")
    integer("glyphs.layers", g.layers, 1, f"glyphs.layers must be at least 1, got {_short(g.layers)} (e.g. 2)", MAX_GLYPH_LAYERS)
