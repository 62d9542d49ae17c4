"""report.json and curves.png of a finished run over one or several downstream sets.

`score` is the mean over the downstream sets of each set's cumulative error (what the contest
reports); `downstream` holds each set's score, curves and sizes. A run over one set also keeps
the top-level `finetune` / `scratch` curves and downstream sizes of the single-set format.

With K > 1 fine-tuning repeats a set's score is the mean of its K repeats' scores, its curves
the per-epoch means (epoch_seconds: summed over the repeats, so they add up to the cost), and
`finetune_repeats` / `repeat_scores` (run and set) plus each set's `repeats` record the K runs;
with K = 1 none of these keys is written and the report is that of a run without repeats.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from submission.fileio import write_atomic

from ..core.distributed import Runtime
from ..core.metric import cumulative_error, scored_epochs
from ..core.outputs import figure_png, plot_curves, versions
from ..datasets.common import Downstream, LabeledSplit
from ..datasets.downstream import DownstreamSet
from ..train.loop import PhaseHistory


@dataclass
class SetResult:
    """The fine-tuning (and from-scratch) curves of one downstream set, one per repeat."""

    downstream_set: DownstreamSet
    data: Downstream
    finetunes: List[PhaseHistory]
    scratches: Optional[List[PhaseHistory]]

    @property
    def repeat_scores(self) -> List[float]:
        return [cumulative_error(h.top1) for h in self.finetunes]

    @property
    def score(self) -> float:
        return _mean(self.repeat_scores)

    @property
    def scratch_score(self) -> Optional[float]:
        return None if self.scratches is None else _mean(
            [cumulative_error(h.top1) for h in self.scratches])

    @property
    def finetune(self) -> PhaseHistory:
        return mean_history(self.finetunes)

    @property
    def scratch(self) -> Optional[PhaseHistory]:
        return None if self.scratches is None else mean_history(self.scratches)


def mean_history(histories: List[PhaseHistory]) -> PhaseHistory:
    """Per epoch: the mean top-1 and loss, the summed seconds; one history is returned as is."""
    if len(histories) == 1:
        return histories[0]

    def mean(lists: List[List[float]]) -> List[float]:
        return [sum(values) / len(values) for values in zip(*lists)]

    return PhaseHistory(loss=mean([h.loss for h in histories]),
                        top1=mean([h.top1 for h in histories]),
                        seconds=[sum(values) for values in zip(*[h.seconds for h in histories])])


def _curves(history: Optional[PhaseHistory]) -> Optional[Dict[str, List[float]]]:
    if history is None:
        return None
    return {"top1": history.top1, "loss": history.loss, "epoch_seconds": history.seconds}


def _mean(values: List[Optional[float]]) -> Optional[float]:
    return None if any(v is None for v in values) else sum(values) / len(values)


def _set_entry(result: SetResult) -> Dict[str, Any]:
    scratch = result.scratch_score
    return {"kind": result.downstream_set.kind, "description": result.data.description,
            "classes": result.data.train.num_classes,
            "train_images": len(result.data.train.dataset),
            "test_images": len(result.data.test.dataset),
            "score": result.score, "scratch_score": scratch,
            "score_gain_over_scratch": None if scratch is None else scratch - result.score,
            "finetune": _curves(result.finetune), "scratch": _curves(result.scratch),
            **_repeat_entries(result)}


def _repeat_entries(result: SetResult) -> Dict[str, Any]:
    """A set's per-repeat scores and curves; nothing with a single repeat."""
    if len(result.finetunes) == 1:
        return {}
    repeats = [{"score": cumulative_error(h.top1), **_curves(h)} for h in result.finetunes]
    entries: Dict[str, Any] = {"repeat_scores": result.repeat_scores, "repeats": repeats}
    if result.scratches is not None:
        entries["scratch_repeat_scores"] = [cumulative_error(h.top1) for h in result.scratches]
    return entries


