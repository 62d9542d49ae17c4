"""Calibration variants (issues 13, 18): the 4th-place study's image- and point-side experiments as
recipes, each `fractal-4th` (their best entry, exp 009) with exactly that experiment's certain changes.

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

# The calibration variants of `fractal-4th` (tested in test_published_recipes.py).
VARIANTS = [name for name in list_recipes() if name.startswith(("fractal-aug-", "fractal-pc-"))]
BEST = "fractal-4th"
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


def changed_fields(config: GenerationConfig, base: GenerationConfig = None) -> set:
    """Dotted names of the fields that differ from `base` (default: the default config)."""
    def changed(ours: dict, default: dict, prefix: str) -> set:
        out = set()
        for key, value in ours.items():
            if isinstance(value, dict):
                out |= changed(value, default[key], f"{prefix}{key}.")
            elif value != default[key]:
                out.add(prefix + key)
        return out

    return changed(config.to_dict(), (base or GenerationConfig()).to_dict(), "")


# --- the recipes and the published table ---

def test_calibration_table_names_every_variant_and_fractal_4th_is_best_in_both():
    assert {r.recipe for r in RESULTS} == set(VARIANTS) | {BEST}
    assert len(VARIANTS) == 11 and all(r.table in TABLES for r in RESULTS)
    for table, spec in TABLES.items():
        values = published(table)
        best = min(values, key=values.get) if spec.lower_is_better else max(values, key=values.get)
        assert best == BEST, table
    assert published("image_augment")["fractal-aug-none"] == 1186.22
    assert published("point_cloud")["fractal-pc-diamond"] == 71.84
    with pytest.raises(UserError, match="unknown calibration table 'nope'; known: image_augment, point_cloud"):
        published("nope")


def test_each_variant_changes_only_its_experiment_from_fractal_4th():
    no_aug = {f"image_augment.{name}" for name in NO_IMAGE_AUGMENT}
    flips_ssr_bc = {"image_augment.hsv_p"}
    pa = "fractal.point_augment."
    expected = {
        "fractal-aug-none": no_aug,
        "fractal-aug-flips-ssr-bc": flips_ssr_bc,
        "fractal-aug-cutout": flips_ssr_bc | {f"image_augment.{name}" for name in (
            "cutout_p", "cutout_holes_min", "cutout_size_px")},  # cutout_holes is already 8
        "fractal-aug-distortion": flips_ssr_bc | {f"image_augment.{name}" for name in (
            "distortion_p", "distortion_kind", "grid_normalized")},
        "fractal-aug-trivialaugment": no_aug | {"image_augment.trivialaugment_p"},
        "fractal-pc-base": {pa + "subsample"},
        "fractal-pc-colorize": {pa + "subsample", pa + "colorize", pa + "colorize_style"},
        "fractal-pc-50k": {pa + "subsample", "fractal.points"},
        "fractal-pc-noise": {pa + "noise_std", pa + "noise_p"},
        "fractal-pc-pointwolf": {pa + "pointwolf", pa + "pointwolf_rescale"},
        "fractal-pc-diamond": {pa + "background", pa + "background_style"},
    }
    best = create_recipe(BEST)
    assert {name: changed_fields(create_recipe(name), best) for name in VARIANTS} == expected
    cutout = create_recipe("fractal-aug-cutout").image_augment  # albumentations 1.3.1 Cutout(): 8 holes of 8 px
    assert (cutout.cutout_p, cutout.cutout_holes_min, cutout.cutout_holes, cutout.cutout_size_px) == (0.5, 8, 8, 8)
    distortion = create_recipe("fractal-aug-distortion").image_augment
    assert (distortion.distortion_p, distortion.distortion_kind, distortion.grid_normalized) == (0.5, "optical_or_grid",
                                                                                                 False)
    noise = create_recipe("fractal-pc-noise").fractal.point_augment
    assert (noise.noise_std, noise.noise_p) == (0.01, 0.5)
    assert create_recipe("fractal-pc-pointwolf").fractal.point_augment.pointwolf_rescale == "unit_sphere"
    assert create_recipe("fractal-pc-colorize").fractal.point_augment.colorize_style == "4th"
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
def test_variant_is_deterministic_and_differs_from_fractal_4th(name):
    first = files(name)
    again = make_writer(name).encode_images(0, [3, 2, 1, 0])[::-1]  # a fresh worker, another order
    assert first == again
    assert first != files(BEST)


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


def black_boxes(image: np.ndarray) -> list:
    """(height, width, touches the bottom or right edge) of each connected black region."""
    from scipy import ndimage

    mask = (image == 0).all(-1)
    labels, _ = ndimage.label(mask)
    return [(box[0].stop - box[0].start, box[1].stop - box[1].start,
             box[0].stop == mask.shape[0] or box[1].stop == mask.shape[1]) for box in ndimage.find_objects(labels)]


def test_cutout_131_is_8_squares_of_8_px_cut_only_at_the_bottom_and_right():
    """albumentations 1.3.1 `Cutout()` (exp 010): 8 holes of 8 x 8 px whose centre is a uniform pixel
    of [0, H] x [0, W], corner = centre - 4, clipped: a hole is cut short only at the bottom or right
    edge. (CoarseDropout keeps every hole whole.)"""
    cfg = ImageAugmentConfig(**NO_IMAGE_AUGMENT, cutout_p=1.0, cutout_holes_min=8, cutout_size_px=8)
    augment = build_image_augmenter(cfg)
    image = np.full((32, 32, 3), 200, np.uint8)
    outs = [augment(image, seed) for seed in range(24)]
    assert len({o.tobytes() for o in outs}) == 24 and augment(image, 5).tobytes() == outs[5].tobytes()
    boxes = [box for out in outs for box in black_boxes(out)]
    for out in outs:
        assert ((out == image) | (out == 0)).all() and 16 <= (out == 0).all(-1).sum() <= 8 * 64
    assert all(min(h, w) >= 8 or edge for h, w, edge in boxes)  # short sides only at the bottom/right edge
    assert any(min(h, w) < 8 for h, w, _ in boxes)  # ... and there are some (4/33 of centres per axis)
    big = build_image_augmenter(cfg)(np.full((400, 400, 3), 200, np.uint8), 0)  # overlaps are rare at 400 px
    assert sorted(black_boxes(big))[-1][:2] == (8, 8) and len(black_boxes(big)) >= 7


@pytest.mark.parametrize("kind", ["grid", "optical_or_grid"])
def test_distortion_warps_without_black_borders(kind):
    augment = build_image_augmenter(ImageAugmentConfig(**NO_IMAGE_AUGMENT, distortion_p=1.0, distortion_kind=kind,
                                                       grid_normalized=kind == "grid"))
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


def test_optical_or_grid_is_their_one_of_at_131_defaults():
    """generator.py:141 `OneOf([OpticalDistortion(), GridDistortion()])`: 1.3.1's optical warp is
    the camera model with fx = w, fy = h, centre (w/2, h/2) (its shift rounds to 0 px), k ~ U(+-0.05);
    the grid has normalized=False; both reflect the border."""
    import albumentations as A
    import cv2

    from submission.augment import _distortion

    cfg = ImageAugmentConfig(**NO_IMAGE_AUGMENT, distortion_p=0.5, distortion_kind="optical_or_grid", grid_normalized=False)
    one_of = _distortion(A, cv2, cfg, cfg.distortion_p)
    optical, grid = one_of.transforms
    assert isinstance(one_of, A.OneOf) and one_of.p == 0.5
    assert isinstance(optical, A.OpticalDistortion) and optical.mode == "camera" and optical.distort_limit == (-0.05, 0.05)
    assert isinstance(grid, A.GridDistortion) and grid.normalized is False and grid.num_steps == 5
    assert optical.border_mode == grid.border_mode == cv2.BORDER_REFLECT_101
    image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    k = 0.04  # 1.3.1 functional.optical_distortion written out, against what our transform does with that k
    h, w = image.shape[:2]
    camera = np.array([[w, 0, w * 0.5], [0, h, h * 0.5], [0, 0, 1]], np.float32)
    maps = cv2.initUndistortRectifyMap(camera, np.array([k, k, 0, 0, 0], np.float32), None, None, (w, h), cv2.CV_32FC1)
    theirs = cv2.remap(image, *maps, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    ours = A.OpticalDistortion(distort_limit=(k, k), mode="camera", interpolation=cv2.INTER_LINEAR,
                               border_mode=cv2.BORDER_REFLECT_101, p=1.0)(image=image)["image"]
    np.testing.assert_array_equal(ours, theirs)
    grid_only = build_image_augmenter(dataclasses.replace(cfg, distortion_p=1.0, distortion_kind="grid"))
    both = build_image_augmenter(dataclasses.replace(cfg, distortion_p=1.0))
    checker = (np.indices((48, 48)).sum(0) // 4 % 2 * 255).astype(np.uint8)[..., None].repeat(3, axis=2)
    def change(augment, seed):
        return np.abs(augment(checker, seed).astype(int) - checker).mean()

    mildest_grid = min(change(grid_only, seed) for seed in range(16))
    mild = [change(both, seed) < mildest_grid for seed in range(16)]
    assert 2 <= sum(mild) <= 14  # the optical child (a warp under 1 px here) is picked about half the time


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


def test_pointwolf_unit_sphere_deforms_in_the_inputs_units_and_leaves_the_unit_sphere():
    """notebooks/_point_wolf.py: no move to the unit sphere first, then `normalize` (centred, radius
    0.999999). "restore" is scale-equivariant (it works in unit-sphere units and maps back)."""
    cloud = np.random.default_rng(0).uniform(-1, 1, (2000, 3)) + 0.3
    theirs = pointwolf(cloud, rng_for(0, 2, 0, 1), rescale="unit_sphere")
    np.testing.assert_allclose(theirs.mean(0), 0, atol=1e-9)
    assert np.sqrt((theirs ** 2).sum(1)).max() == pytest.approx(0.999999, abs=1e-12)
    restored = [pointwolf(c, rng_for(0, 2, 0, 1)) for c in (cloud, cloud * 3)]
    np.testing.assert_allclose(restored[1], restored[0] * 3, rtol=1e-9, atol=1e-9)
    tripled = pointwolf(cloud * 3, rng_for(0, 2, 0, 1), rescale="unit_sphere")
    assert np.abs(tripled - theirs).max() > 1e-3  # their kernel and translations act in the input's units


def test_noise_p_leaves_about_half_the_views_untouched_with_the_same_draws():
    cfg = PointAugmentConfig(noise_std=0.01, noise_p=0.0)  # the noise and its coin drawn, never applied
    cloud = np.random.default_rng(1).uniform(-1, 1, (500, 3)).astype(np.float32)
    clean = [augment_cloud(cloud, cfg, rng_for(0, 2, 0, j))[0] for j in range(48)]
    half = [augment_cloud(cloud, dataclasses.replace(cfg, noise_p=0.5), rng_for(0, 2, 0, j))[0] for j in range(48)]
    same = [np.array_equal(a, b) for a, b in zip(clean, half)]
    assert 12 <= sum(same) <= 36  # binomial(48, 0.5), 99.9% band
    assert all(np.abs(a - b).max() < 0.1 for a, b in zip(clean, half))  # the rest: noise of std 0.01 only
    always = augment_cloud(cloud, dataclasses.replace(cfg, noise_p=1.0), rng_for(0, 2, 0, 0))[0]
    assert not np.array_equal(always, clean[0])


def test_colorize_4th_is_their_opencv_hue_with_one_saturation_and_value_per_view():
    """_point_cloud.py:74-106: hue uint8(z_norm * 255) in OpenCV's 0-180 units, so z_norm 0 and
    180/255 are both red; S ~ U(0.3, 1), V ~ U(0.5, 1) once per view."""
    from submission.families.fractal.pointcloud import z_colors_4th

    z = np.array([0.0, 60.0, 180.0, 255.0]) / 255
    rgba = z_colors_4th(np.stack([np.zeros(4), np.zeros(4), z], axis=1), saturation=1.0, value=1.0)
    rgb = np.round(rgba[:, :3] * 255).astype(int)
    assert rgb[0].tolist() == [255, 0, 0] and rgb[2].tolist() == [255, 0, 0]  # the wrap: the top is red again
    assert rgb[1].tolist() == [0, 255, 0] and (rgba[:, 3] == 0.5).all()  # hue 60 = 120 degrees: green
    cfg = PointAugmentConfig(colorize=True, colorize_style="4th")
    cloud = np.random.default_rng(2).uniform(-1, 1, (400, 3)).astype(np.float32)
    views = [augment_cloud(cloud, cfg, rng_for(0, 2, 0, j))[1] for j in range(32)]
    values = np.array([v[:, :3].max() for v in views])  # V is the largest channel, the same for every point
    assert all(np.allclose(v[:, :3].max(1), v[:, :3].max()) for v in views)
    assert values.min() >= 0.5 - 1 / 255 and values.max() <= 1 and np.ptp(values) > 0.2
    ours = augment_cloud(cloud, dataclasses.replace(cfg, colorize_style="ours"), rng_for(0, 2, 0, 0))[1]
    assert (ours[:, :3].max(1) == 1).all()  # S = V = 1


def test_pc_variants_change_the_render():
    assert not np.array_equal(raw("fractal-pc-noise"), raw(BEST))
    assert not np.array_equal(raw("fractal-pc-pointwolf"), raw(BEST))
    assert raw("fractal-pc-50k").mean() > raw("fractal-pc-base").mean() * 1.05  # 5x the points: denser


def test_colorized_points_are_coloured():
    grey, colour = raw("fractal-pc-base"), raw("fractal-pc-colorize")
    assert (grey.max(-1) == grey.min(-1)).all()  # white points over black: grey only
    lit = colour.max(-1) > 0
    assert ((colour.max(-1).astype(int) - colour.min(-1))[lit] > 60).mean() > 0.5


def test_diamond_background_fills_the_black_and_keeps_the_points():
    plain, backed = raw(BEST), raw("fractal-pc-diamond")
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


def their_diamond_square_loop(n: int, corners: np.ndarray, decay: float) -> np.ndarray:
    """notebooks/_diamondsquare.py's `diamond_square` restated with its row loop, noise off."""
    s = 2 ** n + 1
    a = np.zeros((s, s))
    a[0::s - 1, 0::s - 1] = corners
    for k in range(1, n + 1):
        ss, ni = s // 2 ** k, 2 ** k
        up, left = np.meshgrid(np.arange(0, ni, 2) * ss, np.arange(0, ni, 2) * ss, indexing="ij")
        a[up + ss, left + ss] = 0.25 * (a[up, left] + a[up, left + 2 * ss] + a[up + 2 * ss, left]
                                        + a[up + 2 * ss, left + 2 * ss])
        idx = np.arange(ni) * ss
        before = np.where(idx > 0, idx - ss, s - ss - 1)
        for i, r in enumerate(idx):
            cols = idx[1 - i % 2::2]
            a[r, cols] = 0.25 * (a[before[i], cols] + a[r, np.where(cols > 0, cols - ss, s - ss - 1)]
                                 + a[r, cols + ss] + a[r + ss, cols])
    return a


