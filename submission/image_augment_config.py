"""`ImageAugmentConfig`: the albumentations recipe baked into the saved files, shared by every
family (submission/augment.py builds it), and its checks (`check_image_augment`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .limits import MAX_IMAGE_SIZE, _is_finite, _short, need, need_int

AFFINE_KINDS = ("affine", "shift_scale_rotate")  # image_augment.affine_kind
AFFINE_BORDERS = ("constant", "reflect101")  # image_augment.affine_border
DISTORTION_KINDS = ("grid", "optical_or_grid")  # image_augment.distortion_kind


@dataclass(frozen=True)
class ImageAugmentConfig:
    """The fixed albumentations recipe baked into the saved files; p=0 switches a transform off."""

    transpose_p: float = 0.5
    hflip_p: float = 0.5
    vflip_p: float = 0.5
    affine_p: float = 0.5
    shift_limit: float = 0.0625  # fraction of the image size
    scale_limit: float = 0.1  # scale drawn in [1 - limit, 1 + limit]
    rotate_limit: float = 45.0  # degrees
    brightness_contrast_p: float = 0.5
    brightness_limit: float = 0.2
    contrast_limit: float = 0.2
    hsv_p: float = 0.5
    hue_shift_limit: float = 20.0
    sat_shift_limit: float = 30.0
    val_shift_limit: float = 20.0
    # The 4th place's augmentation ran on albumentations 1.x (1.3.1 inferred; docs/published-recipes.md):
    # "shift_scale_rotate" is its ShiftScaleRotate (generator.py:138): one scale for both axes, where
    # our "affine" draws x and y scales apart; its border was BORDER_REFLECT_101 ("reflect101"), ours
    # black ("constant"). The defaults are theirs; ours ("affine", "constant", False) is `fractal-ours`'s.
    affine_kind: str = "shift_scale_rotate"
    affine_border: str = "reflect101"
    # 1.3.1's HueSaturationValue (generator.py:140; functional.py _shift_hsv_uint8) shifts saturation
    # and hue through a LUT on every pixel, so grey pixels (white points, a lifted background) get
    # tinted; 2.0.8's leaves S = 0 pixels grey. True: the 1.3.1 behaviour (augment.py).
    hsv_grey_tint: bool = True
    # Off by default (each made the 4th-place leaderboard score worse); applied after the above.
    cutout_p: float = 0.0  # CoarseDropout: black rectangles
    cutout_holes: int = 8  # cutout_holes_min..cutout_holes rectangles per image
    cutout_holes_min: int = 1
    cutout_size: float = 0.1  # rectangle sides drawn in [size / 2, size] x the image side
    # > 0: albumentations 1.3.1's `Cutout()` instead (the 4th place's exp 010; dropout/cutout.py:35-72):
    # squares of this side in pixels, centred on uniform pixels and clipped at the border (its
    # defaults: 8 holes of 8 px, fill 0). 0: `cutout_size` sets the sides.
    cutout_size_px: int = 0
    distortion_p: float = 0.0  # GridDistortion (5 x 5 grid, reflected border)
    distortion_limit: float = 0.3  # grid steps scaled by 1 + U(-limit, limit)
    # "optical_or_grid": the 4th place's `OneOf([OpticalDistortion(), GridDistortion()])`
    # (generator.py:141, exp 011) at 1.3.1's defaults (optical k ~ U(+-0.05)); "grid": GridDistortion.
    distortion_kind: str = "grid"
    # 1.3.1's GridDistortion had normalized=False (steps may push pixels outside); 2.0.8 defaults to True.
    grid_normalized: bool = True
    trivialaugment_p: float = 0.0  # torchvision TrivialAugmentWide (one random op at a random strength)

    @property
    def enabled(self) -> bool:
        """Whether any transform can fire (each is on when its probability `*_p` is above 0)."""
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self) if f.name.endswith("_p"))


def check_image_augment(ia: Any) -> None:
    """Raise `UserError` naming the first bad field of `ia` and how to fix it."""
    need(isinstance(ia, ImageAugmentConfig), f"image_augment must be an ImageAugmentConfig (or None for the default), "
                                             f"got {type(ia).__name__} {_short(ia)}")
    for name in (f.name for f in dataclasses.fields(ia) if f.name.endswith("_p")):
        p = getattr(ia, name)
        need(_is_finite(p) and 0.0 <= p <= 1.0, f"image_augment.{name} is a probability and must be in [0, 1], got {p}")
    # (field, low, high, high included, what it is): the ranges albumentations and OpenCV make sense of.
    for name, low, high, closed, what in (
            ("shift_limit", 0.0, 1.0, True, "a fraction of the image size"),
            ("scale_limit", 0.0, 1.0, False, "scale is drawn in [1 - limit, 1 + limit]"),
            ("rotate_limit", 0.0, 180.0, True, "degrees"),
            ("brightness_limit", 0.0, 1.0, True, "a fraction of the full range"),
            ("contrast_limit", 0.0, 1.0, True, "a fraction of the contrast"),
            ("hue_shift_limit", 0.0, 180.0, True, "OpenCV hue units, 0-179"),
            ("sat_shift_limit", 0.0, 255.0, True, "8-bit saturation units"),
            ("val_shift_limit", 0.0, 255.0, True, "8-bit value units"),
            ("cutout_size", 0.0, 1.0, True, "a fraction of the image side"),
            ("distortion_limit", 0.0, 1.0, False, "grid steps scaled by 1 + U(-limit, limit)")):
        value = getattr(ia, name)
        ok = _is_finite(value) and low <= value and (value <= high if closed else value < high)
        need(ok, f"image_augment.{name} must be a finite number in [{low:g}, {high:g}{']' if closed else ')'} ({what}), "
                 f"got {_short(value)}")
    need(ia.affine_kind in AFFINE_KINDS, f"unknown image_augment.affine_kind {_short(ia.affine_kind)}; "
                                         f"choose one of {list(AFFINE_KINDS)}")
    need(ia.affine_border in AFFINE_BORDERS, f"unknown image_augment.affine_border {_short(ia.affine_border)}; "
                                             f"choose one of {list(AFFINE_BORDERS)}")
    need(isinstance(ia.hsv_grey_tint, bool), f"image_augment.hsv_grey_tint must be true or false, got {_short(ia.hsv_grey_tint)}")
    need_int("image_augment.cutout_holes", ia.cutout_holes, 1,
            f"image_augment.cutout_holes must be at least 1, got {_short(ia.cutout_holes)} (e.g. 8)", 1000, " (e.g. 8)")
    need_int("image_augment.cutout_holes_min", ia.cutout_holes_min, 1,
            f"image_augment.cutout_holes_min must be at least 1, got {_short(ia.cutout_holes_min)} (e.g. 1)",
            ia.cutout_holes, f" (= cutout_holes, {ia.cutout_holes})")
    need_int("image_augment.cutout_size_px", ia.cutout_size_px, 0,
            f"image_augment.cutout_size_px must be at least 0 (0 = use cutout_size), got {_short(ia.cutout_size_px)}",
            MAX_IMAGE_SIZE, " pixels (e.g. 8)")
    need(ia.distortion_kind in DISTORTION_KINDS, f"unknown image_augment.distortion_kind {_short(ia.distortion_kind)}; "
                                                 f"choose one of {list(DISTORTION_KINDS)}")
    need(isinstance(ia.grid_normalized, bool),
         f"image_augment.grid_normalized must be true or false, got {_short(ia.grid_normalized)}")
    need(ia.cutout_p == 0 or ia.cutout_size > 0, "image_augment.cutout_size must be above 0 when cutout_p is on (e.g. 0.1)")
