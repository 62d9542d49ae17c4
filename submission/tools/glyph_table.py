"""`python -m submission.tools.glyph_table OUT.json`: build the glyph family's class table
(a developer tool, run once; its output is committed as submission/families/glyphs/glyph_table.json).

1. Candidates: the CJK Unified Ideographs (U+4E00..U+9FFF) and Extension A (U+3400..U+4DBF) that the
   reference font (Noto Sans CJK JP Regular) draws, about 27.5k (or a seeded sample of --chars).
2. Each is rendered 64x64 grayscale, em box centred, blurred (Gaussian, sigma 1.5 px, so that nearby
   strokes count as close) and embedded by PCA to --dims (100) dimensions.
3. k-means (scikit-learn, k = --classes) clusters the embeddings. k-means does not bound cluster
   sizes, so: every cluster smaller than --min-per-class is dropped and its characters join the
   nearest remaining centroid; then the largest clusters are split in two (2-means) until there are
   --classes clusters again, each with at least --min-per-class characters.
4. Each class lists its characters nearest its centroid first (the generator draws the first
   `glyphs.chars_per_class`, 6 by default); classes are ordered by their first character.

The JSON also lists the 24 fonts the generator draws with (file, face, Debian package); each character
is drawn only with the fonts that cover it (all 24 for the ~9.7k the IPA/Takao fonts have, the 14 Noto
weights for the rest). Needs scikit-learn (requirements.txt), not shipped to the server.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..errors import UserError
from ..families.glyphs.family import MIN_TABLE_CHARS, FontSpec, GlyphTable, locate_fonts
from .command import OneLineParser, run_command

HELP = "build the glyph family's class table (CJK characters clustered into classes of similar-looking ones)"

_NOTO, _NOTO_EXTRA = "fonts-noto-cjk", "fonts-noto-cjk-extra"
# The write-up's 24 fonts: Noto Sans / Serif CJK in every weight (face 0 of each collection: Japanese),
# Takao, IPA and IPAex. Each file is in the Debian package named beside it.
DEFAULT_FONTS = (
    *(FontSpec(f"NotoSansCJK-{w}.ttc", 0, _NOTO if w in ("Regular", "Bold") else _NOTO_EXTRA)
      for w in ("Thin", "Light", "DemiLight", "Regular", "Medium", "Bold", "Black")),
    *(FontSpec(f"NotoSerifCJK-{w}.ttc", 0, _NOTO if w in ("Regular", "Bold") else _NOTO_EXTRA)
      for w in ("ExtraLight", "Light", "Regular", "Medium", "SemiBold", "Bold", "Black")),
    FontSpec("TakaoGothic.ttf", 0, "fonts-takao-gothic"), FontSpec("TakaoPGothic.ttf", 0, "fonts-takao-gothic"),
    FontSpec("TakaoMincho.ttf", 0, "fonts-takao-mincho"), FontSpec("TakaoPMincho.ttf", 0, "fonts-takao-mincho"),
    FontSpec("ipag.ttf", 0, "fonts-ipafont-gothic"), FontSpec("ipagp.ttf", 0, "fonts-ipafont-gothic"),
    FontSpec("ipam.ttf", 0, "fonts-ipafont-mincho"), FontSpec("ipamp.ttf", 0, "fonts-ipafont-mincho"),
    FontSpec("ipaexg.ttf", 0, "fonts-ipaexfont-gothic"), FontSpec("ipaexm.ttf", 0, "fonts-ipaexfont-mincho"),
)
REFERENCE_FONT = "NotoSansCJK-Regular.ttc"
BLOCKS = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF))  # CJK Unified Ideographs, Extension A
CELL = 64  # embedding bitmap side
EM = 60  # font size of the embedding bitmaps (the em box fills the cell)
BLUR_SIGMA = 1.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT.json", help="where to write the table, e.g. submission/families/glyphs/glyph_table.json")
    parser.add_argument("--chars", type=int, help="use a seeded sample of this many candidate characters (default: all, ~27.5k)")
    parser.add_argument("--classes", type=int, default=1000, help="number of classes (default 1000)")
    parser.add_argument("--min-per-class", type=int, default=MIN_TABLE_CHARS,
                        help=f"fewest characters in a class (default and minimum {MIN_TABLE_CHARS})")
    parser.add_argument("--dims", type=int, default=100, help="PCA dimensions of the embedding (default 100)")
    parser.add_argument("--n-init", type=int, default=3, help="k-means restarts (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample, PCA and k-means (default 0)")
    parser.add_argument("--font-dir", help="folder holding the fonts (default: found by name under /usr/share/fonts)")
    parser.add_argument("--preview", metavar="PNG", help="also draw the first characters of some classes into a picture")


def render_cells(font, codes: Sequence[int]) -> np.ndarray:
    """(N, CELL, CELL) uint8: each code point drawn white on black, em box centred."""
    from PIL import Image, ImageDraw

    out = np.empty((len(codes), CELL, CELL), np.uint8)
    for k, code in enumerate(codes):
        image = Image.new("L", (CELL, CELL), 0)
        ImageDraw.Draw(image).text((CELL / 2, CELL / 2), chr(code), font=font, fill=255, anchor="mm")
        out[k] = np.asarray(image)
    return out


def candidates(font) -> List[int]:
    """Code points of `BLOCKS` that `font` draws (neither blank nor its .notdef glyph)."""
    codes = [c for lo, hi in BLOCKS for c in range(lo, hi + 1)]
    notdef = render_cells(font, [0x10FFFD])[0]
    cells = render_cells(font, codes)
    keep = cells.reshape(len(codes), -1).any(axis=1) & (cells != notdef).reshape(len(codes), -1).any(axis=1)
    return [c for c, k in zip(codes, keep) if k]


def embed(cells: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """(N, dims) float32: PCA of the blurred bitmaps."""
    import cv2
    from sklearn.decomposition import PCA

    blurred = np.stack([cv2.GaussianBlur(c.astype(np.float32) / 255.0, (0, 0), BLUR_SIGMA) for c in cells])
    pca = PCA(n_components=dims, svd_solver="randomized", random_state=seed)
    z = pca.fit_transform(blurred.reshape(len(cells), -1))
    print(f"  PCA to {dims} dims keeps {pca.explained_variance_ratio_.sum():.1%} of the variance", flush=True)
    return z.astype(np.float32)


def cluster(z: np.ndarray, classes: int, min_size: int, n_init: int, seed: int) -> List[np.ndarray]:
    """`classes` index arrays of >= `min_size` points each (k-means, then drop small / split large)."""
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=classes, n_init=n_init, random_state=seed).fit_predict(z)
    groups = [np.flatnonzero(labels == c) for c in range(classes)]
    sizes = np.array([len(g) for g in groups])
    print(f"  k-means sizes: min {sizes.min()}, median {int(np.median(sizes))}, max {sizes.max()}; "
          f"{int((sizes < min_size).sum())} below {min_size}", flush=True)
    # Drop the smallest cluster under min_size, its points joining the nearest remaining centroid; repeat.
    groups = [g for g in groups if len(g)]
    while True:
        small = [k for k, g in enumerate(groups) if len(g) < min_size]
        if not small:
            break
        drop = min(small, key=lambda k: (len(groups[k]), k))
        orphans = groups.pop(drop)
        centres = np.stack([z[g].mean(axis=0) for g in groups])
        nearest = np.argmin(((z[orphans, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        for point, k in zip(orphans, nearest):
            groups[k] = np.append(groups[k], point)
    dropped = classes - len(groups)
    # Split the largest clusters in two until there are `classes` again (both halves >= min_size).
    unsplittable = set()
    while len(groups) < classes:
        order = sorted((k for k in range(len(groups)) if k not in unsplittable), key=lambda k: (-len(groups[k]), k))
        if not order:
            raise UserError(f"cannot make {classes} classes of >= {min_size} characters from {len(z)}; "
                            "use more --chars or fewer --classes")
        k = order[0]
        halves = KMeans(n_clusters=2, n_init=3, random_state=seed).fit_predict(z[groups[k]])
        a, b = groups[k][halves == 0], groups[k][halves == 1]
        if min(len(a), len(b)) < min_size:
            unsplittable.add(k)
            continue
        groups[k] = a
        groups.append(b)
        unsplittable.clear()
    print(f"  dropped {dropped} clusters under {min_size} characters and split {dropped} large ones", flush=True)
    return groups


def order_members(z: np.ndarray, codes: np.ndarray, groups: List[np.ndarray]) -> List[List[int]]:
    """Each class's code points, nearest its centroid first; classes sorted by their first one."""
    rows = []
    for g in groups:
        d = ((z[g] - z[g].mean(axis=0)) ** 2).sum(axis=1)
        rows.append([int(codes[i]) for i in g[np.lexsort((codes[g], d))]])
    return sorted(rows)


