"""The glyph family: its class table, config, fonts (one line when missing), determinism, packing.

Font-dependent tests use the smallest CJK font present (any of the table's 24, else any TrueType /
OpenType font that draws CJK) with a tiny table of their own, and skip when there is none; the
recipe test needs all 24 (`make fonts`)."""
from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pytest
from PIL import Image

from submission.config import GenerationConfig
from submission.errors import UserError
from submission.families import create_family
from submission.families.glyphs import family as glyphs
from submission.families.glyphs.config import GlyphConfig
from submission.families.glyphs.family import DEFAULT_TABLE, FontSpec, GlyphTable
from submission.plan import RunPlan
from submission.recipes import create_recipe
from submission.tools.glyph_table import BLOCKS, DEFAULT_FONTS

from .conftest import run_cli

# Three classes of common kanji that every CJK font draws.
TINY_CLASSES = ("語話説読誌課", "海湖港池波洋", "林森村枝桜柱")


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def _draws_cjk(path: Path) -> bool:
    from PIL import ImageFont

    try:
        font = ImageFont.truetype(str(path), 32, layout_engine=ImageFont.Layout.BASIC)
        return all(bytes(font.getmask(c)) != bytes(font.getmask(glyphs.MISSING_CHAR)) for c in "語海林")
    except OSError:
        return False


def find_cjk_font() -> Optional[Path]:
    """The smallest of the table's fonts present, else any font file that draws CJK, else None."""
    index = glyphs._system_font_index(str(glyphs.SYSTEM_FONT_ROOT))
    known = sorted((Path(index[s.file]) for s in DEFAULT_FONTS if s.file in index), key=lambda p: p.stat().st_size)
    if known:
        return known[0]
    others = sorted((Path(p) for p in index.values() if p.lower().endswith((".ttf", ".otf", ".ttc"))),
                    key=lambda p: p.stat().st_size)
    return next((p for p in others if _draws_cjk(p)), None)


CJK_FONT = find_cjk_font()
needs_font = pytest.mark.skipif(CJK_FONT is None, reason="no CJK font installed (make fonts)")
ALL_FONTS = all(s.file in glyphs._system_font_index(str(glyphs.SYSTEM_FONT_ROOT)) for s in DEFAULT_FONTS)
needs_all_fonts = pytest.mark.skipif(not ALL_FONTS, reason="the glyph table's 24 fonts are not installed (make fonts)")


def write_table(path: Path, fonts, classes=TINY_CLASSES) -> Path:
    table = GlyphTable(fonts=tuple(fonts), classes=tuple(tuple(map(ord, row)) for row in classes), build={"test": True})
    path.write_text(table.to_json(), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path) -> GenerationConfig:
    """A 64 px config drawing TINY_CLASSES with the one CJK font, linked into a folder with a licence."""
    if CJK_FONT is None:
        pytest.skip("no CJK font installed (make fonts)")
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / CJK_FONT.name).symlink_to(CJK_FONT)
    (fonts / glyphs.license_name("fonts-test")).write_text("test licence\n")
    table = write_table(tmp_path / "table.json", [FontSpec(CJK_FONT.name, 0, "fonts-test")])
    return GenerationConfig(family="glyphs", classes=2, images_per_class=3, image_size=64, workers=1, batch_size=2,
                            device="cpu", glyphs=GlyphConfig(font_dir=str(fonts), table_path=str(table)))


# --- the committed table ------------------------------------------------------------------------

def test_committed_table_has_1000_classes_of_6_similar_characters():
    assert DEFAULT_TABLE.stat().st_size < 512 * 1024
    table = GlyphTable.load(DEFAULT_TABLE)
    assert len(table.classes) == 1000
    assert table.fonts == DEFAULT_FONTS
    seen = [c for row in table.classes for c in row]
    assert len(seen) == len(set(seen)), "a character is in two classes"
    assert all(len(row) >= 6 for row in table.classes)
    assert all(any(lo <= c <= hi for lo, hi in BLOCKS) for c in seen)
    assert len(seen) > 20_000
    assert GlyphTable.from_dict(json.loads(table.to_json())) == table


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: "not json", "not valid UTF-8 JSON"),
    (lambda t: {**t, "version": 99}, "version 99 is not 1"),
    (lambda t: {**t, "classes": [[0x4E00 + i for i in range(5)]]}, "class 0 has 5 distinct characters"),
    (lambda t: {**t, "classes": [[0x4E00] * 6]}, "class 0 has 1 distinct"),
    (lambda t: {**t, "fonts": [{"file": "../x.ttf", "index": 0, "package": "p"}]}, "fonts[0] must be"),
    (lambda t: {**t, "fonts": t["fonts"] * 2}, "lists a font twice"),
])
def test_a_bad_table_is_one_line(tmp_path, edit, fragment):
    good = json.loads(write_table(tmp_path / "good.json", DEFAULT_FONTS[:1]).read_text())
    bad = tmp_path / "bad.json"
    edited = edit(good)
    bad.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    with pytest.raises(UserError) as exc:
        GlyphTable.load(bad)
    assert fragment in one_line(exc) and str(bad) in str(exc.value) and "glyph_table" in str(exc.value)


