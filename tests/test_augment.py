import numpy as np
import pytest

from submission.augment import build_image_augmenter
from submission.config import ImageAugmentConfig
from submission.families.fractal.config import PointAugmentConfig
from submission.families.fractal.pointcloud import augment_cloud, random_rotation, z_colors
from submission.seeding import rng_for


@pytest.fixture
def cloud():
    return np.random.default_rng(0).uniform(-1, 1, (1000, 3)).astype(np.float32)


def test_point_augmentation_is_deterministic_per_seed(cloud):
    a = augment_cloud(cloud, PointAugmentConfig(), rng_for(0, 2, 5, 7))
    b = augment_cloud(cloud, PointAugmentConfig(), rng_for(0, 2, 5, 7))
    c = augment_cloud(cloud, PointAugmentConfig(), rng_for(0, 2, 5, 8))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])


def test_subsample_keeps_80_to_100_percent(cloud):
    counts = [len(augment_cloud(cloud, PointAugmentConfig(), rng_for(1, 2, 0, j))[0]) for j in range(50)]
    assert 800 <= min(counts) and max(counts) <= 1000 and len(set(counts)) > 10


def test_switches_turn_each_step_off(cloud):
    off = PointAugmentConfig(subsample=False, scale_shift=False, rotate=False)
    points, colors = augment_cloud(cloud, off, rng_for(0, 2, 0, 0))
    np.testing.assert_array_equal(points, cloud)
    np.testing.assert_array_equal(colors, np.tile([1, 1, 1, 0.5], (1000, 1)).astype(np.float32))
    rotated, _ = augment_cloud(cloud, PointAugmentConfig(subsample=False, scale_shift=False), rng_for(0, 2, 0, 0))
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=1), np.linalg.norm(cloud, axis=1), rtol=1e-5)
    noisy, _ = augment_cloud(cloud, PointAugmentConfig(subsample=False, scale_shift=False, rotate=False, noise_std=0.01),
                             rng_for(0, 2, 0, 0))
    assert 0.005 < np.std(noisy - cloud) < 0.02


def test_scale_and_shift_stay_in_range(cloud):
    cfg = PointAugmentConfig(subsample=False, rotate=False, scale_shift_p=1.0)  # every view scaled
    for j in range(20):
        points, _ = augment_cloud(cloud, cfg, rng_for(0, 2, 0, j))
        scale = (points.max(0) - points.min(0)) / (cloud.max(0) - cloud.min(0))
        assert ((scale >= 0.8 - 1e-5) & (scale <= 1.2 + 1e-5)).all()


def test_rotation_is_proper():
    for j in range(10):
        r = random_rotation(rng_for(0, 2, 0, j))
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(r), 1.0)


def test_colorize_maps_z_to_hue(cloud):
    colors = z_colors(cloud)
    assert colors.shape == (1000, 4) and np.all(colors[:, 3] == 0.5)
    assert colors[:, :3].min() >= 0 and colors[:, :3].max() <= 1
    assert len(np.unique(colors[:, :3].round(2), axis=0)) > 50


def test_image_augmentation_same_seed_same_bytes_and_independent_transforms():
    augment = build_image_augmenter(ImageAugmentConfig())
    image = (np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)
    outs = [augment(image, seed) for seed in range(64)]
    for seed in (0, 5, 63):
        assert augment(image, seed).tobytes() == outs[seed].tobytes()
    # Six transforms at p=0.5 each: about 1/64 of images untouched. Seeding every transform with
    # the same seed (albumentations' Compose.set_random_seed alone) would leave about half untouched.
    untouched = sum(np.array_equal(o, image) for o in outs)
    assert untouched <= 8
    assert len({o.tobytes() for o in outs}) > 50


