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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from submission.errors import UserError
from submission.fileio import check_writable_target, make_dirs

from .config import EvalConfig
from .data import LabeledSplit, check_image_folder, check_images, load_pretrain_data
from .distributed import Runtime, barrier
from .downstream import DownstreamSet, downstream_identity, parse_downstream
from .fingerprint import folder_fingerprint
from .lock import LOCK_FILE, run_folder_lock
from .models import create_model
from .outputs import write_json
from .phases import finetune_seed, finetune_spec, pretrain_spec
from .record import (
    CONTENT_KEYS,
    RUN_FILE,
    content_changed,
    differences,
    read_record,
    without_content,
)
from .report import SetResult, build_report, plot_run
from .train import (
    EpochBudget,
    PhaseHistory,
    StopRequested,
    load_checkpoint,
    run_phase,
    steps_per_epoch,
)
from .transforms import check_crop_fits


@dataclass(frozen=True)
class RunSpec:
    """What to evaluate; `identity()` is what must match for a rerun to resume."""

    config: EvalConfig
    data: Optional[Path]  # None: no pre-training (fine-tune from random initialization)
    out: Path
    downstream: str = "cifar100"  # comma-separated: named sets (cifar10, mnist, ...), folder, paths
    data_root: Optional[Path] = None  # the named sets (local_eval.run.named_sets)
    downstream_dir: Optional[Path] = None
    download: bool = False
    compare_scratch: bool = False
    preset: str = "custom"  # informative only: the config says what runs
    # What `data` holds; None: fingerprint the folder (local_eval.run.fingerprint). `compare` passes
    # its own for the datasets it generates (named by their config hash).
    data_content: Optional[str] = None
    # Fine-tunings of the one pre-trained backbone (seeds: phases.finetune_seed); the score is
    # their mean. 1 is today's run: it adds nothing to identity() or the report.
    finetune_repeats: int = 1
    # How pre-training reads `data`: "store" (decoded once into an image store, augmented on
    # the device) or "pil" (PNG files decoded and augmented in the loader workers).
    loader: str = "store"

    def downstream_sets(self) -> Tuple[DownstreamSet, ...]:
        return parse_downstream(self.downstream, self.data_root, self.downstream_dir)

    def identity(self) -> Dict[str, Any]:
        data = None if self.data is None else str(Path(self.data).resolve())
        content = self.data_content or folder_fingerprint(self.data)
        repeats = {} if self.finetune_repeats == 1 else {"finetune_repeats": self.finetune_repeats}
        return {"config": self.config.to_dict(), "data": data, "data_content": content,
                "loader": None if self.data is None else self.loader,
                **downstream_identity(self.downstream_sets()), **repeats}


def check_repeats(count: int) -> None:
    if count < 1:
        raise UserError(f"--finetune-repeats must be at least 1, got {count}")


class DataChanged(UserError):
    """The run folder holds this same run, made on other data under the same paths."""


def check_out_dir(spec: RunSpec) -> None:
    """Refuse an --out that cannot be written or holds something else than this same run.

    A run made on data that changed since (same paths, other files: local_eval.run.fingerprint) is
    refused with DataChanged, so its scores are never reported for the new data.
    """
    out = spec.out
    check_writable_target(out, "--out", is_dir=True)
    try:
        if not out.exists() or not any(p.name != LOCK_FILE for p in out.iterdir()):
            return
    except OSError as error:
        raise UserError(f"cannot read --out {out}: {error.strerror}; pass a folder you can "
                        f"read and write") from None
    previous = read_record(out, RUN_FILE, "local_eval run")
    if isinstance(previous.get("config"), dict):  # a run from before a field existed used its
        for key, value in EvalConfig().to_dict().items():  # default, which kept the old recipe
            previous["config"].setdefault(key, value)
    # Runs from before the store existed decoded PNG files (the PIL path).
    previous.setdefault("loader", None if previous.get("data") is None else "pil")
    identity = spec.identity()
    repeats = {"finetune_repeats": 1}  # absent when 1: say "3 -> 1", not "3 -> None"
    changes = differences(without_content({**repeats, **previous}),
                          without_content({**repeats, **identity}))
    if changes:
        raise UserError(f"--out {out} holds a run with a different config ({'; '.join(changes[:3])}"
                        f"); pass another --out, or remove {out} to start over")
    changed = [key for key in CONTENT_KEYS if content_changed(previous.get(key), identity.get(key))]
    if changed:
        what = " and ".join("--data" if key == "data_content" else "the downstream set's files"
                            for key in changed)
        raise DataChanged(f"{what} changed since the run in --out {out} was made (other files, "
                          f"sizes or modification times under the same path); its results are "
                          f"not this data's: pass another --out, or remove {out} to start over")


