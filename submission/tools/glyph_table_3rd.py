"""`python -m submission.tools.glyph_table_3rd OUT.json`: rebuild the 3rd place's class table with
their procedure (askbox-net/NEDO-ASKBOX clustering/vae_classify.py = V, clustering/char.txt), as far as it
can run here; its output is committed as submission/families/glyphs/glyph_table_3rd.json (`glyphs.class_table
"3rd"`, the `glyphs-3rd` recipe). A developer tool, run once (`make glyph-table-3rd`); needs scikit-learn.

1. Character list, by rule (`character_list`): their char.txt is the digits, 10 ASCII symbols `$?%&#!{[+@`,
   the Latin letters, hiragana (U+3041-3096, U+309B-309F), katakana (U+30A0-30FF, U+31F0-31FF) and the
   ideographs of JIS X 0213 (planes 1 and 2, read from Python's euc_jis_2004 codec) and of Windows-31J
   (cp932: the NEC/IBM extensions), BMP code-point order; that run three times (the symbols only in the
   first), then the Ext-B ones once. This rule gives 10,410 of their 10,412 distinct characters (not
   U+9B1D and U+29FD7) and no other; every character repeated 3 times, as theirs, so a class can hold one
   character up to 3 times.
2. Each entry is rendered as V:get_char_img does: 64 x 64, a font drawn at random among the four Takao
   fonts (seeded here; theirs is unseeded), size 64, at ((W - w)/2, (H - h * 1.2)/2), ink 255.
3. Embedding -- the stand-in: their features are the mean (mu) and a sample (z) of a ResNet-18 VAE
   encoder whose weights are not published (vae_resnet18-100-submit.pt is absent from their repository);
   here mu is the PCA to 100 dims of the renders blurred with sigma 1.5 (our glyph_table.py embedding) and
   z = mu + N(0, (Z_NOISE x the per-dimension std)^2), standing in for the reparameterised sample.
4. Clustering as V:97-139: KMeans(1000) on mu (label), PCA(100) of mu then KMeans(1000) (pca_label),
   KMeans(1000) on z (zlabel), all scikit-learn defaults but seeded (the table's build "seed" s seeds
   pca_label's k-means and z's noise; label's and zlabel's k-means take s + 10,000 and s + 20,000); the score s of each entry counts how
   many of its label / pca_label / zlabel equal the previous entry's after V's three sorts; each class is a
   pca_label cluster's 6 entries of largest s (V:133 nlargest(6, 's'): ties by order); re-run (next seed)
   until every pca_label cluster has at least 6 entries (V:146-149; only that clustering is re-run here,
   which draws from the same distribution). Classes in pca_label order.
"""
from __future__ import annotations

import argparse
import sys
import time
import unicodedata
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError
from ..families.glyphs.family import GlyphTable, locate_fonts
from .command import OneLineParser, run_command
from .glyph_table import BLUR_SIGMA, DEFAULT_FONTS, write_table

HELP = "rebuild the 3rd place's glyph class table (their character list and selection; PCA stand-in for their VAE)"

SYMBOLS = "$?%&#!{[+@"  # char.txt lines 11-20, listed once
KANA = ((0x3041, 0x3096), (0x309B, 0x30FF), (0x31F0, 0x31FF))  # hiragana 91, katakana 96 + 16
JIS_X_0213_PLANE2_ROWS = (1, 3, 4, 5, 8, 12, 13, 14, 15, *range(78, 95))  # the rows plane 2 defines
EMBED_FONTS = ("TakaoGothic.ttf", "TakaoMincho.ttf", "TakaoPGothic.ttf", "TakaoPMincho.ttf")  # V:16-21
CELL = 64  # V:23 pixel=64
RATIO = 1.2  # V:31
DIMS = 100  # V:64 VAE(100), V:100 PCA(n_components=100)
PER_CLASS = 6  # V:131 N = 6
Z_NOISE = 0.25  # stand-in for the VAE's posterior spread: z = mu + N(0, (0.25 std)^2) per dimension


def _is_ideograph(c: str) -> bool:
    name = unicodedata.name(c, "")
    return name.startswith("CJK") and "IDEOGRAPH" in name


def _decoded(data: bytes, codec: str) -> Optional[str]:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    return text if len(text) == 1 else None


