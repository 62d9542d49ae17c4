"""The 3rd place's glyph drawing procedure as named `GlyphConfig` fields (docs/published-recipes.md
section 2.2; askbox-net/NEDO-ASKBOX submit/src/generator.py = K), each on a tiny table of its own, and
the `glyphs-3rd` recipe (= `glyphs`). The GlyphConfig defaults keep our bytes, the `glyphs-ours` recipe's
(tests/test_glyphs.py, test_pinned_bytes.py)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

from submission.config import GenerationConfig
from submission.errors import UserError
from submission.families import create_family
from submission.families.glyphs.config import FONT_RATIOS_3RD, GlyphConfig
from submission.families.glyphs.family import FontSpec
from submission.plan import RunPlan

from .test_glyphs import CJK_FONT, needs_all_fonts, needs_font, one_line, tiny, write_table  # noqa: F401  (fixture)

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # draws no CJK: a font that lacks the characters


def with_glyphs(config: GenerationConfig, **changes) -> GenerationConfig:
    return config.replace(glyphs=dataclasses.replace(config.glyphs, **changes))


def worker_for(config: GenerationConfig):
    return create_family("glyphs").worker(RunPlan.resolve(config))


def one_draw(side: int, angle: float = 0.0, size: float = 40.0, offset=(0.0, 0.0)) -> Dict[str, np.ndarray]:
    """The draws of one character at (0, 0, 0): no flips, no blur, full ink."""
    at = (1, 1, 1)
    return {"font": np.zeros(at), "size": np.full(at, size), "angle": np.full(at, angle),
            "hflip": np.zeros(at, bool), "vflip": np.zeros(at, bool), "offset": np.array(offset, float).reshape(at + (2,)),
            "ink": np.ones(at), "blur": np.zeros(at, bool)}


def ink_box(a: np.ndarray):
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


# --- config -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, fragment", [
    ({"mix": "even"}, "unknown glyphs.mix 'even'; choose one of ['dirichlet', 'uniform_normalised']"),
    ({"font_choice": "any"}, "unknown glyphs.font_choice"),
    ({"placement": "centre"}, "unknown glyphs.placement"),
    ({"rotation_interpolation": "cubic"}, "unknown glyphs.rotation_interpolation"),
    ({"offset_rounding": "ceil"}, "unknown glyphs.offset_rounding"),
    ({"rotation_count": -1}, "glyphs.rotation_count must be at least 0"),
    ({"cut_before_rotation": 1}, "glyphs.cut_before_rotation must be true or false"),
    ({"class_stream_period": -40}, "glyphs.class_stream_period must be at least 0"),
    ({"placement": "font_ratio"}, "glyphs.placement font_ratio needs glyphs.cut_before_rotation true"),
])
def test_bad_procedure_fields_are_one_line(changes, fragment):
    with pytest.raises(UserError) as exc:
        GenerationConfig(glyphs=GlyphConfig(**changes))
    assert fragment in one_line(exc)


def test_procedure_fields_round_trip():
    config = GenerationConfig(family="glyphs", glyphs=GlyphConfig(
        mix="uniform_normalised", font_choice="all", placement="font_ratio", rotation_count=74,
        rotation_interpolation="nearest", cut_before_rotation=True, offset_rounding="floor", class_stream_period=40))
    assert GenerationConfig.from_json(config.to_json()) == config


# --- mixing (K:72-74) -----------------------------------------------------------------------------------

@needs_font
def test_uniform_normalised_mix_is_nearly_even_and_dirichlet_is_not(tiny):
    def share_over_half(config: GenerationConfig) -> float:
        worker = worker_for(config)
        context = worker.class_context(0)
        rng = np.random.default_rng(0)
        mixes = np.concatenate([worker.draw(context, rng)["mix"].reshape(-1, 6) for _ in range(1000)])  # 6000 mixes
        assert np.allclose(mixes.sum(axis=1), 1.0) and (mixes > 0).all()
        return float((mixes.max(axis=1) > 0.5).mean())

    # measured on 10^6 draws: 0.83% (theirs) and 18.75% (Dirichlet(1), ours)
    assert share_over_half(with_glyphs(tiny, mix="uniform_normalised")) < 0.03
    assert share_over_half(tiny) > 0.10


# --- font choice (K:32) -------------------------------------------------------------------------------

@needs_font
@pytest.mark.skipif(not DEJAVU.is_file(), reason="DejaVu Sans is not installed")
@pytest.mark.parametrize("cut", [False, True])
def test_font_choice_all_draws_fonts_that_lack_the_character(tiny, tmp_path, cut):
    fonts = Path(tiny.glyphs.font_dir)
    (fonts / DEJAVU.name).symlink_to(DEJAVU)
    table = write_table(tmp_path / "two.json", [FontSpec(CJK_FONT.name, 0, "fonts-test"), FontSpec(DEJAVU.name, 0, "fonts-test")])
    base = with_glyphs(tiny, table_path=str(table), cut_before_rotation=cut)
    covering = worker_for(base).class_context(0)
    assert covering.fonts == ((0,),) * 6  # DejaVu draws no kanji: skipped
    every = worker_for(with_glyphs(base, font_choice="all"))
    context = every.class_context(0)
    assert context.fonts == ((0, 1),) * 6
    # DejaVu's draws are its .notdef box: a render that picks it for every character differs from one that never does
    draws = every.draw(context, np.random.default_rng(1))
    lacking, having = dict(draws, font=np.full_like(draws["font"], 0.99)), dict(draws, font=np.zeros_like(draws["font"]))
    assert not np.array_equal(every.compose(context, lacking), every.compose(context, having))
    if not cut:
        assert all(len(m) == 2 for m in context.masters)


# --- placement, cut and rotation on the canvas (K:30-62) -----------------------------------------------

@needs_font
def test_font_ratio_places_by_the_fonts_ratio_and_ink_centre_centres(tiny):
    from PIL import Image, ImageDraw

    side, size = 64, 40
    canvas = with_glyphs(tiny, cut_before_rotation=True)
    assert CJK_FONT.name in FONT_RATIOS_3RD
    centred = worker_for(canvas)._draw_on_canvas(0, "語", one_draw(side, size=size), (0, 0, 0), side)
    top, bottom, left, right = ink_box(centred)
    assert abs((top + bottom) / 2 - (side - 1) / 2) <= 1 and abs((left + right) / 2 - (side - 1) / 2) <= 1
    ratio_worker = worker_for(with_glyphs(canvas, placement="font_ratio"))
    placed = ratio_worker._draw_on_canvas(0, "語", one_draw(side, size=size), (0, 0, 0), side)
    # K:39-44 as written there: PIL's default anchor at ((W - w)/2, (H - h * ratio)/2), w and h from getbbox
    font = ratio_worker._sized_font(0, size)
    l, t, r, b = font.getbbox("語")
    expected = Image.new("L", (side, side), 0)
    ImageDraw.Draw(expected).text(((side - (r - l)) / 2.0, (side - (b - t) * FONT_RATIOS_3RD[CJK_FONT.name]) / 2.0),
                                  "語", font=font, fill=255)
    assert np.array_equal(placed, np.asarray(expected))
    assert not np.array_equal(placed, centred)


@needs_font
def test_font_ratio_refuses_a_font_without_a_known_ratio(tiny, tmp_path):
    fonts = Path(tiny.glyphs.font_dir)
    (fonts / "other.ttf").symlink_to(CJK_FONT)
    table = write_table(tmp_path / "other.json", [FontSpec("other.ttf", 0, "fonts-test")])
    config = with_glyphs(tiny, table_path=str(table), cut_before_rotation=True, placement="font_ratio")
    with pytest.raises(UserError) as exc:
        create_family("glyphs").check(config)
    assert "glyphs.placement font_ratio knows the ratio of the 3rd place's 24 fonts only" in one_line(exc)
    assert "uses other.ttf" in str(exc.value)


@needs_font
def test_cut_before_rotation_loses_the_ink_beyond_the_canvas(tiny):
    """A filled square twice the canvas, turned 45 degrees: warped from its master it covers the corners;
    drawn on the canvas first (theirs), the rotated canvas leaves them black."""
    side = 64
    config = with_glyphs(tiny, size_min=2.0, size_max=2.0)
    at, square = (0, 0, 0), "\u25a0"
    d = one_draw(side, angle=45.0, size=2.0 * side)
    warp_worker = worker_for(config)
    from submission.families.glyphs.family import Master, rasterise

    bitmap = rasterise(warp_worker._font(0), square, warp_worker.master_size)
    h, w = bitmap.shape
    warped = warp_worker._place(Master(bitmap, ((w - 1) / 2.0, (h - 1) / 2.0)), d, at, (side - 1) / 2.0, side)
    cut = worker_for(with_glyphs(config, cut_before_rotation=True))._draw_on_canvas(0, square, d, at, side)
    corners = [(0, 0), (0, side - 1), (side - 1, 0), (side - 1, side - 1)]
    assert all(warped[y, x] > 0 for y, x in corners)
    assert all(cut[y, x] == 0 for y, x in corners) and cut.sum() > 0


@needs_font
@pytest.mark.parametrize("cut", [False, True])
def test_nearest_rotation_only_copies_pixels(tiny, cut):
    side = 64
    d0, d30 = one_draw(side, angle=0.0), one_draw(side, angle=30.0)

    def values(interpolation: str):
        worker = worker_for(with_glyphs(tiny, rotation_interpolation=interpolation, cut_before_rotation=cut))
        if cut:
            return [worker._draw_on_canvas(0, "語", d, (0, 0, 0), side) for d in (d0, d30)]
        master = worker.class_context(0).masters[0][0]  # the warp resamples the master: its levels are the source
        return [master.bitmap, worker._place(master, d30, (0, 0, 0), (side - 1) / 2.0, side)]

    upright, turned = values("nearest")
    assert set(np.unique(turned)) <= set(np.unique(upright))  # nearest: no new grey level
    upright, turned = values("linear")
    assert not set(np.unique(turned)) <= set(np.unique(upright))


@needs_font
def test_rotation_count_74_gives_their_74_angles(tiny):
    def angles(config: GenerationConfig) -> set:
        worker = worker_for(config)
        context = worker.class_context(0)
        rng = np.random.default_rng(0)
        return set(np.concatenate([worker.draw(context, rng)["angle"].ravel() for _ in range(300)]).tolist())

    assert angles(with_glyphs(tiny, rotation_count=74)) == {5.0 * k for k in range(74)}  # 0..365 (K:47)
    assert angles(tiny) == {5.0 * k for k in range(72)}  # ours: 0..355


@needs_font
@pytest.mark.parametrize("cut", [False, True])
def test_offset_rounding_floor_and_round(tiny, cut):
    side = 64
    results = {}
    for rounding in ("floor", "round"):
        worker = worker_for(with_glyphs(tiny, offset_rounding=rounding, cut_before_rotation=cut))
        if cut:
            draw = lambda d: worker._draw_on_canvas(0, "語", d, (0, 0, 0), side)  # noqa: E731
        else:
            master = worker.class_context(0).masters[0][0]
            draw = lambda d: worker._place(master, d, (0, 0, 0), (side - 1) / 2.0, side)  # noqa: E731
        still = draw(one_draw(side))
        results[rounding] = (still, draw(one_draw(side, offset=(2.6, -1.4))))
    still, moved = results["floor"]
    assert np.array_equal(moved, np.roll(still, (-2, 2), axis=(0, 1)))  # floor(-1.4) = -2, floor(2.6) = 2
    still, moved = results["round"]
    assert np.array_equal(moved, np.roll(still, (-1, 3), axis=(0, 1)))


@needs_font
def test_cut_without_wrap_drops_what_leaves_the_frame(tiny):
    side = 64
    worker = worker_for(with_glyphs(tiny, cut_before_rotation=True, wrap=False))
    still = worker._draw_on_canvas(0, "語", one_draw(side), (0, 0, 0), side)
    moved = worker._draw_on_canvas(0, "語", one_draw(side, offset=(30.0, 0.0)), (0, 0, 0), side)
    assert np.array_equal(moved[:, 30:], still[:, :-30]) and not moved[:, :30].any()


# --- shared class streams (K:21, K:32, K:144-151) ----------------------------------------------------

@needs_font
def test_class_stream_period_makes_classes_a_period_apart_draw_alike(tiny, tmp_path):
    table = write_table(tmp_path / "repeat.json", tiny_font_specs(tiny), classes=("語話説読誌課", "海湖港池波洋", "語話説読誌課"))
    config = with_glyphs(tiny, table_path=str(table))

    def images(c: GenerationConfig, category: int) -> np.ndarray:
        worker = worker_for(c)
        return worker.render(category, [0, 1], worker.class_context(category))

    assert not np.array_equal(images(config, 0), images(config, 2))  # same characters, own streams
    shared = with_glyphs(config, class_stream_period=2)
    assert np.array_equal(images(shared, 0), images(shared, 2))
    assert np.array_equal(images(shared, 0), images(config, 0))  # class 0 keeps its own stream
    assert not np.array_equal(images(shared, 1), images(shared, 0))


def tiny_font_specs(config: GenerationConfig):
    from submission.families.glyphs.family import GlyphTable

    return list(GlyphTable.load(config.glyphs.table_path).fonts)


# --- the glyphs-3rd recipe ----------------------------------------------------------------------------------

THIRD_PLACE = dict(mix="uniform_normalised", font_choice="all", placement="font_ratio", rotation_step=5.0,
                   rotation_count=74, rotation_interpolation="nearest", cut_before_rotation=True,
                   offset_rounding="floor", class_stream_period=40, class_table="3rd")


def test_glyphs_3rd_recipe_is_glyphs_with_their_procedure():
    from submission.recipes import create_recipe, list_recipes

    assert "glyphs-3rd" in list_recipes()
    theirs, ours = create_recipe("glyphs-3rd"), create_recipe("glyphs-ours")
    assert theirs == ours.replace(glyphs=dataclasses.replace(ours.glyphs, **THIRD_PLACE))
    assert create_recipe("glyphs") == theirs  # the default glyph recipe since issue 18
    assert (theirs.image_size, theirs.classes, theirs.images_per_class, theirs.device) == (256, 1000, 1000, "cpu")


def tiny_3rd(tiny: GenerationConfig) -> GenerationConfig:
    """The recipe's procedure on the tiny table (its font, ipaexg.ttf or another of the 24, has a ratio)."""
    from submission.recipes import create_recipe

    recipe = create_recipe("glyphs-3rd").glyphs
    return tiny.replace(glyphs=dataclasses.replace(recipe, font_dir=tiny.glyphs.font_dir, table_path=tiny.glyphs.table_path))


