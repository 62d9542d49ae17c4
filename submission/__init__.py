"""Formula-driven pre-training data: 3D IFS fractal point clouds rendered to an ImageFolder dataset.

    from submission import generate, GenerationConfig
    generate("out", GenerationConfig(classes=10, images_per_class=20))
"""
from .config import GenerationConfig, ImageAugmentConfig, PointAugmentConfig
from .errors import UserError
from .pipeline import GenerationReport, generate, run_generation

__all__ = ["GenerationConfig", "GenerationReport", "ImageAugmentConfig", "PointAugmentConfig", "UserError",
           "generate", "run_generation"]