def build_report(spec, runtime: Runtime, pretrain_data: Optional[LabeledSplit],
                 pretrain: Optional[PhaseHistory], results: List[SetResult]) -> Dict[str, Any]:
    """The report.json content; `pretrain_data`/`pretrain` are None for a run without
    pre-training (the `scratch` baseline of `compare`)."""
    config = spec.config
    score = _mean([r.score for r in results])
    scratch_score = _mean([r.scratch_score for r in results]) if spec.compare_scratch else None
    first, last = scored_epochs(len(results[0].finetune.top1))
    data: Dict[str, Any] = {
        "pretrain": None if spec.data is None else str(Path(spec.data).resolve()),
        "pretrain_classes": None if pretrain_data is None else pretrain_data.num_classes,
        "pretrain_images": None if pretrain_data is None else len(pretrain_data.dataset)}
    single = results[0] if len(results) == 1 else None
    if single is not None:
        data.update(downstream=single.data.description,
                    downstream_classes=single.data.train.num_classes,
                    downstream_train_images=len(single.data.train.dataset),
                    downstream_test_images=len(single.data.test.dataset))
    scratch_seconds = [sum(r.scratch.seconds) for r in results if r.scratch is not None]
    return {
        "score": score,
        "scratch_score": scratch_score,
        "score_gain_over_scratch": None if scratch_score is None else scratch_score - score,
        "downstream_scores": {r.downstream_set.name: r.score for r in results},
        "scored_epochs": [first, last],
        "metric": "sum over fine-tuning epochs ceil(E/2)..E of (100 - top1 %), averaged over "
                  "the downstream sets; lower is better",
        "preset": spec.preset,
        "config": config.to_dict(),
        "seed": config.seed,
        "data": data,
        "pretrain": None if pretrain is None else {"loss": pretrain.loss,
                                                   "epoch_seconds": pretrain.seconds},
        "finetune": None if single is None else _curves(single.finetune),
        "scratch": None if single is None else _curves(single.scratch),
        "downstream": {r.downstream_set.name: _set_entry(r) for r in results},
        "wall_seconds": {"pretrain": 0.0 if pretrain is None else sum(pretrain.seconds),
                         "finetune": sum(sum(r.finetune.seconds) for r in results),
                         "scratch": sum(scratch_seconds) if scratch_seconds else None,
                         "this_invocation": None},
        "runtime": {"device": runtime.device.type, "world_size": runtime.world_size,
                    "workers_per_process": runtime.workers,
                    "torch_threads": torch.get_num_threads()},
        "versions": versions(),
        **_run_repeats(spec, results),
    }


def _run_repeats(spec, results: List[SetResult]) -> Dict[str, Any]:
    """The run's K and its score per repeat (mean over the sets); nothing when K is 1."""
    if spec.finetune_repeats == 1:
        return {}
    per_repeat = [_mean(list(scores)) for scores in zip(*[r.repeat_scores for r in results])]
    return {"finetune_repeats": spec.finetune_repeats, "repeat_scores": per_repeat}


def plot_run(path: Path, spec, results: List[SetResult]) -> None:
    """curves.png: one set as before (pre-trained vs scratch), or one line pair per set."""
    config = spec.config
    source = "no pre-training" if spec.data is None else Path(spec.data).name
    if len(results) == 1:
        result = results[0]
        plot_curves(path, result.finetune.top1,
                    None if result.scratch is None else result.scratch.top1, result.score,
                    result.scratch_score,
                    f"{source} ({spec.preset}): {config.model} at {config.img_size} px, "
                    f"{result.data.train.num_classes}-class downstream")
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = list(range(1, len(results[0].finetune.top1) + 1))
    first, last = scored_epochs(len(epochs))
    figure, axes = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    axes.axvspan(first - 0.5, last + 0.5, color="tab:orange", alpha=0.12,
                 label=f"scored epochs {first}-{last}")
    for index, result in enumerate(results):
        color = f"C{index % 10}"
        name = result.downstream_set.name
        axes.plot(epochs, result.finetune.top1, marker="o", color=color,
                  label=f"{name} (score {result.score:.2f})")
        if result.scratch is not None:
            axes.plot(epochs, result.scratch.top1, marker="s", linestyle="--", color=color,
                      alpha=0.6, label=f"{name} scratch ({result.scratch_score:.2f})")
    axes.set_xlabel("fine-tuning epoch")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title(f"{source} ({spec.preset}): {config.model} at {config.img_size} px, "
                   f"mean score {_mean([r.score for r in results]):.2f}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    write_atomic(path, figure_png(figure))