def png_tree(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def rehearse(zip_path: Path, out: Path, python: str) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "submission", "rehearse", str(zip_path), str(out), "--python", python],
                            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@needs_font
def test_glyphs_3rd_bytes_are_the_same_across_workers_and_from_a_pack(tiny, tmp_path):
    import sys

    from submission.pipeline import run_generation
    from submission.tools.pack import build_zip_bytes

    config = tiny_3rd(tiny)
    one = png_tree(run_generation(tmp_path / "w1", config, progress=False).output_dir)
    two = png_tree(run_generation(tmp_path / "w2", config.replace(workers=2, batch_size=1), progress=False).output_dir)
    assert len(one) == 6 and one == two
    ours = png_tree(run_generation(tmp_path / "ours", tiny, progress=False).output_dir)
    assert set(ours) == set(one) and all(ours[name] != one[name] for name in one)
    zip_path = tmp_path / "glyphs-3rd.zip"
    zip_path.write_bytes(build_zip_bytes(config))
    rehearse(zip_path, tmp_path / "rehearsed", sys.executable)
    assert png_tree(tmp_path / "rehearsed") == one


SERVER_PYTHON = Path(__file__).resolve().parents[1] / ".venv-server" / "bin" / "python"


@pytest.mark.slow
@needs_font
@pytest.mark.skipif(not SERVER_PYTHON.exists(), reason="no .venv-server (make venv-server) with Python 3.10 + torch 2.0.1")
def test_glyphs_3rd_rehearses_under_the_server_stack_with_local_bytes(tiny, tmp_path):
    from submission.pipeline import run_generation
    from submission.tools.pack import build_zip_bytes

    config = tiny_3rd(tiny)
    zip_path = tmp_path / "glyphs-3rd.zip"
    zip_path.write_bytes(build_zip_bytes(config))
    rehearse(zip_path, tmp_path / "server", str(SERVER_PYTHON))
    assert png_tree(tmp_path / "server") == png_tree(run_generation(tmp_path / "local", config, progress=False).output_dir)