def preview(font, rows: List[List[int]], path: Path, shown: int = 24, width: int = 12) -> None:
    """The first `width` characters of `shown` classes spread over the table, one class per row."""
    from PIL import Image

    picks = [rows[int(k)] for k in np.linspace(0, len(rows) - 1, shown)]
    sheet = np.zeros((shown * CELL, width * CELL), np.uint8)
    for r, row in enumerate(picks):
        cells = render_cells(font, row[:width])
        for c, cell in enumerate(cells):
            sheet[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] = cell
    Image.fromarray(255 - sheet).save(path)


def build(out: Path, chars: Optional[int], classes: int, min_size: int, dims: int, n_init: int, seed: int,
          font_dir: Optional[str], preview_path: Optional[Path], argv: Sequence[str]) -> GlyphTable:
    import sklearn
    from PIL import ImageFont

    start = time.perf_counter()
    paths = locate_fonts(DEFAULT_FONTS, font_dir)
    names = [spec.file for spec in DEFAULT_FONTS]
    reference = ImageFont.truetype(str(paths[names.index(REFERENCE_FONT)]), EM, index=0,
                                   layout_engine=ImageFont.Layout.BASIC)
    codes = np.array(candidates(reference))
    print(f"glyph_table: {len(codes)} candidate characters drawn by {REFERENCE_FONT}", flush=True)
    if chars is not None and chars < len(codes):
        codes = np.sort(np.random.default_rng(seed).choice(codes, chars, replace=False))
        print(f"  sampled {len(codes)} of them (seed {seed})", flush=True)
    if len(codes) < classes * min_size:
        raise UserError(f"{len(codes)} characters cannot make {classes} classes of >= {min_size}; "
                        "use more --chars or fewer --classes")
    z = embed(render_cells(reference, codes), min(dims, len(codes)), seed)
    rows = order_members(z, codes, cluster(z, classes, min_size, n_init, seed))
    seconds = time.perf_counter() - start
    table = GlyphTable(fonts=DEFAULT_FONTS, classes=tuple(tuple(r) for r in rows), build={
        "command": "python -m submission.tools.glyph_table " + " ".join(argv),
        "candidates": f"U+4E00..U+9FFF and U+3400..U+4DBF drawn by {REFERENCE_FONT}",
        "characters": int(len(codes)),
        "embedding": f"PCA to {dims} dims of {CELL}x{CELL} renders (font size {EM}) blurred with sigma {BLUR_SIGMA}",
        "clustering": f"scikit-learn {sklearn.__version__} k-means (n_init {n_init}, seed {seed}); clusters under "
                      f"{min_size} dropped (characters to the nearest centroid), largest split by 2-means",
        "order": "each class nearest its centroid first; classes by first code point",
        "seconds": round(seconds, 1),
    })
    GlyphTable.from_dict(table.to_dict())  # the loader's own checks
    sizes = np.array([len(r) for r in rows])
    print(f"  {len(rows)} classes: sizes min {sizes.min()}, median {int(np.median(sizes))}, max {sizes.max()}; "
          f"{seconds:.0f} s", flush=True)
    if preview_path is not None:
        preview(reference, rows, preview_path)
        print(f"  preview: {preview_path}")
    return table


def run(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    if args.classes < 1 or args.min_per_class < MIN_TABLE_CHARS or args.dims < 1 or args.n_init < 1:
        raise UserError(f"--classes, --dims and --n-init must be positive and --min-per-class at least {MIN_TABLE_CHARS}")
    if args.chars is not None and args.chars < 1:
        raise UserError(f"--chars must be positive, got {args.chars}")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise UserError("the table builder needs scikit-learn: pip install -r requirements.txt") from None
    out = Path(args.out)
    table = build(out, args.chars, args.classes, args.min_per_class, args.dims, args.n_init, args.seed,
                  args.font_dir, Path(args.preview) if args.preview else None, argv)
    write_table(out, table)
    return 0


def write_table(out: Path, table: GlyphTable) -> None:
    """Write `table` to `out` atomically (its folder made if needed) and say so."""
    from ..fileio import make_dirs, write_atomic

    data = table.to_json().encode("utf-8")
    make_dirs(out.parent, "OUT.json's")
    write_atomic(out, data)
    print(f"wrote {out} ({len(data) / 1024:.0f} KiB, {len(table.classes)} classes)")


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = OneLineParser(prog="python -m submission.tools.glyph_table", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: run(args, argv))


if __name__ == "__main__":
    sys.exit(main())
