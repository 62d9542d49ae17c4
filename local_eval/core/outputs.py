"""How results are written, for runs and comparisons alike: JSON refused when it holds NaN or
inf, matplotlib figures as PNG bytes, the per-epoch curves plot, and the library versions a
report records. What a run's report.json holds is local_eval.run.report."""
from __future__ import annotations

import io
import json
import math
import platform
from pathlib import Path
from typing import Any, Dict, List, Optional

from submission.errors import UserError
from submission.fileio import write_atomic

from .metric import scored_epochs


def versions() -> Dict[str, str]:
    import numpy
    import timm
    import torch
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "timm": timm.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


def non_finite_keys(data: Any, prefix: str = "") -> List[str]:
    """Dotted paths (list items as [i]) of every NaN or infinite float inside `data`."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [prefix or "(the value itself)"]
    if isinstance(data, dict):
        items = [(f"{prefix}.{key}" if prefix else str(key), value) for key, value in data.items()]
    elif isinstance(data, (list, tuple)):
        items = [(f"{prefix}[{index}]", value) for index, value in enumerate(data)]
    else:
        return []
    return [found for key, value in items for found in non_finite_keys(value, key)]


def figure_png(figure) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def write_json(data: Dict[str, Any], path: Path) -> None:
    """Write `data` to `path` through a temporary name, so a reader never sees half a file.

    Strict JSON only: a bare NaN or Infinity is no JSON, and a score computed from one means
    nothing, so such a value is refused (with where it is) instead of written.
    """
    bad = non_finite_keys(data)
    if bad:
        raise UserError(f"refusing to write {path}: {', '.join(bad[:3])} "
                        f"{'is' if len(bad) == 1 else 'are'} not a finite number (NaN or inf); "
                        f"the run diverged, so rerun with a lower learning rate in a new --out")
    text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
    write_atomic(path, (text + "\n").encode())


def plot_curves(path: Path, pretrained: List[float], scratch: Optional[List[float]],
                score: float, scratch_score: Optional[float], title: str) -> None:
    """Fine-tune top-1 per epoch, pre-trained vs scratch, with the scored epochs shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = list(range(1, len(pretrained) + 1))
    first, last = scored_epochs(len(pretrained))
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    axes.axvspan(first - 0.5, last + 0.5, color="tab:orange", alpha=0.12,
                 label=f"scored epochs {first}-{last}")
    axes.plot(epochs, pretrained, marker="o", color="tab:blue",
              label=f"pre-trained (score {score:.2f})")
    if scratch is not None and scratch_score is not None:
        axes.plot(epochs, scratch, marker="s", color="tab:gray", linestyle="--",
                  label=f"from scratch (score {scratch_score:.2f})")
    axes.set_xlabel("fine-tuning epoch")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_xticks(epochs if len(epochs) <= 20 else epochs[::max(1, len(epochs) // 10)])
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=9)
    figure.tight_layout()
    write_atomic(path, figure_png(figure))
