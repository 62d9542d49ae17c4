"""`compare`: datasets x evaluator presets x seeds, each one ordinary local_eval run.

COMPARE_DIR/plan.json records what the comparison is; COMPARE_DIR/runs/<dataset>/<preset>/
seed<k>/ holds each run (resumable like any run folder); COMPARE_DIR/cache/ holds generated
baselines (noise). A run whose data changed under the same path since it was made (its
fingerprint, local_eval.datasets.fingerprint) is moved to COMPARE_DIR/stale-runs/ and redone.
Every dataset uses the same seeds, so seed k of two datasets shares its model initialization
and data order: the differences are paired. compare.json, compare.md and
compare.png are rewritten after every finished run.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from submission.errors import UserError
from submission.fileio import check_writable_target, make_dirs
from submission.paths import check_output_outside_inputs

from ..core.config import EvalConfig
from ..core.distributed import Runtime, barrier
from ..core.limits import MAX_EPOCHS, MAX_SCORE
from ..core.lock import RunBusy, run_folder_lock
from ..core.outputs import write_json
from ..datasets.common import check_image_folder
from ..datasets.downstream import downstream_identity
from ..run.record import differences, read_record, without_content
from ..run.runner import run
from ..run.space import check_comparison_space
from ..run.spec import DataChanged, RunSpec, check_out_dir, validate
from ..train.loop import EpochBudget
from .datasets import DatasetSpec, FolderDataset, ScratchDataset
from .units import prepare_dataset, unit_records

PLAN_FILE = "plan.json"
RunKey = Tuple[str, str, int]  # (dataset, preset, seed)


@dataclass(frozen=True)
class ComparePlan:
    """What a comparison runs; `identity()` must match for a rerun to resume."""

    out: Path
    datasets: Tuple[DatasetSpec, ...]
    configs: Dict[str, EvalConfig]  # preset -> config (the seed is set per run)
    downstream: Dict[str, str]  # preset -> --downstream list
    seeds: Tuple[int, ...]
    baseline: str
    data_root: Optional[Path] = None  # the named downstream sets
    downstream_dir: Optional[Path] = None
    download: bool = False
    calibrate: Tuple[str, ...] = ()  # 4th-place tables to rank-correlate with (not part of the plan)
    target_diff: Optional[float] = None  # the difference "seeds for X" is about (report only)
    # Each run fine-tunes K times and scores the mean (RunSpec.finetune_repeats); a run folder
    # made with another K is refused, not reused (its score is another estimate).
    finetune_repeats: int = 1
    loader: str = "store"  # how pre-training reads the data (RunSpec.loader)

    def __post_init__(self) -> None:
        """The report's settings, checked however the plan is made (the command line, or a
        --report view of a folder's plan with another baseline or difference)."""
        names = [d.name for d in self.datasets]
        if self.baseline not in names:
            raise UserError(f"--baseline {self.baseline} is not one of the datasets {', '.join(names)}")
        if self.target_diff is not None and not (math.isfinite(self.target_diff) and self.target_diff > 0):
            raise UserError(f"--target-diff must be a positive score difference, got {self.target_diff:g}")
        if self.target_diff is not None and self.target_diff > MAX_SCORE:
            raise UserError(f"--target-diff must be at most {MAX_SCORE} (the largest score: 100 per "
                            f"scored epoch of at most {MAX_EPOCHS} epochs), got {self.target_diff:g}")

    @property
    def presets(self) -> Tuple[str, ...]:
        return tuple(self.configs)

    def keys(self) -> List[RunKey]:
        """Every run, seed by seed, so that paired results for all datasets come early."""
        return [(d.name, p, s) for p in self.presets for s in self.seeds for d in self.datasets]

    @property
    def cache(self) -> Path:
        return self.out / "cache"

    def data_path(self, name: str) -> Optional[Path]:
        """Where dataset `name` is (or will be, once materialized); None: no pre-training."""
        return next(d for d in self.datasets if d.name == name).path(self.cache)

    def run_dir(self, key: RunKey) -> Path:
        dataset, preset, seed = key
        return self.out / "runs" / dataset / preset / f"seed{seed}"

    def spec(self, key: RunKey, data: Optional[Path]) -> RunSpec:
        dataset, preset, seed = key
        return RunSpec(config=self.configs[preset].replace(seed=seed), data=data,
                       out=self.run_dir(key), downstream=self.downstream[preset],
                       data_root=self.data_root, downstream_dir=self.downstream_dir,
                       download=self.download, preset=preset,
                       data_content=self.dataset(dataset).content(),
                       finetune_repeats=self.finetune_repeats, loader=self.loader)

    def dataset(self, name: str) -> DatasetSpec:
        return next(d for d in self.datasets if d.name == name)

    def identity(self) -> Dict[str, Any]:
        presets = {}
        for preset, config in self.configs.items():
            probe = self.spec((self.datasets[0].name, preset, self.seeds[0]), None)
            recipe = config.to_dict()
            recipe.pop("seed")
            presets[preset] = {"config": recipe,
                               **downstream_identity(probe.downstream_sets())}
        repeats = {} if self.finetune_repeats == 1 else {"finetune_repeats": self.finetune_repeats}
        return {"datasets": [d.identity() for d in self.datasets], "presets": presets,
                "seeds": list(self.seeds), "loader": self.loader, **repeats}


