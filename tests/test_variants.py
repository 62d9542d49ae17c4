"""Calibration variants (issue 13): the 4th-place study's image- and point-side variants as recipes.

Each variant is deterministic and visibly does what its name says; new options are off by default
(tests/test_pinned_bytes.py pins the default bytes). Images are 32 px, one class, a few images.
"""
import dataclasses
import functools
import hashlib
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from local_eval.compare.calibration import RESULTS, TABLES, published
from submission import GenerationConfig, generate
from submission.augment import build_image_augmenter
from submission.config import ImageAugmentConfig
from submission.errors import UserError
from submission.families import create_family
from submission.families.fractal.backgrounds import diamond_square, diamond_square_background
from submission.families.fractal.config import PointAugmentConfig
from submission.families.fractal.pointcloud import augment_cloud, pointwolf
from submission.plan import RunPlan
from submission.recipes import create_recipe, list_recipes
from submission.seeding import rng_for
from submission.tools.cli import main as cli_main
from submission.tools.preview import recipe_contact_sheet
from submission.writer import create_class_writer

from .conftest import run_cli

# The calibration variants of `fractal-ours` (the default when they were written); the exact 4th-place
# recipe (`fractal` = `fractal-4th`, and its experiments `fractal-4th-*`) is tested in test_published_recipes.py.
BASE = "fractal-ours"
VARIANTS = [name for name in list_recipes()
            if name.startswith("fractal-") and not name.startswith("fractal-4th") and name != BASE]
IMAGES = range(4)
NO_IMAGE_AUGMENT = dict(transpose_p=0.0, hflip_p=0.0, vflip_p=0.0, affine_p=0.0, brightness_contrast_p=0.0, hsv_p=0.0)


def make_writer(name: str):
    config = create_recipe(name, image_size=32, device="cpu")
    family = create_family(config.family)
    return create_class_writer(family.prepare(RunPlan.resolve(config), categories=1), family)


@functools.lru_cache(maxsize=None)
def writer(name: str):
    return make_writer(name)


def raw(name: str) -> np.ndarray:
    """(4, 32, 32, 3) uint8: images 0-3 of class 0 as rendered, before image augmentation."""
    w = writer(name)
    return w.images.render(0, list(IMAGES), w.images.class_context(0))


def files(name: str, w=None) -> list:
    """The encoded PNG bytes `generate` writes for images 0-3 of class 0."""
    return (w or writer(name)).encode_images(0, IMAGES)


def decoded(name: str) -> np.ndarray:
    return np.stack([np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for data in files(name)])


def changed_fields(config: GenerationConfig) -> set:
    """Dotted names of the fields that differ from the variants' base `fractal-ours`."""
    def changed(ours: dict, default: dict, prefix: str) -> set:
        out = set()
        for key, value in ours.items():
            if isinstance(value, dict):
                out |= changed(value, default[key], f"{prefix}{key}.")
            elif value != default[key]:
                out.add(prefix + key)
        return out

    return changed(config.to_dict(), create_recipe(BASE).to_dict(), "")


# --- the recipes and the published table ---

def test_calibration_table_names_every_variant_and_fractal_is_best_in_both():
    assert {r.recipe for r in RESULTS} == set(VARIANTS) | {"fractal"}
    assert len(VARIANTS) == 11 and all(r.table in TABLES for r in RESULTS)
    for table, spec in TABLES.items():
        values = published(table)
        best = min(values, key=values.get) if spec.lower_is_better else max(values, key=values.get)
        assert best == "fractal", table
    assert published("image_augment")["fractal-aug-none"] == 1186.22
    assert published("point_cloud")["fractal-pc-diamond"] == 71.84
    with pytest.raises(UserError, match="unknown calibration table 'nope'; known: image_augment, point_cloud"):
        published("nope")