@needs_all_fonts
def test_generate_the_glyphs_3rd_recipe_from_the_command_line_with_any_worker_count(tmp_path):
    from PIL import Image

    from .conftest import run_cli

    trees = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        result = run_cli("generate", out, "--recipe", "glyphs-3rd", "--classes", "2", "--images-per-class", "2",
                         "--workers", workers, "--quiet")
        assert result.returncode == 0, result.stderr[-2000:]
        trees.append(png_tree(out))
    assert len(trees[0]) == 4 and trees[0] == trees[1]
    for path in (tmp_path / "w1").rglob("*.png"):
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((256, 256), "RGB")


# --- the 3rd place's class table (submission/tools/glyph_table_3rd.py) ---------------------------------

def test_their_character_list_by_rule():
    """docs/published-recipes.md 2.1: their char.txt has 10,412 distinct characters, 10,098 listed 3 times
    (digits, letters, kana, BMP ideographs) and 314 once (10 ASCII symbols, 304 Ext-B); the rule misses
    U+9B1D and U+29FD7 (one BMP, one Ext-B)."""
    import collections

    from submission.tools.glyph_table_3rd import character_list

    entries = character_list()
    counts = collections.Counter(entries)
    assert len(counts) == 10_412 - 2 and len(entries) == 30_608 - 4
    once = sorted(c for c, n in counts.items() if n == 1)
    assert set(counts.values()) == {1, 3} and len(once) == 10 + 303
    assert set("$?%&#!{[+@") <= set(once) and all(ord(c) >= 0x20000 for c in once if c not in "$?%&#!{[+@")
    assert entries[:20] == list("0123456789$?%&#!{[+@") and "\u9b1d" not in counts and "\U00029fd7" not in counts
    blocks = collections.Counter("ascii" if ord(c) < 0x80 else "hiragana" if 0x3041 <= ord(c) <= 0x309F
                                 else "katakana" if 0x30A0 <= ord(c) <= 0x30FF or 0x31F0 <= ord(c) <= 0x31FF
                                 else "ext-a" if 0x3400 <= ord(c) <= 0x4DBF else "compat" if 0xF900 <= ord(c) <= 0xFAFF
                                 else "ext-b" if ord(c) >= 0x20000 else "unified" for c in counts)
    # their counts: CJK Unified 9,571, Ext-B 304, Ext-A 164, Compat 98, katakana 96 + 16, hiragana 91, ASCII 72
    assert blocks == {"unified": 9_570, "ext-b": 303, "ext-a": 164, "compat": 98, "katakana": 112, "hiragana": 91,
                      "ascii": 72}