def jis_ideographs() -> List[str]:
    """The ideographs of JIS X 0213 planes 1-2 (euc_jis_2004) and of Windows-31J (cp932), code-point order."""
    found = set()
    for row in range(1, 95):
        for cell in range(1, 95):
            candidates = [bytes([0xA0 + row, 0xA0 + cell])]
            if row in JIS_X_0213_PLANE2_ROWS:
                candidates.append(bytes([0x8F, 0xA0 + row, 0xA0 + cell]))
            for data in candidates:
                c = _decoded(data, "euc_jis_2004")
                if c is not None and _is_ideograph(c):
                    found.add(c)
    for lead in (*range(0x81, 0xA0), *range(0xE0, 0xFD)):
        for trail in range(0x40, 0xFD):
            c = _decoded(bytes([lead, trail]), "cp932")
            if c is not None and _is_ideograph(c):
                found.add(c)
    return sorted(found)


def character_list() -> List[str]:
    """Their char.txt by rule: (digits, symbols, then letters, kana and BMP ideographs in code-point order)
    three times, the symbols in the first run only, then the Ext-B ideographs once."""
    ideographs = jis_ideographs()
    rest = sorted([chr(c) for c in range(ord("A"), ord("Z") + 1)] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
                  + [chr(c) for lo, hi in KANA for c in range(lo, hi + 1)] + [c for c in ideographs if ord(c) < 0x10000])
    digits = [str(d) for d in range(10)]
    run = digits + rest
    return digits + list(SYMBOLS) + rest + run + run + [c for c in ideographs if ord(c) >= 0x10000]


def render_entries(fonts: Sequence[object], chars: Sequence[str], seed: int) -> np.ndarray:
    """(N, CELL, CELL) uint8, each entry as V:get_char_img draws it, its font drawn at random (seeded)."""
    from PIL import Image, ImageDraw

    pick = np.random.default_rng(seed).integers(0, len(fonts), len(chars))
    out = np.empty((len(chars), CELL, CELL), np.uint8)
    for k, (char, f) in enumerate(zip(chars, pick)):
        font = fonts[f]
        image = Image.new("L", (CELL, CELL), 0)
        left, top, right, bottom = font.getbbox(char)
        ImageDraw.Draw(image).text(((CELL - (right - left)) / 2.0, (CELL - (bottom - top) * RATIO) / 2.0), char,
                                   font=font, fill=255)
        out[k] = np.asarray(image)
    return out


def _diff(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Per entry (by index): its value minus the previous entry's in `order`, -999 for the first
    (V: `diff().fillna(-999).astype('int')`)."""
    out = np.empty(len(values), np.int64)
    ordered = values[order].astype(np.int64)
    out[order[0]] = -999
    out[order[1:]] = ordered[1:] - ordered[:-1]
    return out


def _sorted_by(order: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """`order` stably re-sorted by `keys` (first key first), as pandas sort_values on several columns."""
    return order[np.lexsort(tuple(k[order] for k in reversed(keys)))]


def select(label: np.ndarray, pca_label: np.ndarray, zlabel: np.ndarray, classes: int,
           per_class: int = PER_CLASS) -> Optional[List[List[int]]]:
    """V:117-139: the entry indices of each pca_label class (largest score s first), or None when a
    pca_label cluster has fewer than `per_class` entries (V then re-runs everything)."""
    order = np.arange(len(label))
    order = _sorted_by(order, label, pca_label)  # V:118-119
    pca_diff = _diff(pca_label, order)
    order = _sorted_by(order, label, zlabel)  # V:120-121
    z_diff = _diff(zlabel, order)
    order = _sorted_by(order, label, pca_diff, zlabel)  # V:122 (fixes the order of ties below)
    order = _sorted_by(order, pca_label, label)  # V:124-125
    label_diff = _diff(label, order)
    score = (label_diff == 0).astype(int) + (pca_diff == 0).astype(int) + (z_diff == 0).astype(int)  # V:127
    rows = []
    for c in range(classes):
        members = order[pca_label[order] == c]  # in the frame's order: nlargest keeps the first of ties
        if len(members) < per_class:
            return None
        rows.append(members[np.argsort(-score[members], kind="stable")[:per_class]].tolist())
    return rows


def cluster_and_select(mu: np.ndarray, classes: int, seed: int, attempts: int) -> Tuple[List[List[int]], int]:
    """V:97-139 and its re-run loop. Only the pca_label clustering can fail V's check (each pca_label
    cluster needs 6 entries), and the three k-means runs are independent, so re-running only that one until
    it passes (then the other two once) draws from the same distribution as V's re-running all three."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    mpca = PCA(n_components=min(DIMS, mu.shape[1]), random_state=seed).fit_transform(mu)
    for attempt in range(attempts):
        s = seed + attempt
        pca_label = KMeans(n_clusters=classes, random_state=s).fit_predict(mpca)
        sizes = np.bincount(pca_label, minlength=classes)
        print(f"  attempt {attempt + 1} (seed {s}): pca_label clusters of {sizes.min()}..{sizes.max()} entries; "
              f"{int((sizes < PER_CLASS).sum())} under {PER_CLASS}", flush=True)
        if sizes.min() < PER_CLASS:
            continue
        z = mu + np.random.default_rng(s).normal(0.0, 1.0, mu.shape).astype(np.float32) * (Z_NOISE * mu.std(axis=0))
        label = KMeans(n_clusters=classes, random_state=s + 10_000).fit_predict(mu)
        zlabel = KMeans(n_clusters=classes, random_state=s + 20_000).fit_predict(z)
        rows = select(label, pca_label, zlabel, classes)
        assert rows is not None
        return rows, s
    raise UserError(f"no attempt of {attempts} gave every class {PER_CLASS} entries; use more --attempts")