def test_each_variant_changes_only_its_factor():
    no_aug = {f"image_augment.{name}" for name in NO_IMAGE_AUGMENT}
    flips_ssr_bc = {"image_augment.hsv_p"}
    expected = {
        "fractal-aug-none": no_aug,
        "fractal-aug-flips-ssr-bc": flips_ssr_bc,
        "fractal-aug-cutout": flips_ssr_bc | {"image_augment.cutout_p"},
        "fractal-aug-distortion": flips_ssr_bc | {"image_augment.distortion_p"},
        "fractal-aug-trivialaugment": no_aug | {"image_augment.trivialaugment_p"},
        "fractal-pc-base": {"fractal.point_augment.subsample"},
        "fractal-pc-colorize": {"fractal.point_augment.subsample", "fractal.point_augment.colorize"},
        "fractal-pc-50k": {"fractal.point_augment.subsample", "fractal.points"},
        "fractal-pc-noise": {"fractal.point_augment.noise_std"},
        "fractal-pc-pointwolf": {"fractal.point_augment.pointwolf"},
        "fractal-pc-diamond": {"fractal.point_augment.background"},
    }
    assert {name: changed_fields(create_recipe(name)) for name in VARIANTS} == expected
    assert create_recipe("fractal-pc-50k").fractal.points == 50_000
    assert not create_recipe("fractal-aug-none").image_augment.enabled
    assert create_recipe("fractal-aug-trivialaugment").image_augment.enabled
    # JSON round trip: what pack ships and the server reads back
    for name in VARIANTS:
        assert GenerationConfig.from_json(create_recipe(name).to_json()) == create_recipe(name)


def test_unknown_recipe_lists_the_variants():
    with pytest.raises(UserError, match=r"unknown recipe 'nope'; known recipes: fractal, fractal-4th, .*fractal-aug-cutout, .*fractal-pc-pointwolf"):
        create_recipe("nope")


# --- every variant: same bytes every time, and not the default's ---

@pytest.mark.parametrize("name", VARIANTS)
def test_variant_is_deterministic_and_differs_from_fractal(name):
    first = files(name)
    again = make_writer(name).encode_images(0, [3, 2, 1, 0])[::-1]  # a fresh worker, another order
    assert first == again
    assert first != files(BASE)


# --- image side ---

def test_aug_none_writes_the_render_untouched():
    np.testing.assert_array_equal(decoded("fractal-aug-none"), raw("fractal-aug-none"))


def test_cutout_only_adds_black_rectangles():
    base, cut = decoded("fractal-aug-flips-ssr-bc"), decoded("fractal-aug-cutout")
    # Cutout comes last and draws from its own seed: outside the holes the images are identical.
    assert ((cut == base) | (cut == 0)).all()
    assert (cut == 0).all(-1).sum() > (base == 0).all(-1).sum()  # and there are holes
    image = np.full((48, 48, 3), 200, np.uint8)
    augment = build_image_augmenter(ImageAugmentConfig(**NO_IMAGE_AUGMENT, cutout_p=1.0))
    outs = [augment(image, seed) for seed in range(8)]
    for out in outs:
        assert ((out == image) | (out == 0)).all() and (out == 0).all(-1).sum() >= 4
    assert len({o.tobytes() for o in outs}) == 8


def test_distortion_warps_without_black_borders():
    augment = build_image_augmenter(ImageAugmentConfig(**NO_IMAGE_AUGMENT, distortion_p=1.0))
    checker = (np.indices((48, 48)).sum(0) // 4 % 2 * 255).astype(np.uint8)[..., None].repeat(3, axis=2)
    outs = [augment(checker, seed) for seed in range(4)]
    assert all(not np.array_equal(o, checker) for o in outs) and len({o.tobytes() for o in outs}) == 4
    assert augment(checker, 1).tobytes() == outs[1].tobytes()
    flat = np.full((48, 48, 3), 200, np.uint8)  # a warp of a flat image is the flat image: no border fill
    np.testing.assert_array_equal(augment(flat, 0), flat)


def test_trivialaugment_is_seeded_per_image_and_leaves_torch_rng_alone():
    augment = build_image_augmenter(ImageAugmentConfig(**NO_IMAGE_AUGMENT, trivialaugment_p=1.0))
    image = (np.random.default_rng(2).random((32, 32, 3)) * 255).astype(np.uint8)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    outs = [augment(image, seed) for seed in range(24)]
    assert torch.equal(torch.get_rng_state(), state)  # the caller's global RNG is untouched
    torch.manual_seed(7)  # ... and does not leak in
    assert [augment(image, seed).tobytes() for seed in (0, 5, 23)] == [outs[s].tobytes() for s in (0, 5, 23)]
    assert all(o.shape == image.shape and o.dtype == np.uint8 for o in outs)
    assert sum(not np.array_equal(o, image) for o in outs) >= 18  # Identity is 1 op of 14
    assert len({o.tobytes() for o in outs}) >= 15
    half = build_image_augmenter(ImageAugmentConfig(**NO_IMAGE_AUGMENT, trivialaugment_p=0.5))
    assert 4 <= sum(np.array_equal(half(image, seed), image) for seed in range(24)) <= 20


def test_new_transforms_same_bytes_in_process_and_with_two_workers(tmp_path):
    """TrivialAugmentWide, PointWOLF and the diamond-square background in one config."""
    config = create_recipe("fractal-aug-trivialaugment", classes=2, images_per_class=3, image_size=32, points=1000,
                           device="cpu")
    config = config.replace(point_augment=dataclasses.replace(config.fractal.point_augment, pointwolf=True,
                                                              background="diamond_square"))

    def digests(root):
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}

    one = digests(generate(tmp_path / "one", config.replace(workers=1), progress=False))
    two = digests(generate(tmp_path / "two", config.replace(workers=2), progress=False))
    assert len(one) == 6 and one == two