def test_their_selection_by_score():
    """V:117-139 worked by hand: entries (label, pca_label, zlabel) = (0, 0, 0), (0, 0, 1), (1, 0, 1) score
    0, 2, 2 (same label / pca_label / zlabel as the previous entry after each sort)."""
    from submission.tools.glyph_table_3rd import select

    label, pca_label, zlabel = np.array([0, 0, 1]), np.array([0, 0, 0]), np.array([0, 1, 1])
    assert select(label, pca_label, zlabel, classes=1, per_class=2) == [[1, 2]]
    assert select(label, pca_label, zlabel, classes=1, per_class=3) == [[1, 2, 0]]
    assert select(label, pca_label, zlabel, classes=1, per_class=4) is None  # V re-runs: a cluster under N
    # pca_label (0, 1, 1): scores 0, 1 (label as entry 0's), 2 (pca_label and zlabel as entry 1's)
    assert select(label, np.array([0, 1, 1]), zlabel, classes=2, per_class=1) == [[0], [2]]


def test_a_table_repeats_characters_only_when_it_says_so(tmp_path):
    from submission.families.glyphs.family import GlyphTable

    rows = (tuple(map(ord, "語語語話話説")),)
    with pytest.raises(UserError) as exc:
        GlyphTable(fonts=(FontSpec("x.ttf", 0, "p"),), classes=rows, build={}).from_dict(
            GlyphTable(fonts=(FontSpec("x.ttf", 0, "p"),), classes=rows, build={}).to_dict())
    assert "class 0 has 3 distinct characters" in one_line(exc)
    table = GlyphTable(fonts=(FontSpec("x.ttf", 0, "p"),), classes=rows, build={}, repeats=True)
    assert GlyphTable.from_dict(json.loads(table.to_json())) == table
    plain = GlyphTable(fonts=(FontSpec("x.ttf", 0, "p"),), classes=(tuple(map(ord, TINY_ROW)),), build={})
    assert '"repeats"' not in plain.to_json()  # tables without repeats keep their bytes