def plan_record(plan: ComparePlan) -> Dict[str, Any]:
    """plan.json: the plan's identity and its numbered work units (local_eval.compare.units)."""
    identity = plan.identity()
    return {**identity, "units": unit_records(plan, identity)}


def write_plan_record(plan: ComparePlan) -> None:
    """Write plan.json, rewritten when only what the data holds changed (check_plan refused
    any other difference)."""
    record = plan_record(plan)
    if not (plan.out / PLAN_FILE).exists() or read_record(
            plan.out, PLAN_FILE, "comparison") != record:
        write_json(record, plan.out / PLAN_FILE)


def _names(items: List[str]) -> str:
    return ", ".join(map(str, items)) or "(none)"


def plan_differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """What differs between two plan identities, one short phrase per difference; what the data
    holds is left out (its runs are redone when it changed: `stale_runs`)."""
    old, new = without_content(old), without_content(new)
    found = []
    old_sets, new_sets = old.get("datasets", []), new.get("datasets", [])
    old_names, new_names = [d.get("name") for d in old_sets], [d.get("name") for d in new_sets]
    if old_names != new_names:
        found.append(f"datasets {_names(old_names)} -> {_names(new_names)}")
    else:
        found += [f"dataset {b['name']}: {change}" for a, b in zip(old_sets, new_sets)
                  for change in differences(a, b)]
    old_presets, new_presets = old.get("presets", {}), new.get("presets", {})
    if list(old_presets) != list(new_presets):
        found.append(f"presets {_names(list(old_presets))} -> {_names(list(new_presets))}")
    else:
        found += [f"preset {name}: {change}" for name in new_presets
                  for change in differences(old_presets[name], new_presets[name])]
    # A plan from before the store existed read PNG files (the PIL path).
    if old.get("loader", "pil") != new.get("loader", "pil"):
        found.append(f"--loader {old.get('loader', 'pil')} -> {new.get('loader', 'pil')}")
    if old.get("seeds") != new.get("seeds"):
        found.append(f"seeds {_names(old.get('seeds', []))} -> {_names(new.get('seeds', []))}")
    if old.get("finetune_repeats", 1) != new.get("finetune_repeats", 1):
        found.append(f"--finetune-repeats {old.get('finetune_repeats', 1)} -> "
                     f"{new.get('finetune_repeats', 1)}")
    return found


def input_folders(plan: ComparePlan) -> Dict[str, Path]:
    """What a comparison reads, by the label its messages use: each existing dataset folder and
    each preset's downstream sets (the datasets it makes itself live in OUT/cache)."""
    inputs: Dict[str, Path] = {f"dataset {d.name}": d.folder for d in plan.datasets
                               if isinstance(d, FolderDataset)}
    for preset in plan.presets:
        probe = plan.spec((plan.datasets[0].name, preset, plan.seeds[0]), None)
        for downstream_set in probe.downstream_sets():
            inputs[f"the downstream set {downstream_set.name}"] = downstream_set.files_folder()
    return inputs


