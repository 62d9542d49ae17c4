"""Named recipes, in the style of timm's model factories: a recipe is a complete `GenerationConfig`
(a data family and its settings) under a name.

    list_recipes()                                  # ['fractal', ...]
    config = create_recipe("fractal", classes=10)   # overrides of None keep the recipe's value

An unknown name raises `UserError` listing the known ones. `generate`, `preview` and `pack` take
`--recipe NAME`; every recipe's config can be generated, packed and rehearsed like any other.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Tuple

from .config import GenerationConfig, ImageAugmentConfig
from .errors import UserError

# name -> (one-line description, factory)
_RECIPES: Dict[str, Tuple[str, Callable[[], GenerationConfig]]] = {}


def register_recipe(name: str, description: str) -> Callable[[Callable[[], GenerationConfig]], Callable[[], GenerationConfig]]:
    """Decorator: register a zero-argument factory returning the recipe's `GenerationConfig`."""
    def register(factory: Callable[[], GenerationConfig]) -> Callable[[], GenerationConfig]:
        if name in _RECIPES:
            raise ValueError(f"recipe {name!r} is registered twice")
        _RECIPES[name] = (description, factory)
        return factory
    return register


def list_recipes() -> List[str]:
    """Registered recipe names, sorted."""
    return sorted(_RECIPES)


def describe_recipe(name: str) -> str:
    _check_name(name)
    return _RECIPES[name][0]


def create_recipe(name: str, **overrides: Any) -> GenerationConfig:
    """The config of recipe `name` with `overrides` applied (None: keep the recipe's value)."""
    _check_name(name)
    return _RECIPES[name][1]().with_overrides(**overrides)


def _check_name(name: str) -> None:
    if name not in _RECIPES:
        raise UserError(f"unknown recipe {name!r}; known recipes: {', '.join(list_recipes())}")


@register_recipe("fractal", "the 4th-place 3D fractal recipe, the contest default (1000 x 1000 at 224 px)")
def _fractal() -> GenerationConfig:
    return GenerationConfig()


@register_recipe("glyphs", "the 3rd-place CJK glyph recipe: 1000 classes of similar-looking characters layered "
                           "in colour (256 px, CPU, no image augmentation; fonts: make fonts)")
def _glyphs() -> GenerationConfig:
    no_augment = ImageAugmentConfig(transpose_p=0.0, hflip_p=0.0, vflip_p=0.0, affine_p=0.0, brightness_contrast_p=0.0,
                                    hsv_p=0.0)  # the family draws its own flips, rotations, offsets and colours
    return GenerationConfig(family="glyphs", image_size=256, device="cpu", image_augment=no_augment)


@register_recipe("visualatom", "VisualAtom (CVPR 2023) sinusoidal-wave contours, the public renderer's best-practice "
                 "settings drawn at its 512 px and area-resized to 224 px, no baked-in augmentation (1000 x 1000)")
def _visualatom() -> GenerationConfig:
    # 224, not the paper's 512: the paper trains on RandomResizedCrop(224) of its 512 px images, and
    # the contest's server crops without resizing, so 224 px (the model's input) shows it the whole
    # atom as the paper's full-scale crop does, at a fifth of the pixels to draw, encode and store.
    # The paper's images carry no augmentation (it is applied at training time), and the family
    # draws on the CPU whatever the host has (device cpu keeps every core as a worker).
    no_image_augment = ImageAugmentConfig(transpose_p=0.0, hflip_p=0.0, vflip_p=0.0, affine_p=0.0,
                                          brightness_contrast_p=0.0, hsv_p=0.0)
    return GenerationConfig(family="visualatom", image_size=224, device="cpu", image_augment=no_image_augment)


