"""Pinned image bytes: the first refactor (issue 10) and every later one must write exactly these files.

The hashes were computed with the code before the refactor (commit 733ab0f) and the pinned
requirements.txt; an intended change of the images, or an upgrade of OpenCV or albumentations,
changes them and must update this table in the same commit, saying why.
"""
import hashlib

import pytest

from submission import GenerationConfig, generate
from submission.families.fractal.config import FractalConfig, PointAugmentConfig

CASES = {
    "default_64px": GenerationConfig(classes=2, images_per_class=3, image_size=64, workers=1,
                                     fractal=FractalConfig(points=2000)),
    "jpg_48px_seed5": GenerationConfig(classes=2, images_per_class=2, image_size=48, workers=1, image_format="jpg", seed=5,
                                       fractal=FractalConfig(points=1500)),
    "colorize_noise_32px": GenerationConfig(classes=1, images_per_class=2, image_size=32, workers=1, fractal=FractalConfig(
        points=1000, point_augment=PointAugmentConfig(colorize=True, noise_std=0.01))),
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
    }
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_images_are_byte_identical_to_the_pinned_ones(name, tmp_path):
    root = generate(tmp_path / name, CASES[name], progress=False)
    found = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(root.rglob("*.*"))}
    assert found == PINNED[name]
