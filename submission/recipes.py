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

from .config import GenerationConfig
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


# --- The contest defaults: the published recipes, exactly (issue 18) --------------------------------
# No measurement shows one of our readings better, so `fractal`, `glyphs` and `visualatom` are the
# exact published recipes; our readings stay available as `fractal-ours`, `glyphs-ours` and
# `visualatom-224` (docs/families.md "Published recipes, exactly" has the side-by-side tables).

@register_recipe("fractal", "the 4th place's best entry (exp 009, LB 1157.03) exactly as their code makes it, "
                 "the contest default (1000 x 1000 at 384 px; = GenerationConfig())")
def _fractal() -> GenerationConfig:
    return GenerationConfig()  # its field defaults are `fractal-4th`'s, each citing its source


@register_recipe("fractal-ours", "our earlier reading of the 4th-place fractal (the default before the switch): "
                 "224 px, our normalisation and scale/shift, Affine with black fill, no grey tint, RGB on disk")
def _fractal_ours() -> GenerationConfig:
    # Each value below is ours where `fractal-4th` (the defaults) is theirs; the same bytes as `fractal`
    # before the switch (tests/test_pinned_bytes.py).
    base = GenerationConfig()
    point_augment = dataclasses.replace(base.fractal.point_augment, scale_shift_p=1.0, isotropic_scale=False,
                                        scale_shift_first=False)
    fractal = dataclasses.replace(base.fractal, normalization="longest_axis_midrange", point_augment=point_augment)
    image_augment = dataclasses.replace(base.image_augment, affine_kind="affine", affine_border="constant",
                                        hsv_grey_tint=False)
    return base.replace(image_size=224, channel_order="rgb", fractal=fractal, image_augment=image_augment)


_NO_IMAGE_AUGMENT = dict(transpose_p=0.0, hflip_p=0.0, vflip_p=0.0, affine_p=0.0, brightness_contrast_p=0.0, hsv_p=0.0)


def _without_image_augment(base: GenerationConfig, **changes: Any) -> GenerationConfig:
    """`base` with every baked-in image augmentation off (the family draws its own) and `changes`."""
    return base.replace(image_augment=dataclasses.replace(base.image_augment, **_NO_IMAGE_AUGMENT), **changes)


@register_recipe("glyphs-ours", "our earlier reading of the 3rd-place CJK glyphs (the default before the switch): "
                 "our class table of 6 distinct CJK characters, Dirichlet channel mix, covering fonts, centred ink "
                 "(256 px, CPU, no image augmentation; fonts: make fonts)")
def _glyphs_ours() -> GenerationConfig:
    # Built on `fractal-ours`'s shared settings (RGB; image augmentation off), so the config, its
    # fingerprint and its bytes are the `glyphs` recipe's before the switch.
    return _without_image_augment(_fractal_ours(), family="glyphs", image_size=256, device="cpu")


@register_recipe("visualatom-224", "VisualAtom drawn at the renderer's 512 px and area-resized to 224 px (the "
                 "default before the switch), no baked-in augmentation (1000 x 1000)")
def _visualatom_224() -> GenerationConfig:
    # 224, not the paper's 512: the paper trains on RandomResizedCrop(224) of its 512 px images, and
    # the contest's server crops without resizing, so 224 px (the model's input) shows it the whole
    # atom as the paper's full-scale crop does, at a fifth of the pixels to draw, encode and store.
    # The paper's images carry no augmentation (it is applied at training time), and the family
    # draws on the CPU whatever the host has (device cpu keeps every core as a worker).
    return _without_image_augment(_fractal_ours(), family="visualatom", image_size=224, device="cpu")


# --- Published recipes, exactly (issue 18; docs/families.md "Published recipes, exactly") ---------

@register_recipe("visualatom", "VisualAtom (CVPR 2023) sinusoidal-wave contours as the public renderer makes "
                 "them: its best-practice settings, drawn and kept at 512 px (no resize), no baked-in augmentation "
                 "(1000 x 1000)")