def check_plan(plan: ComparePlan, world_size: int) -> None:
    """Every check before anything is written: OUT outside every input, the folder's plan, each
    run's inputs."""
    check_writable_target(plan.out, "--out", is_dir=True)
    check_output_outside_inputs(plan.out, input_folders(plan), "--out")
    if plan.out.is_dir() and any(plan.out.iterdir()):
        previous = read_record(plan.out, PLAN_FILE, "comparison")
        changes = plan_differences(previous, plan.identity())
        if changes:
            raise UserError(f"--out {plan.out} holds a comparison made by a different plan "
                            f"({'; '.join(changes[:3])}); pass another --out, or rerun with "
                            f"the same datasets, presets, seeds, downstream sets and overrides")
    for dataset in plan.datasets:
        if isinstance(dataset, FolderDataset):
            available = check_image_folder(dataset.folder, f"dataset {dataset.name}",
                                           f"{dataset.name}=PATH")
            for preset, config in plan.configs.items():
                if config.pretrain_classes is not None and config.pretrain_classes > available:
                    raise UserError(f"dataset {dataset.name} has {available} classes but preset "
                                    f"{preset} takes {config.pretrain_classes}; pass "
                                    f"--pretrain-classes {available} or generate more")
    checkpoints: Dict[Tuple[str, str], int] = {}  # (dataset, preset) -> bytes per run
    for key in plan.keys():
        dataset = plan.dataset(key[0])
        spec = plan.spec(key, plan.data_path(key[0]))
        try:
            if key[2] == plan.seeds[0]:  # the inputs are the same for every seed
                checkpoints[key[:2]] = validate(spec, world_size, check_data=not dataset.cached)
            else:
                check_out_dir(spec)
        except DataChanged:  # the run folder's last check: redone by run_compare
            pass
    check_comparison_space(plan.out, len(plan.keys()),
                           sum(checkpoints.get(key[:2], 0) for key in plan.keys()))


def stale_runs(plan: ComparePlan) -> List[RunKey]:
    """The runs made on data that changed since under the same path (same plan otherwise)."""
    stale = []
    for key in plan.keys():
        if (plan.run_dir(key) / "run.json").is_file():
            try:
                check_out_dir(plan.spec(key, plan.data_path(key[0])))
            except DataChanged:
                stale.append(key)
    return stale


def set_aside(plan: ComparePlan, stale: List[RunKey], log) -> None:
    """Move the stale runs out of runs/ (kept, not deleted) so that they are redone."""
    if not stale:
        return
    aside = plan.out / "stale-runs" / time.strftime("%Y%m%d-%H%M%S")
    while aside.exists():
        aside = aside.with_name(aside.name + "+")
    for key in stale:
        target = aside / key[0] / key[1] / f"seed{key[2]}"
        make_dirs(target.parent, "--out")
        plan.run_dir(key).rename(target)
    names = ", ".join(dict.fromkeys(key[0] for key in stale))
    log(f"the data of {names} changed since {len(stale)} of its runs were made (other files, "
        f"sizes or modification times under the same path): they are redone; the old ones are "
        f"in {aside}")


