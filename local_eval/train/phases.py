"""The training phases of a run as `PhaseSpec`s: model, data, optimizer, schedule, loss.

Optimizers and schedules come from timm (`create_optimizer_v2`, `create_scheduler_v2`), stepped
once per update. The step schedule follows torch's MultiStepLR as the FractalDB code uses it:
epoch e (0-based) runs at lr x gamma^(milestones <= e).
"""
from __future__ import annotations

import hashlib
from typing import Dict, Optional

import torch
from torch import nn

from ..core.config import EvalConfig
from ..core.recipe import TIMM_OPTIMIZER, milestone_epochs
from ..datasets.common import Downstream, LabeledSplit
from ..store.loader import StoreDataset
from .loop import PhaseSpec, load_backbone, seed_everything
from .models import create_model


def make_scheduler(optimizer: torch.optim.Optimizer, config: EvalConfig, phase: str,
                   updates: int):
    """The timm scheduler of `phase` ("pretrain" or "finetune") with `updates` steps per epoch."""
    from timm.scheduler import create_scheduler_v2

    epochs = getattr(config, f"{phase}_epochs")
    lr = getattr(config, f"{phase}_lr")
    warmup = getattr(config, f"{phase}_warmup_epochs")
    # The warmup start value of the existing cosine recipes: 1e-3 (pre-train), 1e-2 (fine-tune).
    warmup_lr = lr * (1e-3 if phase == "pretrain" else 1e-2)
    if getattr(config, f"{phase}_sched") == "cosine":
        return create_scheduler_v2(
            optimizer, sched="cosine", num_epochs=epochs, warmup_epochs=warmup,
            warmup_lr=warmup_lr, min_lr=getattr(config, f"{phase}_min_lr"),
            step_on_epochs=False, updates_per_epoch=updates)[0]
    # timm's multistep decays once `t + 1` reaches a milestone, one update before the epoch
    # boundary; counting in updates (updates_per_epoch=1) with milestones one update later
    # makes epoch m the first at the decayed rate, as MultiStepLR stepped per epoch does.
    milestones = [m * updates + 1 for m in milestone_epochs(
        getattr(config, f"{phase}_milestones"), epochs)]
    return create_scheduler_v2(
        optimizer, sched="multistep", num_epochs=epochs * updates,
        decay_milestones=milestones, decay_rate=getattr(config, f"{phase}_gamma"),
        warmup_epochs=warmup * updates, warmup_lr=warmup_lr, step_on_epochs=False,
        updates_per_epoch=1)[0]


def finetune_seed(seed: int, repeat: int) -> int:
    """The fine-tuning seed of repeat `repeat` (1-based) of the run with seed `seed`.

    Repeat 1 keeps the run's own seed, so a run with one repeat is today's run exactly; later
    repeats hash (seed, repeat) into [0, 2**31): with seed + repeat, repeat 2 of seed 0 would
    fine-tune exactly as repeat 1 of seed 1, and compare pairs runs by seed.
    """
    if repeat == 1:
        return seed
    digest = hashlib.sha256(f"finetune-repeat {seed} {repeat}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


def pretrain_spec(config: EvalConfig, data: LabeledSplit) -> PhaseSpec:
    from timm.data import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    from timm.optim import create_optimizer_v2

    mixup = None
    criterion: nn.Module = LabelSmoothingCrossEntropy(config.label_smoothing)
    if config.uses_mixup:
        mixup = Mixup(mixup_alpha=config.mixup, cutmix_alpha=config.cutmix, prob=1.0,
                      switch_prob=0.5, label_smoothing=config.label_smoothing,
                      num_classes=data.num_classes)
        criterion = SoftTargetCrossEntropy()
    optimizer_args = {"momentum": config.pretrain_momentum} if config.pretrain_opt == "sgd" else {}
    device_transform = cpu_transform = None
    if isinstance(data.dataset, StoreDataset):  # uint8 batches: augmented on the device
        from ..augment.device import build_device_transform
        from ..augment.host import build_host_transform

        device_transform = build_device_transform(config, "pretrain")
        cpu_transform = build_host_transform(config)
    seed_everything(config.seed, "pretrain", -1, rank=0)  # same initial weights on every rank
    return PhaseSpec(
        name="pretrain", model=create_model(config, data.num_classes), train=data.dataset,
        test=None, epochs=config.pretrain_epochs, batch_size=config.pretrain_batch_size,
        make_optimizer=lambda model: create_optimizer_v2(
            model, opt=TIMM_OPTIMIZER[config.pretrain_opt], lr=config.pretrain_lr,
            weight_decay=config.pretrain_weight_decay, **optimizer_args),
        make_scheduler=lambda optimizer, updates: make_scheduler(optimizer, config, "pretrain",
                                                                 updates),
        criterion=criterion, seed=config.seed, amp=config.amp, lr_field="pretrain_lr",
        lr=config.pretrain_lr, mixup=mixup, device_transform=device_transform,
        cpu_transform=cpu_transform)


def finetune_spec(name: str, config: EvalConfig, downstream: Downstream,
                  backbone: Optional[Dict[str, torch.Tensor]], label: str = "",
                  seed: Optional[int] = None) -> PhaseSpec:
    """Fine-tuning (`name` "finetune", from `backbone`) or from scratch (`backbone` None).

    `seed` (default: the config's) drives the head (or scratch) initialization, the data order
    and the augmentation: a fine-tuning repeat passes its own (`finetune_seed`).
    """
    from timm.loss import LabelSmoothingCrossEntropy
    from timm.optim import create_optimizer_v2

    seed = config.seed if seed is None else seed
    seed_everything(seed, name, -1, rank=0)  # scratch and head init fixed by the seed
    model = create_model(config, downstream.train.num_classes)
    if backbone is not None:
        load_backbone(model, backbone)
    return PhaseSpec(
        name=name, model=model, train=downstream.train.dataset, test=downstream.test.dataset,
        epochs=config.finetune_epochs, batch_size=config.finetune_batch_size,
        make_optimizer=lambda m: create_optimizer_v2(
            m, opt="momentum", lr=config.finetune_lr, momentum=config.finetune_momentum,
            weight_decay=config.finetune_weight_decay),
        make_scheduler=lambda optimizer, updates: make_scheduler(optimizer, config, "finetune",
                                                                 updates),
        criterion=LabelSmoothingCrossEntropy(config.finetune_label_smoothing), seed=seed,
        amp=config.amp, lr_field="finetune_lr", lr=config.finetune_lr, label=label)