def test_too_many_classes_for_the_table_is_one_line(tmp_path):
    table = write_table(tmp_path / "t.json", [FontSpec("x.ttf", 0, "p")])
    config = GenerationConfig(family="glyphs", classes=4, glyphs=GlyphConfig(table_path=str(table)))
    with pytest.raises(UserError) as exc:
        create_family("glyphs").check(config)
    assert "has 3 classes, fewer than the 4" in one_line(exc)


# --- config ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, fragment", [
    ({"size_min": 0.0}, "0 < size_min <= size_max"),
    ({"size_min": 1.2}, "0 < size_min <= size_max"),
    ({"size_max": float("inf")}, "0 < size_min <= size_max"),
    ({"chars_per_class": 0}, "glyphs.chars_per_class must be at least 1"),
    ({"chars_per_class": 1.5}, "glyphs.chars_per_class must be an integer"),
    ({"rotation_step": -5.0}, "glyphs.rotation_step"),
    ({"flip_p": 1.5}, "glyphs.flip_p"),
    ({"blur_p": float("nan")}, "glyphs.blur_p"),
    ({"offset_std": 3.0}, "glyphs.offset_std"),
    ({"blur_size": 0}, "glyphs.blur_size"),
    ({"ink_min": 0.0}, "glyphs.ink_min"),
    ({"mix_alpha": 0.0}, "glyphs.mix_alpha"),
    ({"layers": 0}, "glyphs.layers"),
    ({"layers": 9}, "glyphs.layers must be at most 8"),
    ({"wrap": 1}, "glyphs.wrap must be true or false"),
    ({"font_dir": ""}, "glyphs.font_dir must be a path or null"),
])
def test_bad_glyph_config_is_one_line(changes, fragment):
    with pytest.raises(UserError) as exc:
        GenerationConfig(glyphs=GlyphConfig(**changes))
    assert fragment in one_line(exc)


def test_glyph_config_round_trips_and_refuses_unknown_keys():
    config = GenerationConfig(family="glyphs", glyphs=GlyphConfig(size_min=0.3, layers=1, wrap=False, table_path="t.json"))
    assert GenerationConfig.from_json(config.to_json()) == config
    with pytest.raises(UserError) as exc:
        GenerationConfig.from_dict({"glyphs": {"colour": 1}})
    assert "unknown glyphs key(s) ['colour']" in one_line(exc)
    with pytest.raises(UserError) as exc:
        GenerationConfig.from_dict({"glyphs": {"layers": "2"}})
    assert "glyphs.layers must be int" in one_line(exc)


def test_glyphs_recipe():
    config = create_recipe("glyphs")
    assert (config.family, config.image_size, config.classes, config.images_per_class) == ("glyphs", 256, 1000, 1000)
    assert not config.image_augment.enabled and config.device == "cpu"
    assert create_recipe("glyphs", classes=2).classes == 2


# --- fonts: missing ones are one line -------------------------------------------------------------

def test_a_missing_font_names_its_package(tmp_path, monkeypatch):
    table = write_table(tmp_path / "t.json", [FontSpec("NoSuchFont-Test.ttf", 0, "fonts-nope-test")])
    config = GenerationConfig(family="glyphs", classes=2, glyphs=GlyphConfig(table_path=str(table)))
    with pytest.raises(UserError) as exc:
        create_family("glyphs").check(config)
    assert "NoSuchFont-Test.ttf is not under /usr/share/fonts; install the Debian package fonts-nope-test" in one_line(exc)
    assert "make fonts" in str(exc.value)
    in_dir = config.replace(glyphs=dataclasses.replace(config.glyphs, font_dir=str(tmp_path)))
    with pytest.raises(UserError) as exc:
        create_family("glyphs").check(in_dir)
    assert f"NoSuchFont-Test.ttf is missing from {tmp_path}" in one_line(exc)


def test_generate_with_a_missing_font_is_one_line(tmp_path):
    table = write_table(tmp_path / "t.json", [FontSpec("NoSuchFont-Test.ttf", 0, "fonts-nope-test")])
    config_file = tmp_path / "config.json"
    config_file.write_text(GenerationConfig(family="glyphs", classes=2, images_per_class=2, image_size=64,
                                            glyphs=GlyphConfig(table_path=str(table))).to_json())
    result = run_cli("generate", tmp_path / "out", "--config", config_file)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "fonts-nope-test" in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


# --- drawing ----------------------------------------------------------------------------------------

