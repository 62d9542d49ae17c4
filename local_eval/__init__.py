"""Local estimate of the contest score of a generated pre-training dataset.

`python -m local_eval run --data GEN_DIR --out RUN_DIR --preset quick --data-root PATH` (or
without `run`) pre-trains a model on the generated ImageFolder (a timm ViT, or the organizer's kit networks with the kit-*
presets), fine-tunes it on one or more downstream sets (`--downstream cifar10,fashion-mnist,DIR`:
the kit's named sets, read from --data-root, or ImageFolder pairs), and
writes `report.json` and `curves.png` with the cumulative misclassification score, averaged over
the sets. `python -m local_eval compare` runs datasets x presets x seeds and says, with a paired
t-interval, which dataset scores better; `python -m local_eval --help` lists every command.

Layout: `run/` is one evaluation (config and presets, data, models, training phases, report);
`compare/` builds on it (plan, datasets, statistics, report, calibration against published
tables); `tools/` are helpers (noise and digits datasets, timing, throughput); `cli.py` is the
command shell.
"""
from .torch_cache import use_private_cache_dir

use_private_cache_dir()  # before anything imports torch (local_eval.torch_cache says why)

from .run.config import EvalConfig  # noqa: E402
from .run.metric import cumulative_error, scored_epochs  # noqa: E402
from .run.presets import PRESETS, build_config, preset_config  # noqa: E402

__all__ = ["PRESETS", "EvalConfig", "build_config", "preset_config", "cumulative_error",
           "scored_epochs"]