def test_diamond_square_4th_is_their_grid_and_colouring():
    from submission.families.fractal.backgrounds import diamond_square_4th, diamond_square_background_4th

    class NoNoise:  # their corners, no noise: the grid arithmetic alone
        def random(self, shape):
            return np.array([[0.2, 0.9], [0.4, 0.7]])

        def uniform(self, low, high, shape):
            return np.zeros(shape)

    np.testing.assert_array_equal(diamond_square_4th(6, NoNoise(), 0.6),
                                  their_diamond_square_loop(6, np.array([[0.2, 0.9], [0.4, 0.7]]), 0.6))
    height = diamond_square_4th(5, rng_for(0, 4, 0, 0), 0.6)
    assert (height[-1, 1:-1] == 0).all() and (height[1:-1, -1] == 0).all()  # never set, as theirs
    rgb = diamond_square_background_4th(48, rng_for(0, 4, 0, 0))
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb, diamond_square_background_4th(48, rng_for(0, 4, 0, 0)))
    value = rgb.max(-1)  # V = clip(h U(0.3, 0.6) + U(0.4, 0.6)) x 255: a mid-to-bright, low-saturation backdrop
    assert 0.2 < value.mean() < 1 and ((value - rgb.min(-1)) / np.maximum(value, 1e-6)).max() < 0.75


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
     "unknown point_augment.background 'plasma'; choose one of ['black', 'diamond_square', 'color_patch']"),
    ({"point_augment": {"background": 3}}, "point_augment.background must be str"),
    ({"image_augment": {"cutout_holes_min": 0}}, "image_augment.cutout_holes_min must be at least 1"),
    ({"image_augment": {"cutout_holes_min": 9}}, "image_augment.cutout_holes_min must be at most 8, got 9 (= cutout_holes, 8)"),
    ({"image_augment": {"cutout_size_px": -1}}, "image_augment.cutout_size_px must be at least 0"),
    ({"image_augment": {"cutout_size_px": 1.5}}, "image_augment.cutout_size_px must be int"),
    ({"image_augment": {"distortion_kind": "optical"}},
     "unknown image_augment.distortion_kind 'optical'; choose one of ['grid', 'optical_or_grid']"),
    ({"image_augment": {"grid_normalized": 1}}, "image_augment.grid_normalized must be bool"),
    ({"point_augment": {"noise_p": 1.5}}, "point_augment.noise_p must be a finite number a probability in [0, 1]"),
    ({"point_augment": {"colorize_style": "theirs"}},
     "unknown point_augment.colorize_style 'theirs'; choose one of ['ours', '4th']"),
    ({"point_augment": {"background_style": "wacv"}},
     "unknown point_augment.background_style 'wacv'; choose one of ['ours', '4th']"),
    ({"point_augment": {"pointwolf_rescale": "sphere"}},
     "unknown point_augment.pointwolf_rescale 'sphere'; choose one of ['restore', 'unit_sphere']"),
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