def tree_bytes(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@needs_font
def test_bytes_depend_only_on_config_class_and_index(tiny, tmp_path):
    from submission.pipeline import run_generation

    one = run_generation(tmp_path / "w1", tiny, progress=False).output_dir
    two = run_generation(tmp_path / "w2", tiny.replace(workers=2, batch_size=3), progress=False).output_dir
    files = tree_bytes(one)
    assert len(files) == 6 and files == tree_bytes(two)
    images = {name: np.asarray(Image.open(io.BytesIO(data))) for name, data in files.items()}
    assert all(a.shape == (64, 64, 3) and a.std() > 5 for a in images.values())
    arrays = list(images.values())
    assert all(not np.array_equal(arrays[i], arrays[k]) for i in range(6) for k in range(i))  # within and between classes
    # class 0 and class 1 draw different characters: their mean images differ too
    by_class = [np.mean([a for n, a in images.items() if n.startswith(f"{c:05d}/")], axis=0) for c in (0, 1)]
    assert np.abs(by_class[0] - by_class[1]).mean() > 1.0


@needs_font
def test_a_font_lacking_a_character_is_skipped_for_it(tiny):
    worker = create_family("glyphs").worker(RunPlan.resolve(tiny))
    context = worker.class_context(0)
    assert context.chars == tuple(map(ord, TINY_CLASSES[0])) and all(len(m) == 1 for m in context.masters)
    unassigned = (0x0378, 0x0379, 0x0380, 0x0381, 0x0382, 0x0383)  # no font maps these
    worker.table = dataclasses.replace(worker.table, classes=(unassigned,) + worker.table.classes[1:])
    with pytest.raises(UserError) as exc:
        worker.class_context(0)
    assert "no font of the glyph table covers U+0378" in one_line(exc)


# --- pack and the server adapter --------------------------------------------------------------------

def get_params(params: Path) -> subprocess.CompletedProcess:
    """Generator.get_params as the server calls it (src/ on sys.path), its error printed as one line."""
    code = ("import sys; sys.path.insert(0, 'src'); from generator import Generator\n"
            "try:\n    Generator.get_params('params')\nexcept Exception as exc:\n"
            "    print(f'{type(exc).__name__}: {exc}', file=sys.stderr); sys.exit(3)\n")
    return subprocess.run([sys.executable, "-c", code], cwd=params.parent, capture_output=True, text=True, timeout=300)


@needs_font
def test_pack_ships_fonts_table_and_licences_and_get_params_refuses_missing_ones(tiny, tmp_path):
    from submission.tools.pack import build_zip_bytes

    with zipfile.ZipFile(io.BytesIO(build_zip_bytes(tiny))) as archive:
        names = set(archive.namelist())
        assert {f"params/fonts/{CJK_FONT.name}", "params/fonts/LICENSE-fonts-test.txt", "params/glyph_table.json"} <= names
        packed = json.loads(archive.read("params/config.json"))
        assert packed["glyphs"]["font_dir"] is None and packed["glyphs"]["table_path"] is None
        archive.extractall(tmp_path / "unpacked")
    params = tmp_path / "unpacked" / "params"
    ok = get_params(params)
    assert ok.returncode == 0 and "Generator: 2 classes x 3 images, 64 px" in ok.stdout, ok.stderr[-2000:]

    font = params / "fonts" / CJK_FONT.name
    font.rename(font.with_suffix(".away"))
    missing_font = get_params(params)
    lines = missing_font.stderr.strip().splitlines()
    assert missing_font.returncode == 3 and len(lines) == 1, missing_font.stderr[-2000:]
    assert f"font {CJK_FONT.name} is missing from {params / 'fonts'}; re-pack" in lines[0]
    font.with_suffix(".away").rename(font)

    (params / "glyph_table.json").unlink()
    missing_table = get_params(params)
    lines = missing_table.stderr.strip().splitlines()
    assert missing_table.returncode == 3 and len(lines) == 1, missing_table.stderr[-2000:]
    assert "glyph_table.json is missing; re-pack with `python -m submission pack`" in lines[0]


@needs_all_fonts
def test_generate_the_glyphs_recipe_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    result = run_cli("generate", out, "--recipe", "glyphs", "--classes", "2", "--images-per-class", "2", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00001"]
    for path in out.rglob("*.png"):
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((256, 256), "RGB")
    assert len(list(out.rglob("*.png"))) == 4


# --- the table builder's clustering (scikit-learn; no fonts) ----------------------------------------

def test_clusters_are_resized_to_the_minimum_and_the_count():
    pytest.importorskip("sklearn")
    from submission.tools.glyph_table import cluster

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (5, 3))
    sizes = [40, 30, 20, 3, 2]  # two clusters under the minimum of 6
    z = np.concatenate([c + rng.normal(0, 0.1, (n, 3)) for c, n in zip(centres, sizes)]).astype(np.float32)
    groups = cluster(z, classes=5, min_size=6, n_init=2, seed=0)
    assert len(groups) == 5 and all(len(g) >= 6 for g in groups)
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(z)))