class Progress:
    """Runs done and an ETA over the rest, from the durations of finished runs per preset.

    A run without pre-training (scratch) is a fine-tuning phase alone, so until one has finished
    its duration is estimated by the fine-tuning part of the pre-trained runs of its preset: the
    ETA is known after the first run of each preset instead of after the first seed round.
    """

    def __init__(self, plan: ComparePlan) -> None:
        self.plan, self.total = plan, len(plan.keys())
        self.seconds: Dict[Tuple[str, bool], List[float]] = {}  # (preset, pre-trained) -> runs
        self.finetune_seconds: Dict[str, List[float]] = {}  # preset -> fine-tuning parts
        self.done: set = set()

    def _kind(self, key: RunKey) -> Tuple[str, bool]:
        return key[1], not isinstance(self.plan.dataset(key[0]), ScratchDataset)

    def record(self, key: RunKey, report: Dict[str, Any]) -> None:
        """Count run `key` done, timed by its report's wall_seconds (every invocation summed)."""
        self.done.add(key)
        wall = report["wall_seconds"]
        self.seconds.setdefault(self._kind(key), []).append(
            sum(v for k, v in wall.items() if k != "this_invocation" and v))
        if wall.get("finetune"):
            self.finetune_seconds.setdefault(key[1], []).append(wall["finetune"])

    def _estimate(self, key: RunKey) -> Optional[float]:
        preset, pretrained = self._kind(key)
        known = self.seconds.get((preset, pretrained))
        if not known and not pretrained:
            known = self.finetune_seconds.get(preset)
        return sum(known) / len(known) if known else None

    def eta(self) -> Optional[float]:
        """Seconds left, or None while a preset still to run has no finished run to go by."""
        estimates = [self._estimate(k) for k in self.plan.keys() if k not in self.done]
        return None if None in estimates else sum(estimates)  # type: ignore[arg-type]

    def line(self) -> str:
        eta = self.eta()
        if eta is None:
            waiting = next(k[1] for k in self.plan.keys()
                           if k not in self.done and self._estimate(k) is None)
            text = f"unknown until the first run of preset {waiting} finishes"
        else:
            text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 86400 else \
                f"{eta / 3600:.1f} h"
        return f"{len(self.done)}/{self.total} runs done; ETA {text}"


def _finished_report(plan: ComparePlan, key: RunKey) -> Optional[Dict[str, Any]]:
    """The report.json of a finished run of `plan`, or None while the run is unfinished."""
    path = plan.run_dir(key) / "report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_compare(plan: ComparePlan, runtime: Runtime, stop_after_epochs: Optional[int] = None,
                log=print) -> Optional[Dict[str, Any]]:
    """Run (or resume) every run of `plan`; returns compare.json's content, None if stopped."""
    from .report import write_outputs

    stale: List[RunKey] = []
    if runtime.is_main:
        make_dirs(plan.out, "--out")
        stale = stale_runs(plan)
        set_aside(plan, stale, log)
        write_plan_record(plan)
        for dataset in plan.datasets:
            prepare_dataset(plan, dataset.name, log)
    barrier(runtime)
    data = {d.name: plan.data_path(d.name) for d in plan.datasets}
    progress, reports = Progress(plan), {}
    keys = plan.keys()
    for key in keys:
        finished = _finished_report(plan, key)
        if finished is not None:
            reports[key] = finished
            progress.record(key, finished)
    if runtime.is_main:
        log(f"compare: {len(keys)} runs ({len(plan.datasets)} datasets x {len(plan.presets)} "
            f"presets x {len(plan.seeds)} seeds), {len(reports)} already finished")
        if stale:  # compare.json must not keep the stale runs' scores meanwhile
            write_outputs(plan, reports)
    budget = EpochBudget(stop_after_epochs)
    waiting: List[RunKey] = []  # runs another process is training (local_eval.core.lock)
    queue = [(index, key) for index, key in enumerate(keys, 1) if key not in reports]
    while queue:
        index, key = queue.pop(0)
        dataset, preset, seed = key
        label = f"[{index}/{len(keys)}] {dataset} / {preset} / seed {seed}"
        if key in waiting:  # everything else is done: wait for its owner, then take its result
            log(f"{label}: waiting for the other process training it")
            with run_folder_lock(plan.run_dir(key), wait=True):
                pass
            finished = _finished_report(plan, key)
            if finished is not None:
                reports[key] = finished
                progress.record(key, finished)
                write_outputs(plan, reports)
                continue
        if runtime.is_main:
            log(f"{label} ...")
        try:
            report = run(plan.spec(key, data[dataset]), runtime, budget=budget)
        except RunBusy:  # only without torchrun: its processes share every run
            log(f"{label}: another process is training it; its result is read when it is done")
            waiting.append(key)
            queue.append((index, key))
            continue
        if report is None:
            if runtime.is_main:
                write_outputs(plan, reports)
            return None
        reports[key] = report
        progress.record(key, report)
        if runtime.is_main:
            log(f"{label}: score {report['score']:.2f}; {progress.line()}")
            write_outputs(plan, reports)
    summary = write_outputs(plan, reports) if runtime.is_main else None
    barrier(runtime)
    return summary
