"""`GlyphConfig`: the glyph family's settings, nested in `GenerationConfig` as `glyphs`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...limits import _is_finite, _short, need, need_int, need_number


@dataclass(frozen=True)
class GlyphConfig:
    """The glyph family (the 3rd-place CJK character recipe, submission/families/glyphs/family.py). Sizes and
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

    def __post_init__(self) -> None:
        _validate_glyphs(self)


MAX_GLYPH_CHARS = 64  # characters drawn per class: every one is drawn in each channel of every image
MAX_GLYPH_SIZE = 4.0  # font size in image sides: larger, one stroke fills the frame
MAX_GLYPH_LAYERS = 8


def _validate_glyphs(g: "GlyphConfig") -> None:
    """Raise `UserError` naming the first bad glyphs field."""
    for name in ("font_dir", "table_path"):
        value = getattr(g, name)
        need(value is None or (isinstance(value, str) and value != ""),
             f"glyphs.{name} must be a path or null (null: the default), got {_short(value)}")
    need_int("glyphs.chars_per_class", g.chars_per_class, 1,
             f"glyphs.chars_per_class must be at least 1, got {_short(g.chars_per_class)} (e.g. 6)", MAX_GLYPH_CHARS)
    need(_is_finite(g.size_min) and _is_finite(g.size_max) and 0 < g.size_min <= g.size_max <= MAX_GLYPH_SIZE,
         f"glyphs size must satisfy 0 < size_min <= size_max <= {MAX_GLYPH_SIZE:g} (fractions of the image side), "
         f"got {_short(g.size_min)}..{_short(g.size_max)} (e.g. 0.55..1.1)")
    need_number("glyphs.rotation_step", g.rotation_step, lambda v: 0 <= v <= 360, "in [0, 360] degrees (0 = upright; e.g. 5)")
    for name in ("flip_p", "blur_p"):
        need_number(f"glyphs.{name}", getattr(g, name), lambda v: 0 <= v <= 1, "in [0, 1] (a probability)")
    need_number("glyphs.offset_std", g.offset_std, lambda v: 0 <= v <= 2, "in [0, 2] image sides (e.g. 0.25)")
    need(isinstance(g.wrap, bool), f"glyphs.wrap must be true or false, got {_short(g.wrap)}")
    need_int("glyphs.blur_size", g.blur_size, 1, f"glyphs.blur_size must be at least 1 pixel, got {_short(g.blur_size)}", 63)
    need_number("glyphs.ink_min", g.ink_min, lambda v: 0 < v <= 1, "in (0, 1] (the darkest grey level of a character)")
    need_number("glyphs.mix_alpha", g.mix_alpha, lambda v: 0.01 <= v <= 100, "in [0.01, 100] (Dirichlet concentration; e.g. 1)")
    need_int("glyphs.layers", g.layers, 1, f"glyphs.layers must be at least 1, got {_short(g.layers)} (e.g. 2)", MAX_GLYPH_LAYERS)
