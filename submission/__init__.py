"""Formula-driven pre-training data for the Signate contest: an ImageFolder dataset of one of three
data families (fractal: 3D IFS point clouds rendered from random views; glyphs: layered CJK
characters; visualatom: sinusoidal-wave contours), byte-deterministic, resumable and packable.

    from submission import generate, GenerationConfig, FractalConfig
    generate("out", GenerationConfig(classes=10, images_per_class=20))
    generate("small", GenerationConfig(classes=10, images_per_class=20, fractal=FractalConfig(points=2000)))
    generate("atoms", GenerationConfig(classes=10, images_per_class=20, family="visualatom"))
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
