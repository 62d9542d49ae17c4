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
    table_path: Optional[str] = None  # class table JSON; None: the packaged table class_table names
    class_table: str = "ours"  # the packaged table: "ours" (glyph_table.json: 6 distinct CJK Unified/Ext-A
    #   characters per class, submission/tools/glyph_table.py) | "3rd" (glyph_table_3rd.json: the 3rd place's
    #   character list and selection with repeats and kana/Latin classes, submission/tools/glyph_table_3rd.py)
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
    # The 3rd place's drawing procedure (askbox-net/NEDO-ASKBOX @ 2486654, submit/src/generator.py = K),
    # each quirk a switch; the defaults are ours (docs/published-recipes.md section 2.2; `glyphs-3rd` sets theirs).
    mix: str = "dirichlet"  # channel weights: "dirichlet" (mix_alpha) | "uniform_normalised" (K:72-74 rand(1, n) / sum)
    font_choice: str = "covering"  # "covering": uniform over the fonts that draw the character | "all": uniform over
    #   every font of the table whatever it draws (K:32 randint(0, 24); a font lacking it draws its .notdef box)
    placement: str = "ink_centre"  # "ink_centre": the ink box centred | "font_ratio": PIL's default anchor at
    #   ((W - w)/2, (H - h * ratio)/2), w, h from font.getbbox and ratio per font file (K:39-44, fonts.json;
    #   FONT_RATIOS_3RD); needs cut_before_rotation
    rotation_count: int = 0  # angles are randint(0, rotation_count) x rotation_step; 0: 360 / rotation_step
    #   (K:47 randint(0, 74) * 5: 74 angles 0..365, so 0 and 5 degrees twice as likely)
    rotation_interpolation: str = "linear"  # "linear" | "nearest" (K:47 Image.rotate's default resample NEAREST)
    cut_before_rotation: bool = False  # True: each character is drawn at its size on the image canvas (ink beyond it
    #   is lost), then the canvas rotated about its centre, flipped, offset and blurred (K:30-62, in that order);
    #   False: one warp of a per-class master (no cut)
    offset_rounding: str = "round"  # the offset in whole pixels: "round" | "floor" (K:56-57 int(normal * W // 4))
    class_stream_period: int = 0  # > 0: class c draws the random stream of class c % period (K:21, K:32, K:144-151:
    #   RandomState(42 + thread) indexed by thread, used in forked children, so classes i and i + 40 draw the same
    #   fonts, sizes, angles, offsets and mixes image by image); 0: every class its own stream

    def __post_init__(self) -> None:
        _validate_glyphs(self)


CLASS_TABLES = ("ours", "3rd")  # glyphs.class_table (files: family.CLASS_TABLES)
MIXES = ("dirichlet", "uniform_normalised")  # glyphs.mix
FONT_CHOICES = ("covering", "all")  # glyphs.font_choice
PLACEMENTS = ("ink_centre", "font_ratio")  # glyphs.placement
INTERPOLATIONS = ("linear", "nearest")  # glyphs.rotation_interpolation
OFFSET_ROUNDINGS = ("round", "floor")  # glyphs.offset_rounding
# glyphs.placement "font_ratio": the vertical ratio per font file, as the 3rd place's submit/params/fonts.json lists it
FONT_RATIOS_3RD = {
    "NotoSansCJK-Black.ttc": 1.65, "NotoSansCJK-Bold.ttc": 1.7, "NotoSansCJK-DemiLight.ttc": 1.7,
    "NotoSansCJK-Light.ttc": 1.7, "NotoSansCJK-Medium.ttc": 1.7, "NotoSansCJK-Regular.ttc": 1.7,
    "NotoSansCJK-Thin.ttc": 1.7, "NotoSerifCJK-Black.ttc": 1.6, "NotoSerifCJK-Bold.ttc": 1.6,
    "NotoSerifCJK-ExtraLight.ttc": 1.5, "NotoSerifCJK-Light.ttc": 1.5, "NotoSerifCJK-Medium.ttc": 1.5,
    "NotoSerifCJK-Regular.ttc": 1.5, "NotoSerifCJK-SemiBold.ttc": 1.5, "TakaoGothic.ttf": 1.2, "TakaoMincho.ttf": 1.2,
    "TakaoPGothic.ttf": 1.2, "TakaoPMincho.ttf": 1.2, "ipaexg.ttf": 1.2, "ipaexm.ttf": 1.2, "ipag.ttf": 1.2,
    "ipagp.ttf": 1.2, "ipam.ttf": 1.2, "ipamp.ttf": 1.2,
}
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
    for name, choices in (("class_table", CLASS_TABLES), ("mix", MIXES), ("font_choice", FONT_CHOICES), ("placement", PLACEMENTS),
                          ("rotation_interpolation", INTERPOLATIONS), ("offset_rounding", OFFSET_ROUNDINGS)):
        value = getattr(g, name)
        need(value in choices, f"unknown glyphs.{name} {_short(value)}; choose one of {list(choices)}")
    need_int("glyphs.rotation_count", g.rotation_count, 0,
             f"glyphs.rotation_count must be at least 0 (0: 360 / rotation_step), got {_short(g.rotation_count)}", 3600)
    need(isinstance(g.cut_before_rotation, bool),
         f"glyphs.cut_before_rotation must be true or false, got {_short(g.cut_before_rotation)}")
    need_int("glyphs.class_stream_period", g.class_stream_period, 0,
             f"glyphs.class_stream_period must be at least 0 (0: off), got {_short(g.class_stream_period)}", 1_000_000)
    need(g.placement != "font_ratio" or g.cut_before_rotation,
         "glyphs.placement font_ratio needs glyphs.cut_before_rotation true (the font's own metrics place the "
         "character on the canvas before it is rotated)")
