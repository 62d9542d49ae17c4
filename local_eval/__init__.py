"""Local estimate of the contest score of a generated pre-training dataset.

`python -m local_eval run --data GEN_DIR --out RUN_DIR --preset quick --data-root PATH` (or
without `run`) pre-trains a model on the generated ImageFolder (a timm ViT, or the organizer's kit networks with the kit-*
presets), fine-tunes it on one or more downstream sets (`--downstream cifar10,fashion-mnist,DIR`:
the kit's named sets, read from --data-root, or ImageFolder pairs), and
writes `report.json` and `curves.png` with the cumulative misclassification score, averaged over
the sets. `python -m local_eval compare` runs datasets x presets x seeds and says, with a paired
t-interval, which dataset scores better; `python -m local_eval --help` lists every command.

Layout, bottom to top (each package imports only those below it; tests/test_local_eval_layout.py):
`core/` (config, presets, metric, lock, outputs), `augment/`, `datasets/`, `stats/`, `store/`,
`train/`, `run/` (one evaluation), `compare/` (datasets x presets x seeds), `tools/` (timing,
throughput); `cli.py` is the command shell. docs/architecture.md draws it.
"""
from .core.torch_cache import use_private_cache_dir

use_private_cache_dir()  # before anything imports torch (local_eval.core.torch_cache says why)

from .core.config import EvalConfig  # noqa: E402
from .core.metric import cumulative_error, scored_epochs  # noqa: E402
from .core.presets import PRESETS, build_config, preset_config  # noqa: E402

__all__ = ["PRESETS", "EvalConfig", "build_config", "preset_config", "cumulative_error",
           "scored_epochs"]
