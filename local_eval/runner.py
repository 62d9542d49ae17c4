"""One local evaluation: pre-train, fine-tune (and from scratch), score, write RUN_DIR.

RUN_DIR holds `run.json` (what the run is: config + data), one checkpoint per phase
(`pretrain.pt`, `finetune.pt`, `scratch.pt`, rewritten after every epoch), `report.json` and
`curves.png`. Rerunning with the same RUN_DIR resumes; a different run there is refused.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

from submission.errors import UserError
from submission.fileio import check_writable_target, make_dirs

from .config import EvalConfig
from .data import (Downstream, LabeledSplit, check_image_folder, check_images, cifar_dir,
                   download_cifar100, load_cifar100, load_downstream_dir, load_pretrain_data)
from .distributed import Runtime, barrier
from .metric import cumulative_error, scored_epochs
from .report import plot_curves, versions, write_json
from .train import (EpochBudget, PhaseSpec, build_model, load_backbone, load_checkpoint,
                    StopRequested, run_phase, seed_everything, steps_per_epoch)

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunSpec:
    """What to evaluate; `identity()` is what must match for a rerun to resume."""

    config: EvalConfig
    data: Path
    out: Path
    downstream: str = "cifar100"  # "cifar100" or "folder"
    cifar_root: Optional[Path] = None
    downstream_dir: Optional[Path] = None
    download: bool = False
    compare_scratch: bool = False
    preset: str = "custom"  # informative only: the config says what runs

    def identity(self) -> Dict[str, Any]:
        source = self.downstream_dir if self.downstream == "folder" else self.cifar_root
        return {"config": self.config.to_dict(), "data": str(self.data.resolve()),
                "downstream": self.downstream, "downstream_path": str(Path(source).resolve())}


def _differences(old: Dict[str, Any], new: Dict[str, Any], prefix: str = "") -> list:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, prefix + key + ".")
        elif a != b:
            found.append(f"{prefix}{key} {a!r} -> {b!r}")
    return found


def check_out_dir(spec: RunSpec) -> None:
    """Refuse an --out that cannot be written or holds something else than this same run."""
    out = spec.out
    check_writable_target(out, "--out", is_dir=True)
    try:
        if not out.exists() or not any(out.iterdir()):
            return
    except OSError as error:
        raise UserError(f"cannot read --out {out}: {error.strerror}; pass a folder you can "
                        f"read and write") from None
    run_file = out / RUN_FILE
    if not run_file.is_file():
        raise UserError(f"--out {out} is not empty and holds no local_eval run ({RUN_FILE}); "
                        f"pass a new or empty folder")
    try:
        previous = json.loads(run_file.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{run_file} is damaged ({error}); remove {out} to start over") from error
    changes = _differences(previous, spec.identity())
    if changes:
        raise UserError(f"--out {out} holds a run with a different config ({'; '.join(changes[:3])}"
                        f"); pass another --out, or remove {out} to start over")


def validate(spec: RunSpec, world_size: int) -> None:
    """Every check that needs no training, so a bad input fails before anything is written."""
    config = spec.config
    check_image_folder(spec.data, "--data", "--data")
    if spec.downstream == "cifar100":
        if spec.cifar_root is None:
            raise UserError("--downstream cifar100 needs --cifar-root PATH (add --download to "
                            "fetch CIFAR-100 there), or use --downstream-dir DIR")
        if not spec.download:
            cifar_dir(spec.cifar_root)
    elif spec.downstream == "folder":
        for split in ("train", "val"):
            check_image_folder(spec.downstream_dir / split, "--downstream-dir split",
                               "--downstream-dir")
    else:
        raise UserError(f"unknown downstream {spec.downstream!r}; known: cifar100, folder")
    for name in ("pretrain_batch_size", "finetune_batch_size"):
        batch = getattr(config, name)
        if batch % world_size:
            raise UserError(f"{name} {batch} is not divisible by the {world_size} processes; "
                            f"pass a multiple of {world_size}")
    if config.uses_mixup and (config.pretrain_batch_size // world_size) % 2:
        raise UserError(f"Mixup/CutMix need an even batch per process; pretrain_batch_size "
                        f"{config.pretrain_batch_size} over {world_size} process(es) is odd")
    build_model(config, 2)  # unknown model names and unsupported sizes fail here
    check_out_dir(spec)


def _check_steps(split: LabeledSplit, batch: int, world_size: int, what: str, flag: str) -> None:
    if steps_per_epoch(len(split.dataset), batch, world_size) < 1:
        raise UserError(f"{what} has {len(split.dataset)} images, fewer than one batch of {batch}; "
                        f"lower {flag}")


def _pretrain_spec(config: EvalConfig, data: LabeledSplit) -> PhaseSpec:
    from timm.data import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    mixup = None
    criterion: nn.Module = LabelSmoothingCrossEntropy(config.label_smoothing)
    if config.uses_mixup:
        mixup = Mixup(mixup_alpha=config.mixup, cutmix_alpha=config.cutmix, prob=1.0,
                      switch_prob=0.5, label_smoothing=config.label_smoothing,
                      num_classes=data.num_classes)
        criterion = SoftTargetCrossEntropy()
    seed_everything(config.seed, "pretrain", -1, rank=0)  # same initial weights on every rank
    return PhaseSpec(
        name="pretrain", model=build_model(config, data.num_classes), train=data.dataset,
        test=None, epochs=config.pretrain_epochs, batch_size=config.pretrain_batch_size,
        make_optimizer=lambda model: create_optimizer_v2(
            model, opt="adamw", lr=config.pretrain_lr, weight_decay=config.pretrain_weight_decay),
        make_scheduler=lambda optimizer, updates: create_scheduler_v2(
            optimizer, sched="cosine", num_epochs=config.pretrain_epochs,
            warmup_epochs=config.pretrain_warmup_epochs, warmup_lr=config.pretrain_lr * 1e-3,
            min_lr=config.pretrain_min_lr, step_on_epochs=False, updates_per_epoch=updates)[0],
        criterion=criterion, mixup=mixup)


def _finetune_spec(name: str, config: EvalConfig, downstream: Downstream,
                   backbone: Optional[Dict[str, torch.Tensor]]) -> PhaseSpec:
    from timm.loss import LabelSmoothingCrossEntropy
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    seed_everything(config.seed, name, -1, rank=0)  # scratch and head init fixed by the seed
    model = build_model(config, downstream.train.num_classes)
    if backbone is not None:
        load_backbone(model, backbone)
    return PhaseSpec(
        name=name, model=model, train=downstream.train.dataset, test=downstream.test.dataset,
        epochs=config.finetune_epochs, batch_size=config.finetune_batch_size,
        make_optimizer=lambda m: create_optimizer_v2(
            m, opt="momentum", lr=config.finetune_lr, momentum=config.finetune_momentum,
            weight_decay=config.finetune_weight_decay),
        make_scheduler=lambda optimizer, updates: create_scheduler_v2(
            optimizer, sched="cosine", num_epochs=config.finetune_epochs,
            warmup_epochs=config.finetune_warmup_epochs, warmup_lr=config.finetune_lr * 1e-2,
            min_lr=config.finetune_min_lr, step_on_epochs=False, updates_per_epoch=updates)[0],
        criterion=LabelSmoothingCrossEntropy(config.finetune_label_smoothing))


def run(spec: RunSpec, runtime: Runtime, stop_after_epochs: Optional[int] = None
        ) -> Optional[Dict[str, Any]]:
    """Run (or resume) the evaluation; returns the report, or None when stopped early."""
    began = time.perf_counter()
    config, out = spec.config, spec.out
    if runtime.is_main and spec.downstream == "cifar100" and spec.download:
        download_cifar100(spec.cifar_root)
    barrier(runtime)
    pretrain_data = load_pretrain_data(spec.data, config)
    downstream = (load_cifar100(spec.cifar_root, config) if spec.downstream == "cifar100"
                  else load_downstream_dir(spec.downstream_dir, config))
    _check_steps(pretrain_data, config.pretrain_batch_size, runtime.world_size,
                 "the pre-training subset", "--pretrain-batch-size")
    _check_steps(downstream.train, config.finetune_batch_size, runtime.world_size,
                 "the fine-tuning set", "--finetune-batch-size")
    # Every process checks (the same files), so all of them refuse together.
    for split in (pretrain_data, downstream.train, downstream.test):
        check_images(split.dataset, runtime.progress)
    # Claim the run folder only once the data is known to fit: a refused run leaves nothing behind.
    if runtime.is_main:
        make_dirs(out, "--out")
        if not (out / RUN_FILE).exists():
            write_json(spec.identity(), out / RUN_FILE)
    barrier(runtime)
    budget = EpochBudget(stop_after_epochs)
    try:
        pretrain = run_phase(_pretrain_spec(config, pretrain_data), config, runtime,
                             out / "pretrain.pt", budget)
        backbone = load_checkpoint(out / "pretrain.pt")["model"]
        finetune = run_phase(_finetune_spec("finetune", config, downstream, backbone), config,
                             runtime, out / "finetune.pt", budget)
        scratch = None
        if spec.compare_scratch:
            scratch = run_phase(_finetune_spec("scratch", config, downstream, None), config,
                                runtime, out / "scratch.pt", budget)
    except StopRequested:
        return None
    score = cumulative_error(finetune.top1)
    first, last = scored_epochs(len(finetune.top1))
    report: Dict[str, Any] = {
        "score": score,
        "scratch_score": None if scratch is None else cumulative_error(scratch.top1),
        "score_gain_over_scratch": None if scratch is None
        else cumulative_error(scratch.top1) - score,
        "scored_epochs": [first, last],
        "metric": "sum over fine-tuning epochs ceil(E/2)..E of (100 - top1 %); lower is better",
        "preset": spec.preset,
        "config": config.to_dict(),
        "seed": config.seed,
        "data": {"pretrain": str(spec.data.resolve()), "pretrain_classes": pretrain_data.num_classes,
                 "pretrain_images": len(pretrain_data.dataset), "downstream": downstream.description,
                 "downstream_classes": downstream.train.num_classes,
                 "downstream_train_images": len(downstream.train.dataset),
                 "downstream_test_images": len(downstream.test.dataset)},
        "pretrain": {"loss": pretrain.loss, "epoch_seconds": pretrain.seconds},
        "finetune": {"top1": finetune.top1, "loss": finetune.loss,
                     "epoch_seconds": finetune.seconds},
        "scratch": None if scratch is None else {"top1": scratch.top1, "loss": scratch.loss,
                                                 "epoch_seconds": scratch.seconds},
        "wall_seconds": {"pretrain": sum(pretrain.seconds), "finetune": sum(finetune.seconds),
                         "scratch": None if scratch is None else sum(scratch.seconds),
                         "this_invocation": None},
        "runtime": {"device": runtime.device.type, "world_size": runtime.world_size,
                    "workers_per_process": runtime.workers,
                    "torch_threads": torch.get_num_threads()},
        "versions": versions(),
    }
    if runtime.is_main:
        report["wall_seconds"]["this_invocation"] = time.perf_counter() - began
        plot_curves(out / "curves.png", finetune.top1, None if scratch is None else scratch.top1,
                    score, report["scratch_score"],
                    f"{Path(spec.data).name} ({spec.preset}): {config.model} at "
                    f"{config.img_size} px, {downstream.train.num_classes}-class downstream")
        write_json(report, out / "report.json")
    barrier(runtime)
    return report