def _visualatom() -> GenerationConfig:
    # render_VisualAtom.py:15,120 draws on a 512 px canvas and saves it as drawn; with image_size equal
    # to canvas_size (512) the family skips its area resize, so the atom is the renderer's 1 px lines.
    return _visualatom_224().replace(image_size=512)


@register_recipe("visualatom-paper", "same as visualatom: VisualAtom as the public renderer makes it, drawn and "
                 "kept at 512 px")
def _visualatom_paper() -> GenerationConfig:
    return _visualatom()


@register_recipe("fractal-4th", "same as fractal: the 4th place's best entry (exp 009, LB 1157.03) as their code "
                 "makes it: 384 px, their point normalisation and scale/shift, albumentations-1.x SSR and HSV, "
                 "red/blue swapped on disk")
def _fractal_4th() -> GenerationConfig:
    # The GenerationConfig defaults since the switch; stated here field by field so the recipe does
    # not silently follow a later change of a default (tests/test_recipes.py checks it equals
    # `GenerationConfig()`). Every field below differs from `fractal-ours`; sources are hiranoko/PIDModuleContest_4thPlaceSolution
    # src/Pytorch3D/src/ (G = generator.py, F = _fractal.py, P = _point_cloud.py) and doc/Solution.md
    # (S); the side-by-side table is docs/families.md "Published recipes, exactly".
    base = GenerationConfig()
    point_augment = dataclasses.replace(
        base.fractal.point_augment,
        scale_shift_p=0.5,  # G:155 `scale_shift(points, p=0.5)`
        isotropic_scale=True,  # P:26 one `np.random.uniform(0.8, 1.2)` for all axes
        scale_shift_first=True)  # G:154-156 sample -> scale/shift -> rotate
    fractal = dataclasses.replace(
        base.fractal, point_augment=point_augment,
        normalization="global_minmax_mean")  # F:26-30 + F:40-53, the filter on it at G:71-73
    image_augment = dataclasses.replace(
        base.image_augment,  # G:135-140: Transpose, flips, SSR, RBC, HSV at their defaults, p 0.5 each
        affine_kind="shift_scale_rotate",  # G:138 `ShiftScaleRotate()`: one scale
        affine_border="reflect101",  # its 1.x default border (cv2.BORDER_REFLECT_101)
        hsv_grey_tint=True)  # G:140 on albumentations 1.3.1: grey pixels tinted
    # No distortion: G:141's OneOf([OpticalDistortion, GridDistortion]) is S:140-151's exp 011, not 009.
    return base.replace(image_size=384,  # G:124 RasterizationSettings(image_size=384)
                        channel_order="bgr",  # G:177 cv2.imwrite of an RGB array
                        fractal=fractal, image_augment=image_augment)