# Calibration variants: one factor of the 4th-place study changed from `fractal` (their published
# numbers are in calibration.py). Image side: its leaderboard table; point side: its CIFAR-100 table
# (those keep today's image augmentation).
_NO_IMAGE_AUGMENT = dict(transpose_p=0.0, hflip_p=0.0, vflip_p=0.0, affine_p=0.0, brightness_contrast_p=0.0, hsv_p=0.0)
_VARIANTS = {  # name -> (description, image_augment changes, point_augment changes, fractal changes)
    "fractal-aug-none": ("fractal without image augmentation", _NO_IMAGE_AUGMENT, {}, {}),
    "fractal-aug-flips-ssr-bc": ("fractal with flips, shift-scale-rotate, brightness/contrast (no HSV)",
                                 {"hsv_p": 0.0}, {}, {}),
    "fractal-aug-cutout": ("fractal-aug-flips-ssr-bc + Cutout (CoarseDropout, p 0.5)",
                           {"hsv_p": 0.0, "cutout_p": 0.5}, {}, {}),
    "fractal-aug-distortion": ("fractal-aug-flips-ssr-bc + GridDistortion (p 0.5)",
                               {"hsv_p": 0.0, "distortion_p": 0.5}, {}, {}),
    "fractal-aug-trivialaugment": ("fractal with TrivialAugmentWide as its only image augmentation",
                                   {**_NO_IMAGE_AUGMENT, "trivialaugment_p": 1.0}, {}, {}),
    "fractal-pc-base": ("fractal without random point subsampling (shift/scale + rotation only)",
                        {}, {"subsample": False}, {}),
    "fractal-pc-colorize": ("fractal-pc-base with z-coloured points", {}, {"subsample": False, "colorize": True}, {}),
    "fractal-pc-50k": ("fractal-pc-base with 50k points per category", {}, {"subsample": False}, {"points": 50_000}),
    "fractal-pc-noise": ("fractal + Gaussian point noise (std 0.01)", {}, {"noise_std": 0.01}, {}),
    "fractal-pc-pointwolf": ("fractal + PointWOLF local deformations", {}, {"pointwolf": True}, {}),
    "fractal-pc-diamond": ("fractal over a diamond-square plasma background", {}, {"background": "diamond_square"}, {}),
}


def _variant_factory(image: Dict[str, Any], point: Dict[str, Any], fractal: Dict[str, Any]) -> Callable[[], GenerationConfig]:
    def factory() -> GenerationConfig:
        base = GenerationConfig()
        point_augment = dataclasses.replace(base.fractal.point_augment, **point)
        return base.replace(image_augment=dataclasses.replace(base.image_augment, **image),
                            fractal=dataclasses.replace(base.fractal, point_augment=point_augment, **fractal))
    return factory


for _name, (_description, _image, _point, _fractal) in _VARIANTS.items():
    register_recipe(_name, _description)(_variant_factory(_image, _point, _fractal))


@register_recipe("glyphs-3rd", "the 3rd place's glyph drawing procedure as their generator.py does it: uniform "
                               "draws normalised to mix the channels, any of the 24 fonts, per-font placement "
                               "ratios, 74 nearest-neighbour rotations of the cut canvas, classes 40 apart "
                               "sharing their random streams, their class table rebuilt (256 px, CPU; fonts: "
                               "make fonts)")
def _glyphs_3rd() -> GenerationConfig:
    # askbox-net/NEDO-ASKBOX submit/src/generator.py (K); each field's line is cited in GlyphConfig and the
    # side-by-side table is docs/families.md "Published recipes, exactly: glyphs-3rd".
    base = _glyphs()
    return base.replace(glyphs=dataclasses.replace(
        base.glyphs,
        mix="uniform_normalised",  # K:72-74
        font_choice="all",  # K:32
        placement="font_ratio",  # K:39-44, fonts.json
        rotation_step=5.0, rotation_count=74,  # K:47 randint(0, 74) * 5
        rotation_interpolation="nearest",  # K:47 (Image.rotate's default)
        cut_before_rotation=True,  # K:30-47: drawn on the 256 canvas, then rotated
        offset_rounding="floor",  # K:56-57
        class_stream_period=40,  # K:21, K:32, K:144-151 (40 = params.json numof_thread)
        class_table="3rd",  # their character list and selection (V = clustering/vae_classify.py), rebuilt
    ))