# --- point side ---

def test_pointwolf_deforms_but_keeps_centre_radius_and_extent():
    cloud = np.random.default_rng(0).uniform(-1, 1, (3000, 3))
    out = pointwolf(cloud, rng_for(0, 2, 0, 0))
    np.testing.assert_array_equal(out, pointwolf(cloud, rng_for(0, 2, 0, 0)))
    assert out.shape == cloud.shape and np.isfinite(out).all()
    np.testing.assert_allclose(out.mean(0), cloud.mean(0), atol=1e-9)
    radius = lambda p: np.sqrt(((p - p.mean(0)) ** 2).sum(1)).max()  # noqa: E731
    np.testing.assert_allclose(radius(out), radius(cloud), rtol=1e-9)
    extent = (out.max(0) - out.min(0)) / (cloud.max(0) - cloud.min(0))
    assert ((extent > 0.5) & (extent < 2)).all()
    moved = [np.abs(pointwolf(cloud, rng_for(0, 2, 0, j)) - cloud).mean() for j in range(8)]
    assert np.mean(moved) > 0.02 and len(set(moved)) == 8
    tiny = pointwolf(cloud[:2], rng_for(0, 2, 0, 0), anchors=64)  # more anchors than points
    assert np.isfinite(tiny).all()


def test_pointwolf_draws_last_so_the_view_is_the_same():
    cloud = np.random.default_rng(1).uniform(-1, 1, (2000, 3)).astype(np.float32)
    cfg = PointAugmentConfig(scale_shift=False)  # subsample + rotation: both keep centre and radius
    plain, _ = augment_cloud(cloud, cfg, rng_for(0, 2, 0, 5))
    wolf, _ = augment_cloud(cloud, dataclasses.replace(cfg, pointwolf=True), rng_for(0, 2, 0, 5))
    assert plain.shape == wolf.shape and not np.allclose(plain, wolf)
    np.testing.assert_allclose(wolf.mean(0), plain.mean(0), atol=1e-5)  # same subsample, same rotation


def test_pc_variants_change_the_render():
    assert not np.array_equal(raw("fractal-pc-noise"), raw(BASE))
    assert not np.array_equal(raw("fractal-pc-pointwolf"), raw(BASE))
    assert raw("fractal-pc-50k").mean() > raw("fractal-pc-base").mean() * 1.05  # 5x the points: denser


def test_colorized_points_are_coloured():
    grey, colour = raw("fractal-pc-base"), raw("fractal-pc-colorize")
    assert (grey.max(-1) == grey.min(-1)).all()  # white points over black: grey only
    lit = colour.max(-1) > 0
    assert ((colour.max(-1).astype(int) - colour.min(-1))[lit] > 60).mean() > 0.5


def test_diamond_background_fills_the_black_and_keeps_the_points():
    plain, backed = raw(BASE), raw("fractal-pc-diamond")
    assert (plain == 0).all(-1).mean() > 0.3 and (backed == 0).all(-1).mean() < 0.01
    white = (plain == 255).all(-1)
    assert white.sum() > 20 and (backed[white] == 255).all()  # full coverage: the point, not the background
    assert backed[(plain == 0).all(-1)].std() > 5  # a varied backdrop, not a flat colour


@pytest.mark.parametrize("size", [16, 32, 100])
def test_diamond_square_is_a_smooth_seeded_plasma(size):
    height = diamond_square(size, rng_for(0, 4, 0, 0), decay=0.6)
    assert height.shape == (size, size) and height.min() == 0 and height.max() == 1
    np.testing.assert_array_equal(height, diamond_square(size, rng_for(0, 4, 0, 0), decay=0.6))
    assert not np.array_equal(height, diamond_square(size, rng_for(0, 4, 0, 1), decay=0.6))
    assert np.abs(np.diff(height, axis=1)).mean() < 0.15  # white noise in [0, 1]: 0.33
    rgb = diamond_square_background(size, rng_for(0, 4, 0, 0))
    assert rgb.shape == (size, size, 3) and rgb.dtype == np.float32 and 0 <= rgb.min() and rgb.max() <= 1


