"""The glyph family (the 3rd-place recipe of the contest's write-ups): a class is a handful of
similar-looking CJK characters; an image layers them, drawn at random, into dense coloured strokes.

Per image (all draws from rng_for(seed, STREAM_GLYPHS, class, index), in one fixed order):
  for each of `layers` RGB images and each of its 3 channels, every character of the class is drawn
  with a font chosen among those that cover it, a font size in [size_min, size_max] x the image side,
  a rotation in `rotation_step` steps, random horizontal/vertical flips, a Gaussian offset from the
  centre (wrapping around the edges) and, now and then, a box blur, at a grey level in [ink_min, 1];
  the channel is a Dirichlet(mix_alpha) convex mix of those character images, rescaled so its
  brightest pixel lands uniformly between its own level and white; the layers are blended with
  Dirichlet(1) weights (for two: alpha and 1 - alpha).

Drawing: each (character, font) is rasterised once per class by Pillow's FreeType at the largest
size (`class_context`), cropped to its ink; every placement is then one OpenCV affine warp of that
master (scale, rotation, flips and offset in one matrix), and the mixing and blending are numpy.
The 3rd place's own procedure is a set of switches in `GlyphConfig` (mix, font_choice, placement,
rotation_count, rotation_interpolation, cut_before_rotation, offset_rounding, class_stream_period;
the `glyphs-3rd` recipe): with cut_before_rotation each character is drawn by Pillow at its size on
the image canvas, rotated, flipped and offset there, as theirs is (no masters).

Assets: the class table (submission/families/glyphs/glyph_table.json, built by
`python -m submission.tools.glyph_table`; code points per class plus the font list) and the font
files (Debian's fonts-noto-cjk, fonts-noto-cjk-extra, fonts-ipafont-*, fonts-ipaexfont-*,
fonts-takao-*; `make fonts`). A submission ships both in params/ (fonts/ with their licences).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ...config import GenerationConfig
from ...errors import UserError
from ...fileio import loads_json, read_text_file, write_atomic
from ...plan import RunPlan
from ...seeding import STREAM_GLYPHS, rng_for
from ..base import Family, FamilyWorker
from .config import FONT_RATIOS_3RD

TABLE_FILE = "glyph_table.json"
CLASS_TABLES = {"ours": TABLE_FILE, "3rd": "glyph_table_3rd.json"}  # glyphs.class_table -> packaged file
FONTS_DIR = "fonts"
DEFAULT_TABLE = Path(__file__).resolve().with_name(TABLE_FILE)
TABLE_FORMAT = "glyph-table"
TABLE_VERSION = 1
SYSTEM_FONT_ROOT = Path("/usr/share/fonts")
SYSTEM_DOC_ROOT = Path("/usr/share/doc")  # Debian's /usr/share/doc/<package>/copyright: the licence files
MIN_TABLE_CHARS = 6  # a class of the table holds at least this many characters
MAX_TABLE_BYTES = 16 * 2**20
MAX_MASTER_SIZE = 512  # masters are rasterised at most this large (in px) and scaled up by the warp beyond
MISSING_CHAR = "\U0010fffd"  # a code point no font maps: it draws the font's .notdef glyph


def license_name(package: str) -> str:
    """The file a package's licence (its Debian copyright file) is shipped as in params/fonts/."""
    return f"LICENSE-{package}.txt"


@dataclass(frozen=True)
class FontSpec:
    """One font of the table: a file name, a face index (TrueType collections) and its Debian package."""

    file: str
    index: int
    package: str


