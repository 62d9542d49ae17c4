"""One local evaluation: pre-train, fine-tune (and from scratch), score, write RUN_DIR.

RUN_DIR holds `run.json` (what the run is: config + data), one checkpoint per phase
(`pretrain.pt`, `finetune.pt`, `scratch.pt`, rewritten after every epoch; with several downstream
sets `finetune-<set>.pt` and `scratch-<set>.pt`; with --finetune-repeats K, repeats 2..K add
`finetune[-<set>]-repeat<k>.pt`), `report.json` and `curves.png`. Rerunning with
the same RUN_DIR resumes; a different run there is refused. A run without `data` skips
pre-training and fine-tunes from random initialization (the `scratch` baseline of `compare`).
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from submission.fileio import make_dirs

from ..core.distributed import Runtime, barrier
from ..core.lock import run_folder_lock
from ..core.outputs import write_json
from ..datasets.downstream import DownstreamSet
from ..train.loop import EpochBudget, PhaseHistory, StopRequested, load_checkpoint, run_phase
from ..train.phases import finetune_seed, finetune_spec, pretrain_spec
from .inputs import load_inputs
from .record import RUN_FILE
from .report import SetResult, build_report, plot_run
from .spec import RunSpec


def _checkpoint(out: Path, phase: str, downstream_set: DownstreamSet, several: bool,
                repeat: int = 1) -> Path:
    stem = f"{phase}-{downstream_set.name}" if several else phase
    return out / (f"{stem}.pt" if repeat == 1 else f"{stem}-repeat{repeat}.pt")


def run(spec: RunSpec, runtime: Runtime, stop_after_epochs: Optional[int] = None,
        budget: Optional[EpochBudget] = None) -> Optional[Dict[str, Any]]:
    """Run (or resume) the evaluation; returns the report, or None when stopped early.

    `budget` (shared by the runs of a `compare`) replaces `stop_after_epochs` when given.
    """
    began = time.perf_counter()
    sets, pretrain_data, downstreams = load_inputs(spec, runtime)
    # Claim the run folder only once the data is known to fit: a refused run leaves nothing behind.
    # One process at a time (local_eval.core.lock); torchrun's processes share one run.
    with contextlib.nullcontext() if runtime.distributed else run_folder_lock(spec.out):
        return _run_claimed(spec, runtime, began, sets, pretrain_data, downstreams,
                            budget if budget is not None else EpochBudget(stop_after_epochs))


def _run_claimed(spec: RunSpec, runtime: Runtime, began: float, sets, pretrain_data, downstreams,
                 budget: EpochBudget) -> Optional[Dict[str, Any]]:
    if runtime.is_main:
        make_dirs(spec.out, "--out")
        if not (spec.out / RUN_FILE).exists():
            write_json(spec.identity(), spec.out / RUN_FILE)
    barrier(runtime)
    try:
        pretrain, results = _train(spec, runtime, sets, pretrain_data, downstreams, budget)
    except StopRequested:
        return None
    report = build_report(spec, runtime, pretrain_data, pretrain, results)
    if runtime.is_main:
        report["wall_seconds"]["this_invocation"] = time.perf_counter() - began
        plot_run(spec.out / "curves.png", spec, results)
        write_json(report, spec.out / "report.json")
    barrier(runtime)
    return report


def _train(spec: RunSpec, runtime: Runtime, sets, pretrain_data, downstreams, budget: EpochBudget):
    """Pre-train (unless scratch-only), then fine-tune on every downstream set (and from scratch
    with --compare-scratch); each phase resumes from its checkpoint in the run folder."""
    config, out = spec.config, spec.out
    several = len(sets) > 1
    pretrain, backbone = None, None
    if pretrain_data is not None:
        pretrain = run_phase(pretrain_spec(config, pretrain_data), runtime, out / "pretrain.pt",
                             budget)
        backbone = load_checkpoint(out / "pretrain.pt")["model"]
    results: List[SetResult] = []
    for downstream_set, downstream in zip(sets, downstreams):
        label = downstream_set.name if several else ""
        finetunes = _repeats(spec, runtime, "finetune", downstream_set, downstream, backbone,
                             label, several, budget)
        scratches = None
        if spec.compare_scratch:
            scratches = _repeats(spec, runtime, "scratch", downstream_set, downstream, None,
                                 label, several, budget)
        results.append(SetResult(downstream_set, downstream, finetunes, scratches))
    return pretrain, results


def _repeats(spec: RunSpec, runtime: Runtime, name: str, downstream_set: DownstreamSet,
             downstream, backbone, label: str, several: bool,
             budget: EpochBudget) -> List[PhaseHistory]:
    """Phase `name` on one downstream set, once per fine-tuning repeat (each resumable)."""
    count = spec.finetune_repeats
    histories = []
    for repeat in range(1, count + 1):
        tag = f"{label} repeat {repeat}/{count}".strip() if count > 1 else label
        phase = finetune_spec(name, spec.config, downstream, backbone, tag,
                              seed=finetune_seed(spec.config.seed, repeat))
        histories.append(run_phase(phase, runtime, _checkpoint(spec.out, name, downstream_set,
                                                               several, repeat), budget))
    return histories
