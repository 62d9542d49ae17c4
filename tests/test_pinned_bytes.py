"""Pinned image bytes: the first refactor (issue 10) and every later one must write exactly these files.

The first three cases' hashes were computed with the code before the refactor (commit 733ab0f) and
the pinned requirements.txt. Since the contest defaults became the exact published recipes (issue 18)
they request our earlier reading explicitly (`fractal-ours`, the default when they were pinned), so
their bytes did not move; the `*_default_*`, `glyphs_*` and `visualatom_*` cases pin the new defaults.
An intended change of the images, or an upgrade of OpenCV or albumentations, changes them and must
update this table in the same commit, saying why.
"""
import dataclasses
import hashlib

import pytest

from submission import GenerationConfig, generate
from submission.recipes import create_recipe

from .test_glyphs import needs_all_fonts


def ours(**overrides) -> GenerationConfig:
    """`fractal-ours` (the default before issue 18) with `overrides`."""
    return create_recipe("fractal-ours", **overrides)


def _colorize_noise() -> GenerationConfig:
    config = ours(classes=1, images_per_class=2, image_size=32, workers=1, points=1000)
    return config.replace(fractal=dataclasses.replace(config.fractal, point_augment=dataclasses.replace(
        config.fractal.point_augment, colorize=True, noise_std=0.01)))


CASES = {
    # our earlier reading, requested explicitly: the bytes pinned in 733ab0f
    "default_64px": ours(classes=2, images_per_class=3, image_size=64, workers=1, points=2000),
    "jpg_48px_seed5": ours(classes=2, images_per_class=2, image_size=48, workers=1, image_format="jpg", seed=5,
                           points=1500),
    "colorize_noise_32px": _colorize_noise(),
    # the contest defaults since issue 18 (GenerationConfig() = `fractal` = `fractal-4th`), and the
    # default recipes of the other families, at small sizes
    "fractal_default_64px": GenerationConfig(classes=2, images_per_class=3, image_size=64, workers=1).replace(points=2000),
    "visualatom_default_96px": create_recipe("visualatom", classes=2, images_per_class=2, image_size=96, workers=1),
    "visualatom_default_512px": create_recipe("visualatom", classes=1, images_per_class=1, workers=1),  # no resize
}
# The glyph recipe draws with the 24 fonts of `make fonts`: its bytes also pin those font files.
FONT_CASES = {
    "glyphs_default_64px": lambda: create_recipe("glyphs", classes=2, images_per_class=2, image_size=64, workers=1),
}

PINNED = {
    "default_64px": {
        "00000/00000_00000.png": "68aac15957ab6c7b",
        "00000/00000_00001.png": "9a0f8872739b7402",
        "00000/00000_00002.png": "b823b1de95f85733",
        "00001/00001_00000.png": "d1f64e7dbbc17f66",
        "00001/00001_00001.png": "84eee910d755c5e9",
        "00001/00001_00002.png": "374358228fbe0ecf"
    },
    "jpg_48px_seed5": {
        "00000/00000_00000.jpg": "d1f5cbe5284cbbf9",
        "00000/00000_00001.jpg": "7c8e06a0b4167853",
        "00001/00001_00000.jpg": "2d2381e0bf85e066",
        "00001/00001_00001.jpg": "967055e4af228860"
    },
    "colorize_noise_32px": {
        "00000/00000_00000.png": "1f596f85f9c29413",
        "00000/00000_00001.png": "68c4677325abdd8b"
    },
    "fractal_default_64px": {
        "00000/00000_00000.png": "edb82838381eae8a",
        "00000/00000_00001.png": "7b860d4183067d66",
        "00000/00000_00002.png": "b16603a1df10a989",
        "00001/00001_00000.png": "d6968e6137a69777",
        "00001/00001_00001.png": "2c33118b6c5f2325",
        "00001/00001_00002.png": "91b7e84f27889da0"
    },
    "visualatom_default_96px": {
        "00000/00000_00000.png": "29aaf44a50fceee5",
        "00000/00000_00001.png": "7ff64cdb71ae11bb",
        "00001/00001_00000.png": "070305fd850c062a",
        "00001/00001_00001.png": "3cb9dd207ef24db7"
    },
    "visualatom_default_512px": {
        "00000/00000_00000.png": "539aee9e9ec06776"
    },
    "glyphs_default_64px": {
        "00000/00000_00000.png": "1cdb81a07793ef28",
        "00000/00000_00001.png": "7e6a7630f4fb3620",
        "00001/00001_00000.png": "57d534ee560d30c7",
        "00001/00001_00001.png": "e76a1fc87ba73821"
    }
}


def hashes(root) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(root.rglob("*.*"))}


@pytest.mark.parametrize("name", sorted(CASES))
def test_images_are_byte_identical_to_the_pinned_ones(name, tmp_path):
    assert hashes(generate(tmp_path / name, CASES[name], progress=False)) == PINNED[name]


@needs_all_fonts
@pytest.mark.parametrize("name", sorted(FONT_CASES))
def test_glyph_images_are_byte_identical_to_the_pinned_ones(name, tmp_path):
    assert hashes(generate(tmp_path / name, FONT_CASES[name](), progress=False)) == PINNED[name]


def test_every_case_is_pinned():
    assert set(PINNED) == set(CASES) | set(FONT_CASES)
