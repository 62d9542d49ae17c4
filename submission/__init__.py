"""Formula-driven pre-training data: 3D IFS fractal point clouds rendered to an ImageFolder dataset.

    from submission import generate, GenerationConfig
    generate("out", GenerationConfig(classes=10, images_per_class=20))
"""
from .config import GenerationConfig, ImageAugmentConfig, PointAugmentConfig
from .errors import UserError

_LAZY = {"generate", "run_generation", "GenerationReport"}  # pull in torch only when used


def __getattr__(name: str):
    if name in _LAZY:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'submission' has no attribute {name!r}")


__all__ = ["GenerationConfig", "GenerationReport", "ImageAugmentConfig", "PointAugmentConfig", "UserError",
           "generate", "run_generation"]