# Calibration variants: the 4th place's best entry (`fractal-4th`, exp 009) with exactly the changes
# one published experiment's table cell states (doc/Solution.md S:117-128 point cloud, S:140-151
# image augmentation; the numbers are in local_eval/compare/calibration.py). What the same
# experiment ID probably also changed in the other table is *inferred* and not applied; the
# per-row certain/inferred split is in docs/families.md "Calibration variants".
_CUTOUT_131 = dict(cutout_p=0.5, cutout_holes=8, cutout_holes_min=8, cutout_size_px=8)  # A131 Cutout(): 8 x 8 px, fill 0
_OPTICAL_OR_GRID_131 = dict(distortion_p=0.5, distortion_kind="optical_or_grid", grid_normalized=False)  # G:141, A131
_VARIANTS = {  # name -> (description, image_augment changes, point_augment changes, fractal changes)
    "fractal-aug-none": ("fractal-4th without image augmentation (exp 003's image side, LB 1186.22; certain: "
                         "its points, 50k without subsampling, are inferred and not applied)", _NO_IMAGE_AUGMENT, {}, {}),
    "fractal-aug-flips-ssr-bc": ("fractal-4th without HSV: flips, shift-scale-rotate, brightness/contrast (exp 008, "
                                 "LB 1164.94; certain)", {"hsv_p": 0.0}, {}, {}),
    "fractal-aug-cutout": ("fractal-aug-flips-ssr-bc + albumentations 1.3.1 Cutout(): 8 holes of 8 x 8 px, p 0.5 "
                           "(exp 010, LB 1161.29; certain column, Cutout's parameters inferred: library defaults)",
                           {"hsv_p": 0.0, **_CUTOUT_131}, {}, {}),
    "fractal-aug-distortion": ("fractal-aug-flips-ssr-bc + OneOf(OpticalDistortion, GridDistortion) at 1.3.1 "
                               "defaults, p 0.5 (exp 011, LB 1171.68; certain: its point noise is inferred, not applied)",
                               {"hsv_p": 0.0, **_OPTICAL_OR_GRID_131}, {}, {}),
    "fractal-aug-trivialaugment": ("fractal-4th with torchvision's TrivialAugmentWide as its only image augmentation "
                                   "(exp 013, LB 1179.81; certain: its PointWOLF is inferred, not applied)",
                                   {**_NO_IMAGE_AUGMENT, "trivialaugment_p": 1.0}, {}, {}),
    "fractal-pc-base": ("fractal-4th without random point subsampling (exp 001, CIFAR-100 73.23%; certain: its "
                        "image side, probably no augmentation, is inferred and not applied)", {}, {"subsample": False}, {}),
    "fractal-pc-colorize": ("fractal-pc-base with the 4th place's z colouring at its function defaults (exp 002, "
                            "CIFAR-100 71.83%; certain column, defaults rather than the notebook's 0.8/0.8 inferred)",
                            {}, {"subsample": False, "colorize": True, "colorize_style": "4th"}, {}),
    "fractal-pc-50k": ("fractal-pc-base with 50k points per category (exp 003, CIFAR-100 72.95%; certain)",
                       {}, {"subsample": False}, {"points": 50_000}),
    "fractal-pc-noise": ("fractal-4th + Gaussian point noise std 0.01, p 0.5 (exp 011, CIFAR-100 72.69%; certain "
                         "column, p and position from their code: inferred)", {}, {"noise_std": 0.01, "noise_p": 0.5}, {}),
    "fractal-pc-pointwolf": ("fractal-4th + PointWOLF as their copy rescales it, to the unit sphere (exp 013, CIFAR-100 "
                             "72.08%; certain column, its position in the point chain inferred)", {}, {"pointwolf": True, "pointwolf_rescale": "unit_sphere"}, {}),
    "fractal-pc-diamond": ("fractal-4th over the 4th place's diamond-square background (exp 022, CIFAR-100 71.84%; "
                           "certain column; its resizing and compositing are unpublished: cropped to size, 'over')",
                           {}, {"background": "diamond_square", "background_style": "4th"}, {}),
}


def _variant_factory(image: Dict[str, Any], point: Dict[str, Any], fractal: Dict[str, Any],
                     base_recipe: Callable[[], GenerationConfig]) -> Callable[[], GenerationConfig]:
    """A recipe that is `base_recipe` with these image-augmentation, point-augmentation and fractal changes."""
    def factory() -> GenerationConfig:
        base = base_recipe()
        point_augment = dataclasses.replace(base.fractal.point_augment, **point)
        return base.replace(image_augment=dataclasses.replace(base.image_augment, **image),
                            fractal=dataclasses.replace(base.fractal, point_augment=point_augment, **fractal))
    return factory


for _name, (_description, _image, _point, _fractal_changes) in _VARIANTS.items():
    register_recipe(_name, _description)(_variant_factory(_image, _point, _fractal_changes, _fractal_4th))


@register_recipe("glyphs", "the 3rd place's CJK glyph recipe as their generator.py does it: 1000 classes of "
                           "similar-looking characters layered in colour, uniform draws normalised to mix the "
                           "channels, any of the 24 fonts, per-font placement ratios, 74 nearest-neighbour "
                           "rotations of the cut canvas, classes 40 apart sharing their random streams, their class "
                           "table rebuilt (256 px, CPU, no image augmentation; fonts: make fonts)")
