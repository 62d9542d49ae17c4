"""Local estimate of the contest score of a generated pre-training dataset.

`python -m local_eval --data GEN_DIR --out RUN_DIR --preset quick --cifar-root PATH` pre-trains a
timm ViT on the generated ImageFolder, fine-tunes it on CIFAR-100 (or `--downstream-dir`), and
writes `report.json` and `curves.png` with the cumulative misclassification score.
"""
from .config import PRESETS, EvalConfig, build_config, preset_config
from .metric import cumulative_error, scored_epochs

__all__ = ["PRESETS", "EvalConfig", "build_config", "preset_config", "cumulative_error",
           "scored_epochs"]