# --- bad values: one line each ---

@pytest.mark.parametrize("data, message", [
    ({"image_augment": {"cutout_p": 1.5}}, "image_augment.cutout_p is a probability"),
    ({"image_augment": {"distortion_p": -0.1}}, "image_augment.distortion_p is a probability"),
    ({"image_augment": {"trivialaugment_p": float("nan")}}, "image_augment.trivialaugment_p is a probability"),
    ({"image_augment": {"cutout_size": 1.5}}, "image_augment.cutout_size must be a finite number in [0, 1]"),
    ({"image_augment": {"cutout_p": 0.5, "cutout_size": 0.0}}, "image_augment.cutout_size must be above 0"),
    ({"image_augment": {"cutout_holes": 0}}, "image_augment.cutout_holes must be at least 1"),
    ({"image_augment": {"cutout_holes": 2.5}}, "image_augment.cutout_holes must be int"),
    ({"image_augment": {"distortion_limit": 1.0}}, "image_augment.distortion_limit must be a finite number in [0, 1)"),
    ({"point_augment": {"pointwolf": "yes"}}, "point_augment.pointwolf must be bool"),
    ({"point_augment": {"pointwolf_anchors": 0}}, "point_augment.pointwolf_anchors must be at least 1"),
    ({"point_augment": {"pointwolf_anchors": 65}}, "point_augment.pointwolf_anchors must be at most 64"),
    ({"point_augment": {"pointwolf_sigma": 0.0}}, "point_augment.pointwolf_sigma must be a finite number in (0, 10]"),
    ({"point_augment": {"pointwolf_rotate": 200.0}}, "point_augment.pointwolf_rotate must be a finite number in [0, 180]"),
    ({"point_augment": {"pointwolf_scale": 0.5}}, "point_augment.pointwolf_scale must be a finite number in [1, 10]"),
    ({"point_augment": {"pointwolf_translate": float("inf")}}, "point_augment.pointwolf_translate must be a finite number"),
    ({"point_augment": {"background": "plasma"}},
     "unknown point_augment.background 'plasma'; choose one of ['black', 'diamond_square']"),
    ({"point_augment": {"background": 3}}, "point_augment.background must be str"),
])
def test_bad_values_of_the_new_fields_are_one_line_errors(data, message):
    with pytest.raises(UserError, match=re.escape(message)) as info:
        GenerationConfig.from_dict(data)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


# --- preview of recipes, in memory ---

def test_recipe_preview_stacks_one_labelled_row_per_recipe(tmp_path):
    out = recipe_contact_sheet(["fractal-aug-none", "fractal-pc-colorize"], tmp_path / "v.png", rows=1, samples=2,
                               tile=16, image_size=32)
    with Image.open(out) as sheet:
        width, height = sheet.size
        assert height == 2 * 18 and width > 56 + 2 * 18  # the label column fits the longest name
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    rows = pixels[:16, width - 2 * 18:], pixels[18:34, width - 2 * 18:]
    assert (rows[0].max(-1) - rows[0].min(-1)).max() < 10 < (rows[1].max(-1) - rows[1].min(-1)).max()
    assert not list(tmp_path.glob("*/"))  # no dataset written


def test_preview_cli_takes_a_dir_or_recipes(tmp_path, capsys):
    result = run_cli("preview", "--recipe", "fractal-pc-diamond", "--rows", "2", "--samples", "2", "--image-size", "32",
                     "--tile", "16", "--out", tmp_path / "d.png")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "d.png") as sheet:
        assert sheet.size == (56 + 2 * 18, 2 * 18)
    for argv, message in [(["--out", "x.png"], "preview takes a dataset folder DIR or --recipe NAME"),
                          ([str(tmp_path), "--recipe", "fractal", "--out", "x.png"], "(one of them)"),
                          (["--recipes", "fractal,nope", "--out", "x.png"], "unknown recipe 'nope'; known recipes: fractal,"),
                          ([str(tmp_path), "--image-size", "32", "--out", "x.png"], "--image-size and --seed go with")]:
        assert cli_main(["preview", *argv]) == 2
        assert message in capsys.readouterr().err