@dataclass(frozen=True)
class GlyphTable:
    """The classes (code points per class, most central first) and the fonts they are drawn with."""

    fonts: Tuple[FontSpec, ...]
    classes: Tuple[Tuple[int, ...], ...]
    build: Dict[str, Any]
    repeats: bool = False  # a class may list a character more than once (the 3rd place's table: drawn 2-3x)

    @classmethod
    def load(cls, path: "os.PathLike[str] | str") -> "GlyphTable":
        """Read and check a table; every problem is a one-line `UserError`."""
        path = Path(path)
        fix = "rebuild it with `python -m submission.tools.glyph_table` (or restore it from git)"
        text = read_text_file(path, f"glyph table {path}", MAX_TABLE_BYTES, "a glyph table", fix)
        try:
            raw = loads_json(text)
        except (ValueError, RecursionError) as exc:
            raise UserError(f"glyph table {path} is not valid UTF-8 JSON ({str(exc).splitlines()[0][:80]}); {fix}") from None
        try:
            return cls.from_dict(raw)
        except UserError as exc:
            raise UserError(f"glyph table {path}: {exc}; {fix}") from None

    @classmethod
    def from_dict(cls, raw: Any) -> "GlyphTable":
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise UserError(message)

        need(isinstance(raw, dict) and raw.get("format") == TABLE_FORMAT, f"not a {TABLE_FORMAT} JSON object")
        need(raw.get("version") == TABLE_VERSION, f"version {raw.get('version')!r} is not {TABLE_VERSION}")
        fonts = raw.get("fonts")
        need(isinstance(fonts, list) and len(fonts) > 0, "'fonts' must be a non-empty list")
        specs = []
        for k, font in enumerate(fonts):
            need(isinstance(font, dict) and isinstance(font.get("file"), str) and font["file"]
                 and os.path.basename(font["file"]) == font["file"] and not font["file"].startswith(".")
                 and isinstance(font.get("index"), int) and not isinstance(font.get("index"), bool)
                 and font["index"] >= 0 and isinstance(font.get("package"), str) and font["package"],
                 f"fonts[{k}] must be {{'file': a plain file name, 'index': a face index >= 0, 'package': a name}}")
            specs.append(FontSpec(font["file"], font["index"], font["package"]))
        need(len({(s.file, s.index) for s in specs}) == len(specs), "'fonts' lists a font twice")
        rows = raw.get("classes")
        need(isinstance(rows, list) and len(rows) > 0, "'classes' must be a non-empty list")
        classes = []
        repeats = raw.get("repeats", False)
        need(isinstance(repeats, bool), "'repeats' must be true or false")
        for c, row in enumerate(rows):
            need(isinstance(row, list) and all(isinstance(p, int) and not isinstance(p, bool) and 0x20 < p <= 0x10FFFF
                                               and not 0xD800 <= p < 0xE000 for p in row),
                 f"class {c} must be a list of code points")
            if repeats:
                need(len(row) >= MIN_TABLE_CHARS, f"class {c} has {len(row)} characters, fewer than {MIN_TABLE_CHARS}")
            else:
                need(len(set(row)) == len(row) >= MIN_TABLE_CHARS,
                     f"class {c} has {len(set(row))} distinct characters, fewer than {MIN_TABLE_CHARS} (or repeats one)")
            classes.append(tuple(row))
        build = raw.get("build", {})
        need(isinstance(build, dict), "'build' must be an object")
        return cls(fonts=tuple(specs), classes=tuple(classes), build=build, repeats=repeats)

    def to_dict(self) -> Dict[str, Any]:
        repeats = {"repeats": True} if self.repeats else {}  # absent when false: older tables read the same
        return {"format": TABLE_FORMAT, "version": TABLE_VERSION, **repeats,
                "fonts": [{"file": s.file, "index": s.index, "package": s.package} for s in self.fonts],
                "build": self.build, "classes": [list(row) for row in self.classes]}

    def to_json(self) -> str:
        """Compact JSON, one font and one class per line (small, and diffs read well)."""
        data = self.to_dict()
        line = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))  # noqa: E731
        head = ",\n".join(f" {json.dumps(key)}: {line(data[key])}" for key in ("format", "version", "repeats", "build")
                          if key in data)
        fonts = ",\n".join(f"  {line(font)}" for font in data["fonts"])
        rows = ",\n".join(f"  {json.dumps(row, separators=(',', ':'))}" for row in data["classes"])
        return "{\n" + head + ',\n "fonts": [\n' + fonts + '\n ],\n "classes": [\n' + rows + "\n ]\n}\n"

    def check_fits(self, config: GenerationConfig, source: str) -> None:
        if config.classes > len(self.classes):
            raise UserError(f"{source} has {len(self.classes)} classes, fewer than the {config.classes} asked for; "
                            f"use --classes {len(self.classes)} or fewer, or build a bigger table")


def check_row_lengths(config: GenerationConfig, table: GlyphTable, source: str) -> None:
    """Every used row holds glyphs.chars_per_class characters (a shorter row would be drawn with fewer)."""
    want = config.glyphs.chars_per_class
    short = [c for c in range(config.classes) if len(table.classes[c]) < want]
    if short:
        shortest = min(len(table.classes[c]) for c in short)
        raise UserError(f"glyphs.chars_per_class is {want}, but {source} has {len(short)} class row(s) with fewer "
                        f"characters (class {short[0]} has {len(table.classes[short[0]])}, the shortest {shortest}); "
                        f"use glyphs.chars_per_class {shortest} or less, or a table with longer rows")