TINY_ROW = "語話説読誌課"


def test_the_committed_3rd_place_table_has_their_properties():
    """docs/published-recipes.md 2.1 (their kanji_label.csv): repeats (distinct per class mean 4.68, 220 of
    1000 classes with 6), classes with no ideograph (24), Ext-A about 1.3% of the slots."""
    from submission.families.glyphs.family import CLASS_TABLES, DEFAULT_TABLE, GlyphTable

    table = GlyphTable.load(DEFAULT_TABLE.with_name(CLASS_TABLES["3rd"]))
    assert table.repeats and len(table.classes) == 1000 and all(len(row) == 6 for row in table.classes)
    distinct = np.array([len(set(row)) for row in table.classes])
    assert 3.5 < distinct.mean() < 5.5 and (distinct == 6).sum() < 500
    no_ideograph = sum(all(c < 0x3400 for c in row) for row in table.classes)
    assert no_ideograph >= 5
    slots = np.array([c for row in table.classes for c in row])
    assert ((slots >= 0x3400) & (slots <= 0x4DBF)).mean() < 0.05
    assert GlyphTable.from_dict(json.loads(table.to_json())) == table


def test_class_table_picks_the_packaged_table():
    from submission.families.glyphs.family import DEFAULT_TABLE, table_path

    assert table_path(GenerationConfig(family="glyphs")) == DEFAULT_TABLE
    assert table_path(GenerationConfig(family="glyphs", glyphs=GlyphConfig(class_table="3rd"))).name == "glyph_table_3rd.json"
    with pytest.raises(UserError) as exc:
        GlyphConfig(class_table="theirs")
    assert "unknown glyphs.class_table 'theirs'; choose one of ['ours', '3rd']" in one_line(exc)
