"""`VisualAtomConfig`: the visualatom family's settings, nested in `GenerationConfig` as `visualatom`."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import UserError
from ...limits import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, _is_finite, _is_int, _short


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