def _glyphs() -> GenerationConfig:
    # askbox-net/NEDO-ASKBOX submit/src/generator.py (K); each field's line is cited in GlyphConfig and the
    # side-by-side table is docs/families.md "Published recipes, exactly: glyphs-3rd".
    base = _glyphs_ours()
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


@register_recipe("glyphs-3rd", "same as glyphs: the 3rd place's glyph drawing procedure and class table as their "
                               "generator.py does it (256 px, CPU; fonts: make fonts)")
def _glyphs_3rd() -> GenerationConfig:
    return _glyphs()


# --- Beyond the published recipes (issue 29): one lever of the literature each, off in every recipe above ---

def _fractal_with(point_augment: Dict[str, Any], **fractal_changes: Any) -> Callable[[], GenerationConfig]:
    """A recipe that is `fractal` (the 4th place's best entry) with these point-augmentation and
    `FractalConfig` changes."""
    def factory() -> GenerationConfig:
        base = _fractal_4th()
        changed = dataclasses.replace(base.fractal.point_augment, **point_augment)
        return base.replace(fractal=dataclasses.replace(base.fractal, point_augment=changed, **fractal_changes))
    return factory


for _delta in (0.05, 0.1):
    register_recipe(f"fractal-perturbed-{_delta:g}",
                    f"fractal with 1p-frac's within-class variation: each image's IFS is its class's with every "
                    f"map parameter + U(-{_delta:g}, {_delta:g}) (Nakamura et al., ECCV 2024; 1000 x 1000 at 384 px)")(
        _fractal_with({}, perturb_delta=_delta))

register_recipe("fractal-color", "fractal as Anderson & Farrell draw it (WACV 2022): 1-5 instances of the class per "
                "image, each framed to 0.15-0.6 of the side in its own random hue, over a smooth random colour field "
                "(1000 x 1000 at 384 px)")(
    _fractal_with({"background": "color_patch"}, instances=5, instance_color="random_hue"))
register_recipe("fractal-color-fill", "fractal-color framed to fill the crop: 1-2 instances per image, each framed to "
                "0.5-1.5 of the side (overflowing it above 1, after their classification generator's zoom 0.5-2), "
                "in its own random hue over a smooth random colour field (1000 x 1000 at 384 px)")(
    _fractal_with({"background": "color_patch"}, instances=2, instance_size_min=0.5, instance_size_max=1.5,
                  instance_color="random_hue"))


register_recipe("fractal-fill", "fractal framed as fractal-color-fill, without its colour: 1-2 white instances per image at "
                "0.5-1.5 of the side over black (the diagnostic that found the random hue, not the framing, "
                "to be what lost on the CPU judge; 1000 x 1000 at 384 px)")(
    _fractal_with({}, instances=2, instance_size_min=0.5, instance_size_max=1.5))


def _mix(recipes: str, mode: str, image_size: int) -> Callable[[], GenerationConfig]:
    """A mix recipe: the components' own augmentation and channel order, none added by the mix."""
    def factory() -> GenerationConfig:
        base = _without_image_augment(GenerationConfig(), family="mix", image_size=image_size, channel_order="rgb",
                                      device="cpu")
        return base.replace(mix=dataclasses.replace(base.mix, recipes=recipes, mode=mode))
    return factory


register_recipe("mix-fractal-glyphs", "500 classes of fractal and 500 of glyphs, each drawn as its recipe writes it "
                "and resized to 256 px (fractal's 384 px by INTER_AREA); after Shaders21k's mixed generators "
                "(fonts: make fonts)")(_mix("fractal:0.5,glyphs:0.5", "classes", 256))
register_recipe("mix-blend-fractal-glyphs", "every image the even mix of a fractal image and a glyph image of the same "
                "class (fractal resized to 256 px), as the 3rd place mixes glyph layers (fonts: make fonts)")(
    _mix("fractal:0.5,glyphs:0.5", "blend", 256))