def test_image_augmentation_can_be_switched_off():
    off = ImageAugmentConfig(transpose_p=0, hflip_p=0, vflip_p=0, affine_p=0, brightness_contrast_p=0, hsv_p=0)
    image = (np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(build_image_augmenter(off)(image, 3), image)


# --- the 4th place's image augmentation quirks (issue 18, fractal-4th) -----------------------------

ONLY = dict(transpose_p=0.0, hflip_p=0.0, vflip_p=0.0, affine_p=0.0, brightness_contrast_p=0.0, hsv_p=0.0)


def test_albumentations_131_hsv_tints_grey_pixels_and_wraps_hue():
    from submission.augment import shift_hsv_uint8_albumentations_131 as shift
    grey = np.full((4, 4, 3), 200, np.uint8)
    tinted = shift(grey, 10.0, 30.9, 0.0)  # fractional shifts truncate, as 1.3.1's uint8 LUT cast does
    import cv2
    hsv = cv2.cvtColor(tinted, cv2.COLOR_RGB2HSV)[0, 0]
    assert tinted[0, 0, 0] > tinted[0, 0, 2]  # hue 10 (of 180) is red-orange: R above B
    assert abs(int(hsv[1]) - 30) <= 2 and abs(int(hsv[0]) - 10) <= 2 and int(hsv[2]) == 200
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 255  # hue 0
    wrapped = cv2.cvtColor(shift(red, -20.0, 0.0, 0.0), cv2.COLOR_RGB2HSV)[0, 0, 0]
    assert abs(int(wrapped) - 160) <= 1  # (0 - 20) mod 180
    assert shift(grey, 0.0, 0.0, 0.0) is grey


def test_grey_tint_switch_colours_white_points_where_albumentations_2_does_not():
    image = np.zeros((32, 32, 3), np.uint8)
    image[8:24, 8:24] = 255  # white points on black
    tint = build_image_augmenter(ImageAugmentConfig(**{**ONLY, "hsv_p": 1.0}, hsv_grey_tint=True))
    plain = build_image_augmenter(ImageAugmentConfig(**{**ONLY, "hsv_p": 1.0}, hsv_grey_tint=False))
    coloured = [int(np.ptp(tint(image, seed).astype(int), axis=2).max()) for seed in range(100)]
    assert 25 <= sum(c > 4 for c in coloured) <= 60  # sat shift in (4, 30] for about 43% of draws
    assert all(np.ptp(plain(image, seed).astype(int), axis=2).max() == 0 for seed in range(100))
    np.testing.assert_array_equal(tint(image, 3), tint(image, 3))


def bounding_box(mask):
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_shift_scale_rotate_draws_one_scale_and_reflects_the_border():
    square = np.full((64, 64, 3), 60, np.uint8)
    square[24:40, 24:40] = 255
    zoom = dict(ONLY, affine_p=1.0, shift_limit=0.0, rotate_limit=0.0, scale_limit=0.5)
    ssr = build_image_augmenter(ImageAugmentConfig(**zoom, affine_kind="shift_scale_rotate"))
    affine = build_image_augmenter(ImageAugmentConfig(**zoom, affine_kind="affine"))
    ssr_aspects = [np.subtract(*bounding_box(ssr(square, s)[..., 0] > 160)) for s in range(20)]
    affine_aspects = [np.subtract(*bounding_box(affine(square, s)[..., 0] > 160)) for s in range(20)]
    assert max(abs(d) for d in ssr_aspects) <= 1 and max(abs(d) for d in affine_aspects) > 3
    turn = dict(ONLY, affine_p=1.0, rotate_limit=45.0)
    reflect = build_image_augmenter(ImageAugmentConfig(**turn, affine_kind="shift_scale_rotate", affine_border="reflect101"))
    black = build_image_augmenter(ImageAugmentConfig(**turn, affine_kind="affine", affine_border="constant"))
    assert all(reflect(square, s).min() >= 50 for s in range(10))  # uncovered corners copy the image
    assert any(black(square, s).min() == 0 for s in range(10))


@pytest.mark.parametrize("changes, message", [
    ({"affine_kind": "ssr"}, "unknown image_augment.affine_kind 'ssr'"),
    ({"affine_border": "wrap"}, "unknown image_augment.affine_border 'wrap'"),
    ({"hsv_grey_tint": 1}, "image_augment.hsv_grey_tint must be true or false"),
])
def test_bad_image_augment_quirks_are_one_line_errors(changes, message):
    from submission import GenerationConfig
    from submission.errors import UserError
    with pytest.raises(UserError, match=message):
        GenerationConfig(image_augment=ImageAugmentConfig(**changes))


def test_channel_order_bgr_swaps_red_and_blue_on_disk(tmp_path):
    from PIL import Image

    from submission import GenerationConfig, generate
    from submission.errors import UserError
    from submission.families.fractal.config import FractalConfig
    config = GenerationConfig(classes=1, images_per_class=2, image_size=48, workers=1, image_augment=ImageAugmentConfig(**ONLY),
                              fractal=FractalConfig(points=1500, point_augment=PointAugmentConfig(colorize=True)),
                              channel_order="rgb")
    rgb = generate(tmp_path / "rgb", config, progress=False)
    bgr = generate(tmp_path / "bgr", config.replace(channel_order="bgr"), progress=False)
    for path in sorted(rgb.rglob("*.png")):
        drawn = np.asarray(Image.open(path))
        swapped = np.asarray(Image.open(bgr / path.relative_to(rgb)))
        assert (drawn[..., 0] != drawn[..., 2]).any()  # coloured, so the swap shows
        np.testing.assert_array_equal(swapped, drawn[..., ::-1])
    with pytest.raises(UserError, match="unknown channel_order 'brg'"):
        config.replace(channel_order="brg")