def build(classes: int, seed: int, attempts: int, font_dir: Optional[str], argv: Sequence[str]) -> GlyphTable:
    import sklearn
    from PIL import ImageFont

    from .glyph_table import embed

    start = time.perf_counter()
    chars = character_list()
    print(f"glyph_table_3rd: {len(chars)} entries, {len(set(chars))} distinct characters", flush=True)
    paths = {spec.file: path for spec, path in zip(DEFAULT_FONTS, locate_fonts(DEFAULT_FONTS, font_dir))}
    fonts = [ImageFont.truetype(str(paths[name]), CELL, layout_engine=ImageFont.Layout.BASIC) for name in EMBED_FONTS]
    mu = embed(render_entries(fonts, chars, seed), DIMS, seed)
    picked, used_seed = cluster_and_select(mu, classes, seed, attempts)
    rows = tuple(tuple(ord(chars[i]) for i in row) for row in picked)
    seconds = time.perf_counter() - start
    table = GlyphTable(fonts=DEFAULT_FONTS, classes=rows, repeats=True, build={
        "command": "python -m submission.tools.glyph_table_3rd " + " ".join(argv),
        "procedure": "the 3rd place's clustering/vae_classify.py with a PCA stand-in for its VAE (see the tool's docstring)",
        "candidates": f"their char.txt by rule: {len(chars)} entries, {len(set(chars))} distinct (JIS X 0213 + cp932 "
                      "ideographs, kana, ASCII letters/digits/10 symbols; x3 but symbols and Ext-B)",
        "embedding": f"{CELL}x{CELL} renders in a random Takao font (ratio {RATIO}), blurred sigma {BLUR_SIGMA}, PCA to "
                     f"{DIMS} dims (mu); z = mu + N(0, ({Z_NOISE} std)^2)",
        "clustering": f"scikit-learn {sklearn.__version__} KMeans({classes}) on mu, on PCA({DIMS}) of mu and on z "
                      f"(seed {used_seed}); {PER_CLASS} entries of largest s per pca_label cluster",
        "order": "classes by pca_label; each row largest s first (repeats kept)",
        "seconds": round(seconds, 1),
    })
    GlyphTable.from_dict(table.to_dict())  # the loader's own checks
    distinct = np.bincount([len(set(r)) for r in rows], minlength=PER_CLASS + 1)
    print(f"  distinct characters per class: {dict((k, int(v)) for k, v in enumerate(distinct) if v)}; "
          f"{seconds:.0f} s", flush=True)
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT.json", help="e.g. submission/families/glyphs/glyph_table_3rd.json")
    parser.add_argument("--classes", type=int, default=1000, help="number of classes (default 1000, V's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fonts, PCA, noise and k-means (default 0)")
    parser.add_argument("--attempts", type=int, default=100, help="re-runs allowed until every class has 6 (default 100)")
    parser.add_argument("--font-dir", help="folder holding the fonts (default: found by name under /usr/share/fonts)")


def run(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    if args.classes < 1 or args.attempts < 1:
        raise UserError(f"--classes and --attempts must be positive, got {args.classes} and {args.attempts}")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise UserError("the table builder needs scikit-learn: pip install -r requirements.txt") from None
    out = Path(args.out)
    table = build(args.classes, args.seed, args.attempts, args.font_dir, argv)
    write_table(out, table)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = OneLineParser(prog="python -m submission.tools.glyph_table_3rd", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: run(args, argv))


if __name__ == "__main__":
    sys.exit(main())