def check_font_ratios(config: GenerationConfig, table: GlyphTable, source: str) -> None:
    """glyphs.placement "font_ratio" places by a ratio per font file, known for the 3rd place's 24 fonts only."""
    if config.glyphs.placement != "font_ratio":
        return
    unknown = [spec.file for spec in table.fonts if spec.file not in FONT_RATIOS_3RD]
    if unknown:
        raise UserError(f"glyphs.placement font_ratio knows the ratio of the 3rd place's 24 fonts only, but {source} "
                        f"uses {unknown[0]}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                        + "; use glyphs.placement ink_centre or a table of those fonts")


def table_path(config: GenerationConfig) -> Path:
    if config.glyphs.table_path is not None:
        return Path(config.glyphs.table_path)
    return DEFAULT_TABLE.with_name(CLASS_TABLES[config.glyphs.class_table])


@lru_cache(maxsize=4)
def _system_font_index(root: str) -> Dict[str, str]:
    """File name -> path of every file under `root` (the first in sorted order when a name repeats)."""
    index: Dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            index.setdefault(name, os.path.join(folder, name))
    return index


def locate_fonts(fonts: Sequence[FontSpec], font_dir: Optional[str], hint: str = "") -> List[Path]:
    """The path of each font: in `font_dir`, or found by file name under /usr/share/fonts (None).
    A missing font is a one-line `UserError` naming it and where to get it."""
    if font_dir is not None:
        paths = [Path(font_dir) / spec.file for spec in fonts]
        missing = [spec.file for spec, path in zip(fonts, paths) if not path.is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise UserError(f"font {missing[0]}{more} is missing from {font_dir}; "
                            + (hint or "put the table's font files there, or set glyphs.font_dir to null "
                                       "to use the system fonts (`make fonts`)"))
        return paths
    index = _system_font_index(str(SYSTEM_FONT_ROOT))
    missing_specs = [spec for spec in fonts if spec.file not in index]
    if missing_specs:
        packages = sorted({spec.package for spec in missing_specs})
        more = f" (and {len(missing_specs) - 1} more)" if len(missing_specs) > 1 else ""
        raise UserError(f"font {missing_specs[0].file}{more} is not under {SYSTEM_FONT_ROOT}; install the Debian "
                        f"package{'s' * (len(packages) > 1)} {' '.join(packages)} (`make fonts`, as root), "
                        "or set glyphs.font_dir to a folder holding the fonts")
    return [Path(index[spec.file]) for spec in fonts]


def license_files(fonts: Sequence[FontSpec], font_dir: Optional[str]) -> Dict[str, Path]:
    """params/fonts/ name -> source of each package's licence: beside the fonts (an unpacked
    params/fonts/) or Debian's /usr/share/doc/<package>/copyright."""
    out: Dict[str, Path] = {}
    for package in sorted({spec.package for spec in fonts}):
        name = license_name(package)
        beside = Path(font_dir) / name if font_dir is not None else None
        source = beside if beside is not None and beside.is_file() else SYSTEM_DOC_ROOT / package / "copyright"
        if not source.is_file():
            raise UserError(f"the licence of font package {package} ({source}) is missing, and a submission must ship "
                            f"it with the fonts; install the Debian package {package} (`make fonts`)")
        out[name] = source
    return out


def master_size(config: GenerationConfig) -> int:
    """The side (px) at which characters are rasterised once per class, then warped into place."""
    return int(min(MAX_MASTER_SIZE, max(8, round(config.glyphs.size_max * config.image_size))))


def open_font(path: Path, spec: FontSpec, size: int) -> Any:
    """Font `path` (face `spec.index`) at `size` px, from that exact file: Pillow's `truetype` would
    fall back to a same-named system font when the file is broken, hiding a corrupt packed font."""
    from PIL import ImageFont

    try:
        return ImageFont.FreeTypeFont(str(path), size, index=spec.index, layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        raise UserError(f"FreeType cannot open font {path} (face {spec.index}): {exc}; "
                        f"reinstall the Debian package {spec.package} or re-pack") from None


def rasterise(font: Any, char: str, size: int) -> Optional[np.ndarray]:
    """`char` drawn white on black with `font` (opened at `size` px), cropped to its ink (None when blank)."""
    from PIL import Image, ImageDraw

    side = int(size * 1.6) + 8
    image = Image.new("L", (side, side), 0)
    ImageDraw.Draw(image).text((side / 2, side / 2), char, font=font, fill=255, anchor="mm")
    a = np.asarray(image)
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    if rows.size == 0:
        return None
    return np.ascontiguousarray(a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])


def draws(bitmap: Optional[np.ndarray], notdef: Optional[np.ndarray]) -> bool:
    """Whether a rasterised character is a real glyph: not blank, and not the font's .notdef box."""
    return bitmap is not None and not (notdef is not None and bitmap.shape == notdef.shape
                                       and np.array_equal(bitmap, notdef))


def used_rows(config: GenerationConfig, table: GlyphTable) -> List[Tuple[int, ...]]:
    """The characters drawn for each class of `config`: the first chars_per_class of its table row."""
    return [table.classes[c][:config.glyphs.chars_per_class] for c in range(config.classes)]


def cache_root() -> Path:
    """Where checks that are slow and whose inputs are known are remembered ($XDG_CACHE_HOME or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "submission"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_fonts(config: GenerationConfig, table: GlyphTable, paths: Sequence[Path]) -> None:
    """In the main process, before anything is written: every font opens with FreeType, and every
    character of the used table rows is drawn by at least one font, by the worker's own test
    (rasterised at the master size, not blank, not the .notdef box). The coverage result is cached
    under `cache_root()`/glyph-coverage/, keyed by the fonts' content (SHA-256), face indices, the
    characters, the master size and Pillow's and FreeType's versions: reused only for the same inputs.
    """
    size = master_size(config)
    fonts = [open_font(path, spec, size) for path, spec in zip(paths, table.fonts)]
    rows = used_rows(config, table)
    chars = sorted({code for row in rows for code in row})
    from PIL import ImageFont
    from PIL import __version__ as pillow_version

    key = hashlib.sha256(json.dumps({
        "check": "glyph-coverage-1", "pillow": pillow_version, "freetype": ImageFont.core.freetype2_version,
        "size": size, "fonts": [[file_sha256(path), spec.index] for path, spec in zip(paths, table.fonts)],
        "chars": chars}).encode()).hexdigest()
    marker = cache_root() / "glyph-coverage" / key
    if marker.is_file():
        return
    notdefs = [rasterise(font, MISSING_CHAR, size) for font in fonts]
    covered = {code for code in chars
               if any(draws(rasterise(font, chr(code), size), notdef) for font, notdef in zip(fonts, notdefs))}
    for category, row in enumerate(rows):
        for code in row:
            if code not in covered:
                raise UserError(f"no font of the glyph table covers U+{code:04X} (class {category}); rebuild the "
                                "table with `python -m submission.tools.glyph_table` for these fonts")
    try:  # only a passed check is remembered; a cache that cannot be written just costs the check again
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(marker, b"")
    except (OSError, UserError):
        pass


class GlyphFamily(Family):
    name = "glyphs"

    def check(self, config: GenerationConfig) -> None:
        path = table_path(config)
        table = GlyphTable.load(path)
        check_font_ratios(config, table, source=f"glyph table {path}")
        table.check_fits(config, source=f"glyph table {path}")
        check_row_lengths(config, table, source=f"glyph table {path}")
        check_fonts(config, table, locate_fonts(table.fonts, config.glyphs.font_dir))

    def packed_params(self, config: GenerationConfig, progress: bool = False) -> Dict[str, bytes]:
        """params/glyph_table.json, params/fonts/<font files> and params/fonts/LICENSE-<package>.txt."""
        self.check(config)
        table_bytes = table_path(config).read_bytes()
        table = GlyphTable.load(table_path(config))
        files = {TABLE_FILE: table_bytes}
        for spec, path in zip(table.fonts, locate_fonts(table.fonts, config.glyphs.font_dir)):
            files[f"{FONTS_DIR}/{spec.file}"] = path.read_bytes()
        for name, source in license_files(table.fonts, config.glyphs.font_dir).items():
            files[f"{FONTS_DIR}/{name}"] = source.read_bytes()
        return files

    def packed_config(self, config: GenerationConfig) -> GenerationConfig:
        return config.replace(glyphs=dataclasses.replace(config.glyphs, font_dir=None, table_path=None))

    def from_params(self, config: GenerationConfig, params_dir: Path) -> GenerationConfig:
        g = config.glyphs
        if g.font_dir is not None or g.table_path is not None:
            raise UserError(f"glyphs.font_dir and glyphs.table_path must be null in the packed config (the fonts are "
                            f"params/{FONTS_DIR}/, the table params/{TABLE_FILE}), got {g.font_dir!r} and "
                            f"{g.table_path!r}; re-pack with `python -m submission pack`")
        table_file = params_dir / TABLE_FILE
        if not table_file.is_file():
            raise UserError(f"{table_file} is missing; re-pack with `python -m submission pack`")
        table = GlyphTable.load(table_file)
        table.check_fits(config, source=f"glyph table {table_file}")
        check_font_ratios(config, table, source=f"glyph table {table_file}")
        check_row_lengths(config, table, source=f"glyph table {table_file}")
        fonts_dir = params_dir / FONTS_DIR
        paths = locate_fonts(table.fonts, str(fonts_dir), hint="re-pack with `python -m submission pack`")
        for path, spec in zip(paths, table.fonts):  # each shipped font opens, from its packed path only
            open_font(path, spec, master_size(config))
        return config.replace(glyphs=dataclasses.replace(g, font_dir=str(fonts_dir), table_path=str(table_file)))

    def describe(self, config: GenerationConfig) -> str:
        g = config.glyphs
        procedure = ", the 3rd place's drawing procedure" if g.cut_before_rotation else ""
        return (f"glyphs: {g.chars_per_class} characters per class from {g.table_path or 'the packaged table ' + repr(g.class_table)}, "
                f"fonts {'in ' + g.font_dir if g.font_dir else 'from /usr/share/fonts'}, size {g.size_min:g}-{g.size_max:g} "
                f"x side, rotation step {g.rotation_step:g} deg, {g.layers} layers{procedure}")

    def worker(self, plan: RunPlan) -> "GlyphWorker":
        return GlyphWorker(plan.config)


@dataclass(frozen=True)
class Master:
    """A character rasterised once at the master size, cropped to its ink: (h, w) uint8."""

    bitmap: np.ndarray
    centre: Tuple[float, float]  # (x, y) of the ink box centre, in bitmap pixels


@dataclass(frozen=True)
class ClassGlyphs:
    """A class's characters with, for each, the fonts it is drawn with (those that cover it, or all
    of them: glyphs.font_choice) and their masters (none when glyphs.cut_before_rotation draws directly)."""

    chars: Tuple[int, ...]
    masters: Tuple[Tuple[Master, ...], ...]  # masters[i][m]: character i in font fonts[i][m]
    fonts: Tuple[Tuple[int, ...], ...]  # fonts[i]: the table's font indices character i is drawn with


class GlyphWorker(FamilyWorker):
    """Draws a class's images; fonts are opened once per worker (one size: the master size)."""

    def __init__(self, config: GenerationConfig):
        self.config = config
        self.glyphs = config.glyphs
        self.table = GlyphTable.load(table_path(config))
        self.font_paths = locate_fonts(self.table.fonts, self.glyphs.font_dir)
        self.master_size = master_size(config)
        self._fonts: Dict[int, Any] = {}
        self._notdef: Dict[int, Optional[np.ndarray]] = {}
        self._sized_fonts: Dict[Tuple[int, int], Any] = {}  # (font, px) -> font, for cut_before_rotation

    def _font(self, k: int) -> Any:
        """Font k of the table at the master size (opened once per worker)."""
        font = self._fonts.get(k)
        if font is None:
            font = open_font(self.font_paths[k], self.table.fonts[k], self.master_size)
            self._fonts[k] = font
            self._notdef[k] = rasterise(font, MISSING_CHAR, self.master_size)
        return font

    def class_context(self, category: int) -> ClassGlyphs:
        """Masters of the class's first `chars_per_class` characters in every font that covers them
        (a font that lacks a character draws its .notdef glyph, or nothing: that font is skipped), or,
        with glyphs.font_choice "all", in every font (drawing what it draws: .notdef, or nothing).
        With glyphs.cut_before_rotation the characters are drawn directly and no masters are kept."""
        g = self.glyphs
        row = self.table.classes[category][:g.chars_per_class]
        masters, fonts = [], []
        for code in row:
            per_font, ids = [], []
            for k in range(len(self.table.fonts)):
                if g.font_choice == "all" and g.cut_before_rotation:
                    ids.append(k)
                    continue
                bitmap = rasterise(self._font(k), chr(code), self.master_size)
                if not draws(bitmap, self._notdef[k]):
                    if g.font_choice != "all":
                        continue
                    bitmap = np.zeros((1, 1), np.uint8) if bitmap is None else bitmap
                ids.append(k)
                if not g.cut_before_rotation:
                    h, w = bitmap.shape
                    per_font.append(Master(bitmap, ((w - 1) / 2.0, (h - 1) / 2.0)))
            if not ids:
                raise UserError(f"no font of the glyph table covers U+{code:04X} (class {category}); rebuild the "
                                "table with `python -m submission.tools.glyph_table` for these fonts")
            masters.append(tuple(per_font))
            fonts.append(tuple(ids))
        return ClassGlyphs(tuple(row), tuple(masters), tuple(fonts))

    def render(self, category: int, indices: Sequence[int], context: Any,
               seconds: Optional[Dict[str, float]] = None) -> np.ndarray:
        cfg = self.config
        out = np.empty((len(indices), cfg.image_size, cfg.image_size, 3), np.uint8)
        sampling = 0.0
        t0 = time.perf_counter()
        period = self.glyphs.class_stream_period
        stream = category % period if period > 0 else category  # the 3rd place's shared streams (GlyphConfig)
        for b, j in enumerate(indices):
            t = time.perf_counter()
            draws = self.draw(context, rng_for(cfg.seed, STREAM_GLYPHS, stream, j))
            sampling += time.perf_counter() - t
            out[b] = self.compose(context, draws)
        if seconds is not None:
            seconds["sampling"] += sampling
            seconds["rendering"] += time.perf_counter() - t0 - sampling
        return out

    def draw(self, context: ClassGlyphs, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        """Every random draw of one image, in a fixed order, for (layers, 3 channels, characters)."""
        g = self.glyphs
        n = len(context.chars)
        shape = (g.layers, 3, n)
        side = self.config.image_size
        steps = max(1, int(math.floor(360.0 / g.rotation_step + 1e-9))) if g.rotation_step > 0 else 1
        if g.rotation_count > 0 and g.rotation_step > 0:
            steps = g.rotation_count
        return {
            "font": rng.random(shape),
            "size": rng.uniform(g.size_min, g.size_max, shape) * side,
            "angle": rng.integers(0, steps, shape) * g.rotation_step,
            "hflip": rng.random(shape) < g.flip_p,
            "vflip": rng.random(shape) < g.flip_p,
            "offset": rng.normal(0.0, g.offset_std * side, shape + (2,)),
            "ink": rng.uniform(g.ink_min, 1.0, shape),
            "blur": rng.random(shape) < g.blur_p,
            "mix": (rng.dirichlet(np.full(n, g.mix_alpha), (g.layers, 3)) if g.mix == "dirichlet"
                    else _normalised(rng.random((g.layers, 3, n)))),
            "bright": rng.random((g.layers, 3)),
            "blend": rng.dirichlet(np.ones(g.layers)),
        }

    def compose(self, context: ClassGlyphs, d: Dict[str, np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8: per layer and channel, the characters warped from their masters and mixed,
        the channel rescaled; then the layers blended. Memory stays O(image), whatever the counts."""
        g = self.glyphs
        side = self.config.image_size
        centre = (side - 1) / 2.0
        weights = (d["ink"] * d["mix"] / 255.0).astype(np.float32)  # (L, 3, n): each character's weight
        image = np.zeros((3, side, side), np.float32)
        channel = np.empty((side, side), np.float32)
        for l in range(g.layers):
            for c in range(3):
                channel.fill(0.0)
                for i, ids in enumerate(context.fonts):
                    m = min(int(d["font"][l, c, i] * len(ids)), len(ids) - 1)
                    if g.cut_before_rotation:
                        placed = self._draw_on_canvas(ids[m], chr(context.chars[i]), d, (l, c, i), side)
                    else:
                        placed = self._place(context.masters[i][m], d, (l, c, i), centre, side)
                    channel += placed.astype(np.float32) * weights[l, c, i]
                peak = float(channel.max())
                if peak > 0:  # the brightest pixel lands uniformly in [peak, 1]
                    channel *= np.float32((peak + float(d["bright"][l, c]) * (1.0 - peak)) / peak)
                image[c] += channel * np.float32(d["blend"][l])
        image = np.clip(image * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(image.transpose(1, 2, 0))

    def _place(self, master: Master, d: Dict[str, np.ndarray], at: Tuple[int, int, int], centre: float,
               side: int) -> np.ndarray:
        """One character: the master scaled, rotated, flipped and moved onto a (side, side) canvas."""
        g = self.glyphs
        scale = d["size"][at] / self.master_size
        theta = math.radians(d["angle"][at])
        cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
        fx = -1.0 if d["hflip"][at] else 1.0
        fy = -1.0 if d["vflip"][at] else 1.0
        a = np.array([[cos * fx, sin * fy], [-sin * fx, cos * fy]])  # rotation after the flips, y down
        dx, dy = d["offset"][at]
        shift = np.zeros(2) if g.wrap else np.array([dx, dy])
        t = np.array([centre, centre]) + shift - a @ np.array(master.centre)
        matrix = np.hstack([a, t[:, None]])
        flags = cv2.INTER_NEAREST if g.rotation_interpolation == "nearest" else cv2.INTER_LINEAR
        placed = cv2.warpAffine(master.bitmap, matrix, (side, side), flags=flags,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if d["blur"][at] and g.blur_size > 1:
            placed = cv2.blur(placed, (g.blur_size, g.blur_size))
        if g.wrap:
            placed = np.roll(placed, self._whole_pixels(dy, dx), axis=(0, 1))
        return placed

    def _whole_pixels(self, dy: float, dx: float) -> Tuple[int, int]:
        if self.glyphs.offset_rounding == "floor":
            return int(math.floor(dy)), int(math.floor(dx))
        return int(round(dy)), int(round(dx))

    def _sized_font(self, k: int, size: int) -> Any:
        font = self._sized_fonts.get((k, size))
        if font is None:
            font = open_font(self.font_paths[k], self.table.fonts[k], size)
            self._sized_fonts[(k, size)] = font
        return font

    def _draw_on_canvas(self, k: int, char: str, d: Dict[str, np.ndarray], at: Tuple[int, int, int],
                        side: int) -> np.ndarray:
        """One character as the 3rd place draws it (K:30-62): at its whole-pixel size on a (side, side)
        canvas (ink beyond it is cut), the canvas rotated about its centre, flipped, offset, blurred."""
        from PIL import Image, ImageDraw

        g = self.glyphs
        font = self._sized_font(k, max(1, int(d["size"][at])))  # K:33-37 int(...): whole pixels
        canvas = Image.new("L", (side, side), 0)
        left, top, right, bottom = font.getbbox(char)
        if g.placement == "font_ratio":  # K:39-44: PIL's default (left, ascender) anchor, the height scaled per font
            ratio = FONT_RATIOS_3RD[self.table.fonts[k].file]
            at_xy = ((side - (right - left)) / 2.0, (side - (bottom - top) * ratio) / 2.0)
        else:  # the ink box centred
            at_xy = (side / 2.0 - (left + right) / 2.0, side / 2.0 - (top + bottom) / 2.0)
        ImageDraw.Draw(canvas).text(at_xy, char, font=font, fill=255)
        resample = Image.NEAREST if g.rotation_interpolation == "nearest" else Image.BILINEAR
        placed = np.asarray(canvas.rotate(float(d["angle"][at]), resample=resample))
        if d["vflip"][at]:
            placed = placed[::-1]
        if d["hflip"][at]:
            placed = placed[:, ::-1]
        dy, dx = self._whole_pixels(d["offset"][at][1], d["offset"][at][0])
        placed = np.roll(placed, (dy, dx), axis=(0, 1)) if g.wrap else _shifted(placed, dy, dx)
        if d["blur"][at] and g.blur_size > 1:
            placed = cv2.blur(np.ascontiguousarray(placed), (g.blur_size, g.blur_size))
        return placed


def _normalised(w: np.ndarray) -> np.ndarray:
    """Weights divided by their sum over the last axis (K:72-74: uniform draws normalised to sum 1)."""
    return w / w.sum(axis=-1, keepdims=True)


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`a` moved by (dy, dx) whole pixels, what leaves the frame dropped and the rest black."""
    out = np.zeros_like(a)
    h, w = a.shape
    if abs(dy) < h and abs(dx) < w:
        out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = a[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out
