"""Formula-driven pre-training data for the Signate contest: an ImageFolder dataset of one of three
data families (fractal: 3D IFS point clouds rendered from random views; glyphs: layered CJK
characters; visualatom: sinusoidal-wave contours), byte-deterministic, resumable and packable.

    from submission import generate, GenerationConfig, FractalConfig
    from submission.recipes import create_recipe
    generate("out", GenerationConfig(classes=10, images_per_class=20))  # the contest default, `fractal`
    generate("small", GenerationConfig(classes=10, images_per_class=20, fractal=FractalConfig(points=2000)))
    generate("atoms", create_recipe("visualatom", classes=10, images_per_class=20))  # another family's recipe
"""
from .config import GenerationConfig, ImageAugmentConfig
from .errors import UserError
from .families.fractal.config import FractalConfig, PointAugmentConfig
from .families.glyphs.config import GlyphConfig
from .families.visualatom.config import VisualAtomConfig

_LAZY = {"generate", "run_generation", "GenerationReport"}  # pull in torch only when used


def __getattr__(name: str):
    if name in _LAZY:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'submission' has no attribute {name!r}")


__all__ = ["FractalConfig", "GenerationConfig", "GenerationReport", "GlyphConfig", "ImageAugmentConfig",
           "PointAugmentConfig", "UserError", "VisualAtomConfig", "generate", "run_generation"]
