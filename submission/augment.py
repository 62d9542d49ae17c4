"""The fixed image augmentation recipe baked into the saved files (albumentations and, when
switched on, torchvision's TrivialAugmentWide; seeded per image)."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .config import ImageAugmentConfig
from .errors import UserError
from .seeding import int_seed

ImageAugmenter = Callable[[np.ndarray, int], np.ndarray]
_BORDERS = {"constant": 0, "reflect101": 4}  # ImageAugmentConfig.affine_border -> cv2.BORDER_CONSTANT / _REFLECT_101
OPTICAL_DISTORT_LIMIT_131 = 0.05  # albumentations 1.3.1 OpticalDistortion(distort_limit=0.05) default


def build_image_augmenter(cfg: ImageAugmentConfig) -> ImageAugmenter:
    """`augment(image (H, W, 3) uint8 RGB, seed) -> (H, W, 3) uint8`; same image + seed = same bytes.

    Transpose and flips, shift-scale-rotate (Affine, black fill), brightness/contrast and
    hue/saturation/value: the 4th-place entry's best recipe (`affine_kind`, `affine_border` and
    `hsv_grey_tint` switch to how albumentations 1.x, which they ran, did the last three). Then, off by default: Cutout
    (CoarseDropout or 1.3.1's Cutout, black rectangles), distortion (GridDistortion, or OneOf
    optical/grid) and torchvision's TrivialAugmentWide. A transform with p = 0 is left out; transform i of those left in draws
    from its own seed `int_seed(seed, i)`, so adding one at the end keeps the others' draws.
    """
    try:
        import albumentations as A
        import cv2
    except ImportError as exc:
        raise UserError(f"image augmentation needs albumentations and OpenCV ({exc}); "
                        "install them with `pip install -r requirements.txt`") from None
    candidates = [
        (cfg.transpose_p, lambda p: A.Transpose(p=p)),
        (cfg.hflip_p, lambda p: A.HorizontalFlip(p=p)),
        (cfg.vflip_p, lambda p: A.VerticalFlip(p=p)),
        # affine_kind "shift_scale_rotate": keep_ratio draws one scale for both axes, as 1.x's
        # ShiftScaleRotate did (2.0.8's ShiftScaleRotate is this Affine, with a deprecation warning).
        (cfg.affine_p, lambda p: A.Affine(translate_percent=(-cfg.shift_limit, cfg.shift_limit),
                                          scale=(1 - cfg.scale_limit, 1 + cfg.scale_limit),
                                          rotate=(-cfg.rotate_limit, cfg.rotate_limit),
                                          interpolation=cv2.INTER_LINEAR, border_mode=_BORDERS[cfg.affine_border],
                                          fill=0, keep_ratio=cfg.affine_kind == "shift_scale_rotate", p=p)),
        (cfg.brightness_contrast_p, lambda p: A.RandomBrightnessContrast(
            brightness_limit=cfg.brightness_limit, contrast_limit=cfg.contrast_limit, p=p)),
        (cfg.hsv_p, lambda p: (_grey_tinting_hsv(A) if cfg.hsv_grey_tint else A.HueSaturationValue)(
            hue_shift_limit=cfg.hue_shift_limit, sat_shift_limit=cfg.sat_shift_limit,
            val_shift_limit=cfg.val_shift_limit, p=p)),
        (cfg.cutout_p, lambda p: _cutout(A, cfg, p)),
        (cfg.distortion_p, lambda p: _distortion(A, cv2, cfg, p)),
    ]
    compose = A.Compose([make(p) for p, make in candidates if p > 0], seed=0)
    trivial = _trivial_augment(cfg.trivialaugment_p, int(len(compose.transforms)))

    def augment(image: np.ndarray, seed: int) -> np.ndarray:
        # Compose.set_random_seed hands every transform the same seed, which makes their
        # "apply?" draws identical (all fire or none do); give each transform its own seed.
        compose.set_random_seed(seed)
        for index, transform in enumerate(compose.transforms):
            transform.set_random_seed(int_seed(seed, index))
        image = compose(image=image)["image"]
        return image if trivial is None else trivial(image, seed)

    return augment


def _cutout(A, cfg: ImageAugmentConfig, p: float):
    """Black rectangles, cutout_holes_min..cutout_holes of them: CoarseDropout with sides a fraction
    `cutout_size` of the image, or (cutout_size_px > 0) albumentations 1.3.1's `Cutout` squares."""
    holes = (cfg.cutout_holes_min, cfg.cutout_holes)
    if cfg.cutout_size_px == 0:
        return A.CoarseDropout(num_holes_range=holes, hole_height_range=(cfg.cutout_size / 2, cfg.cutout_size),
                               hole_width_range=(cfg.cutout_size / 2, cfg.cutout_size), fill=0, p=p)
    side = cfg.cutout_size_px

    class Cutout131(A.CoarseDropout):
        """1.3.1's Cutout (dropout/cutout.py:57-72): each hole's centre is a uniform pixel in
        [0, H] x [0, W]; its corner is the centre minus side // 2, both clipped to the image, so
        holes at the bottom and right edges are cut (CoarseDropout keeps holes whole)."""

        def get_params_dependent_on_data(self, params, data):
            height, width = params["shape"][:2]
            count = self.py_random.randint(*self.num_holes_range)
            y1 = np.clip(self.random_generator.integers(0, height + 1, size=count) - side // 2, 0, height)
            x1 = np.clip(self.random_generator.integers(0, width + 1, size=count) - side // 2, 0, width)
            corners = np.stack([x1, y1, np.minimum(x1 + side, width), np.minimum(y1 + side, height)], axis=-1)
            return {"holes": corners, "seed": self.random_generator.integers(0, 2**32 - 1)}

    return Cutout131(num_holes_range=holes, hole_height_range=(side, side), hole_width_range=(side, side), fill=0, p=p)


def _distortion(A, cv2, cfg: ImageAugmentConfig, p: float):
    """GridDistortion (5 x 5 grid), or (distortion_kind "optical_or_grid") the 4th place's
    `OneOf([OpticalDistortion(), GridDistortion()])` (generator.py:141) at albumentations 1.3.1's
    defaults. Reflected border (1.x's default): with a constant border GridDistortion blacks out
    the last row and column of every image."""
    grid = A.GridDistortion(num_steps=5, distort_limit=cfg.distortion_limit, interpolation=cv2.INTER_LINEAR,
                            border_mode=cv2.BORDER_REFLECT_101, normalized=cfg.grid_normalized,
                            p=p if cfg.distortion_kind == "grid" else 1.0)
    if cfg.distortion_kind == "grid":
        return grid
    # 1.3.1 OpticalDistortion: k ~ U(-0.05, 0.05), camera matrix fx = w, fy = h, centre shift
    # round(U(-0.05, 0.05)) = 0 px (geometric/transforms.py get_params; functional.py:1124-1153):
    # exactly 2.0.8's "camera" mode. OneOf picks one child with equal weights (both p 0.5 in 1.3.1).
    optical = A.OpticalDistortion(distort_limit=(-OPTICAL_DISTORT_LIMIT_131, OPTICAL_DISTORT_LIMIT_131), mode="camera",
                                  interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_REFLECT_101, p=1.0)
    return A.OneOf([optical, grid], p=p)


def shift_hsv_uint8_albumentations_131(image: np.ndarray, hue_shift: float, sat_shift: float,
                                       val_shift: float) -> np.ndarray:
    """albumentations 1.3.1's HSV shift of a uint8 RGB image (`functional._shift_hsv_uint8`, what the
    4th place's HueSaturationValue ran): OpenCV uint8 HSV, each channel through a 256-entry LUT,
    hue (h + shift) mod 180, saturation and value clipped to [0, 255], fractional shifts truncated
    by the uint8 cast. Unlike 2.0.8 it shifts the saturation of grey pixels (S = 0) too, so white
    and grey turn a faint colour of hue `hue_shift` when `sat_shift` > 0."""
    import cv2

    if hue_shift == 0 and sat_shift == 0 and val_shift == 0:
        return image
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    levels = np.arange(0, 256, dtype=np.int16)
    if hue_shift != 0:
        hue = cv2.LUT(hue, np.mod(levels + hue_shift, 180).astype(np.uint8))
    if sat_shift != 0:
        sat = cv2.LUT(sat, np.clip(levels + sat_shift, 0, 255).astype(np.uint8))
    if val_shift != 0:
        val = cv2.LUT(val, np.clip(levels + val_shift, 0, 255).astype(np.uint8))
    return cv2.cvtColor(cv2.merge((hue, sat, val)), cv2.COLOR_HSV2RGB)


def _grey_tinting_hsv(A):
    """HueSaturationValue drawing its shifts as 2.0.8 does (same seeded draws) and applying them as
    1.3.1 did (`shift_hsv_uint8_albumentations_131`)."""

    class GreyTintingHueSaturationValue(A.HueSaturationValue):
        def apply(self, img, hue_shift, sat_shift, val_shift, **params):
            return shift_hsv_uint8_albumentations_131(img, hue_shift, sat_shift, val_shift)

    return GreyTintingHueSaturationValue


def _trivial_augment(p: float, index: int) -> Optional[ImageAugmenter]:
    """torchvision's TrivialAugmentWide applied with probability `p` (None when p = 0), seeded by
    `int_seed(seed, index)`. torchvision draws from torch's global generator: the call runs under
    `torch.random.fork_rng`, seeded inside, so the caller's RNG state is untouched and the result
    depends on the seed alone (not on the process, the worker count or earlier images)."""
    if p <= 0:
        return None
    try:
        import torch
        from torchvision.transforms import TrivialAugmentWide
    except ImportError as exc:
        raise UserError(f"image_augment.trivialaugment_p needs torchvision ({exc}); install torch and torchvision") from None
    transform = TrivialAugmentWide()  # 31 magnitude bins, nearest interpolation, black fill

    def augment(image: np.ndarray, seed: int) -> np.ndarray:
        own_seed = int_seed(seed, index)
        if p < 1 and np.random.default_rng(own_seed).random() >= p:
            return image
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(own_seed)
            out = transform(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))  # (3, H, W) uint8
        return out.permute(1, 2, 0).contiguous().numpy()

    return augment