def validate(spec: RunSpec, world_size: int, check_data: bool = True) -> None:
    """Every check that needs no training, so a bad input fails before anything is written.

    `check_data` False skips the --data checks (for a dataset `compare` has yet to generate).
    """
    config = spec.config
    check_repeats(spec.finetune_repeats)
    if spec.data is not None and check_data:
        check_image_folder(spec.data, "--data", "--data")
        check_crop_fits(spec.data, config, config.pretrain_classes)
    for downstream_set in spec.downstream_sets():
        downstream_set.validate(spec.download)
    for name in ("pretrain_batch_size", "finetune_batch_size"):
        batch = getattr(config, name)
        if batch % world_size:
            raise UserError(f"{name} {batch} is not divisible by the {world_size} processes; "
                            f"pass a multiple of {world_size}")
    if config.uses_mixup and (config.pretrain_batch_size // world_size) % 2:
        raise UserError(f"Mixup/CutMix need an even batch per process; pretrain_batch_size "
                        f"{config.pretrain_batch_size} over {world_size} process(es) is odd")
    create_model(config, 2)  # unknown model names and unsupported sizes fail here
    check_out_dir(spec)


def _check_steps(split: LabeledSplit, batch: int, world_size: int, what: str, flag: str) -> None:
    if steps_per_epoch(len(split.dataset), batch, world_size) < 1:
        raise UserError(f"{what} has {len(split.dataset)} images, fewer than one batch of {batch}; "
                        f"lower {flag}")


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
    sets, pretrain_data, downstreams = _load_data(spec, runtime)
    # Claim the run folder only once the data is known to fit: a refused run leaves nothing behind.
    # One process at a time (local_eval.run.lock); torchrun's processes share one run.
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


def _load_data(spec: RunSpec, runtime: Runtime):
    """(downstream sets, pre-training split or None, loaded downstreams), every check passed:
    enough images for a batch, and every selected image readable."""
    config = spec.config
    sets = spec.downstream_sets()
    if runtime.is_main and spec.download:
        for downstream_set in sets:
            downstream_set.download()
    barrier(runtime)
    pretrain_data = None
    if spec.data is not None:
        store = pretrain_store(spec, runtime) if spec.loader == "store" else None
        pretrain_data = load_pretrain_data(spec.data, config, store)
    downstreams = [downstream_set.load(config) for downstream_set in sets]
    if pretrain_data is not None:
        _check_steps(pretrain_data, config.pretrain_batch_size, runtime.world_size,
                     "the pre-training subset", "--pretrain-batch-size")
    for downstream_set, downstream in zip(sets, downstreams):
        _check_steps(downstream.train, config.finetune_batch_size, runtime.world_size,
                     f"the fine-tuning set {downstream_set.name}", "--finetune-batch-size")
    # Every process checks (the same files), so all of them refuse together.
    splits = [split for d in downstreams for split in (d.train, d.test)]
    for split in ([] if pretrain_data is None else [pretrain_data]) + splits:
        check_images(split.dataset, runtime.progress)
    return sets, pretrain_data, downstreams


def pretrain_store(spec: RunSpec, runtime: Runtime):
    """The up-to-date image store of --data, built (by rank 0, the others wait) when needed."""
    from ..store.build import open_store
    from ..store.layout import check_source, default_store_dir, read_store

    folder = default_store_dir(spec.data)
    if runtime.is_main:
        open_store(spec.data, folder, max(1, runtime.workers), runtime.progress)
    barrier(runtime)
    store = read_store(folder)
    if store is None or not check_source(store, spec.data):
        raise UserError(f"the store {folder} of --data {spec.data} is not finished or stale; "
                        f"rerun to rebuild it")
    return store


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
