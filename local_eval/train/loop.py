"""Training loops: one resumable phase (pre-train, fine-tune or scratch) with per-epoch checkpoints.

Every epoch re-seeds all random sources from (seed, phase, epoch, rank), so a run resumed from
its last checkpoint continues exactly as the uninterrupted run would have.
"""
from __future__ import annotations

import contextlib
import io
import math
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from submission.errors import UserError
from submission.fileio import write_atomic

from ..core.distributed import Runtime, all_reduce_sum, barrier
from ..core.worker_lifetime import worker_init

PHASE_SEED_OFFSET = {"pretrain": 1, "finetune": 2, "scratch": 3}


class StopRequested(Exception):
    """The --stop-after-epochs budget is spent; the checkpoints let a rerun continue."""


@dataclass
class EpochBudget:
    """How many more epochs this invocation may run (None: no limit)."""

    remaining: Optional[int] = None

    def take(self) -> None:
        if self.remaining is not None:
            if self.remaining <= 0:
                raise StopRequested()
            self.remaining -= 1


@dataclass
class PhaseSpec:
    """One training phase; `test` is None for pre-training (no evaluation)."""

    name: str
    model: nn.Module
    train: Dataset
    test: Optional[Dataset]
    epochs: int
    batch_size: int  # global
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    make_scheduler: Callable[[torch.optim.Optimizer, int], object]  # (optimizer, steps/epoch)
    criterion: nn.Module
    seed: int  # the run's seed: every epoch re-seeds from (seed, phase, epoch, rank)
    amp: bool  # bfloat16 autocast on CUDA
    lr_field: str  # the config field of this phase's learning rate (named when it diverges)
    lr: float  # its value
    mixup: Optional[Callable] = None  # timm Mixup: (images, labels) -> (images, soft targets)
    label: str = ""  # shown after the name in progress bars, e.g. the downstream set
    # Set when `train` is a StoreDataset (uint8 batches): (images (B, 3, H, W) uint8 on the
    # device, generator) -> (B, 3, S, S) float32 normalized (local_eval.augment.device).
    device_transform: Optional[Callable] = None
    # The same with the same draws, per sample in PIL, for the loader workers on a CPU (None:
    # they run device_transform); local_eval.augment.host.
    cpu_transform: Optional[Callable] = None


@dataclass
class PhaseHistory:
    """Per-epoch records of a phase (index e - 1 is epoch e)."""

    loss: List[float] = field(default_factory=list)
    top1: List[float] = field(default_factory=list)
    seconds: List[float] = field(default_factory=list)

    def to_dict(self) -> Dict[str, List[float]]:
        return {"loss": self.loss, "top1": self.top1, "seconds": self.seconds}


def classifier_prefix(model: nn.Module) -> str:
    return model.pretrained_cfg.get("classifier", "head")


def load_backbone(model: nn.Module, state: Dict[str, torch.Tensor]) -> None:
    """Copy every pre-trained weight except the classifier head into `model`."""
    prefix = classifier_prefix(model)
    backbone = {k: v for k, v in state.items() if not k.startswith(prefix + ".")}
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    stray = [k for k in missing if not k.startswith(prefix + ".")] + list(unexpected)
    if stray:
        raise RuntimeError(f"pre-trained weights do not fit the fine-tuning model: {stray[:5]}")


def seed_everything(seed: int, phase: str, epoch: int, rank: int) -> int:
    """Seed python, numpy and torch for one epoch (-1: model initialization) of one process;
    returns the seed used."""
    value = (seed * 1_000_003 + PHASE_SEED_OFFSET[phase] * 10_007 + (epoch + 1) * 101
             + rank) % 2**31
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
    return value


def _rank_slice(dataset: Dataset, runtime: Runtime) -> Dataset:
    """This process's share of an evaluation set (every world_size-th sample, no padding)."""
    if not runtime.distributed:
        return dataset
    return Subset(dataset, list(range(runtime.rank, len(dataset), runtime.world_size)))


def make_loader(dataset: Dataset, batch: int, runtime: Runtime, sampler=None,
            generator: Optional[torch.Generator] = None, drop_last: bool = False) -> DataLoader:
    """The DataLoader of a phase (also what local_eval.tools.throughput times): the runtime's
    workers, which die with this process (core.worker_lifetime), pinned memory on CUDA."""
    return DataLoader(dataset, batch_size=batch, sampler=sampler, shuffle=False,
                      num_workers=runtime.workers, drop_last=drop_last, generator=generator,
                      pin_memory=runtime.device.type == "cuda",
                      worker_init_fn=worker_init() if runtime.workers > 0 else None)


def _batches(loader: DataLoader) -> Iterator:
    """The loader's batches, with Ctrl-C held back while a batch is being fetched.

    Fetching runs code that must not be cut short by a KeyboardInterrupt: starting the worker
    processes (one that lands in Python's at-fork hooks is printed as "Exception ignored in ...
    _releaseLock" and swallowed, and the run goes on) and receiving a batch's shared memory from
    a worker (cut there, the worker's resource_sharer thread prints an EOFError traceback after
    our one-line message). So a handler that only records the signal stands in while a batch is
    fetched, and the interrupt is raised as soon as the fetch returns; while the caller computes,
    Ctrl-C acts at once as usual. Blocking SIGINT would not do: the kernel may hand it to another
    thread, and Python still runs its handler in this one.
    """
    if loader.num_workers == 0 or threading.current_thread() is not threading.main_thread():
        yield from loader
        return
    received = []

    def record(signum, frame):
        received.append(signum)

    previous = signal.signal(signal.SIGINT, record)
    try:
        batches = iter(loader)
        while True:
            signal.signal(signal.SIGINT, record)
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                signal.signal(signal.SIGINT, previous)
            if received:
                raise KeyboardInterrupt
            yield batch
    finally:
        signal.signal(signal.SIGINT, previous)


def autocast(runtime: Runtime, amp: bool):
    """bfloat16 autocast on CUDA when `amp`, else nothing."""
    if runtime.device.type == "cuda" and amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def steps_per_epoch(num_images: int, batch_size: int, world_size: int) -> int:
    """Optimizer steps per epoch with drop_last batches of batch_size // world_size per process."""
    per_rank_images = -(-num_images // world_size)  # DistributedSampler pads to equal shares
    return per_rank_images // (batch_size // world_size)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch: int, runtime: Runtime,
             amp: bool) -> float:
    """Top-1 accuracy in percent over the whole `dataset` (all processes together)."""
    model.eval()
    counts = torch.zeros(2, dtype=torch.float64)  # (correct, seen)
    for images, labels in _batches(make_loader(_rank_slice(dataset, runtime), batch, runtime)):
        images, labels = images.to(runtime.device), labels.to(runtime.device)
        with autocast(runtime, amp):
            logits = model(images)
        counts[0] += (logits.argmax(dim=1) == labels).sum().item()
        counts[1] += len(labels)
    correct, seen = all_reduce_sum(counts, runtime).tolist()
    return 100.0 * correct / seen


def _save_atomic(state: dict, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def _weights_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _diverged(spec: PhaseSpec, epoch: int, what: str) -> UserError:
    """The error that stops a phase whose loss or weights stopped being finite numbers."""
    flag = "--" + spec.lr_field.replace("_", "-")
    return UserError(f"{spec.name} diverged in epoch {epoch + 1}/{spec.epochs}: {what}, so no "
                     f"score would mean anything; rerun with a lower {flag} (now "
                     f"{spec.lr}) and a new --out")


@dataclass
class _Trainer:
    """What one phase trains with: the model (and its DDP wrapper), optimizer and schedule."""

    model: nn.Module
    trained: nn.Module  # `model`, or its DistributedDataParallel wrapper under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: object
    updates: int  # optimizer steps per epoch
    per_rank_batch: int


def run_phase(spec: PhaseSpec, runtime: Runtime, checkpoint: Path,
              budget: EpochBudget) -> PhaseHistory:
    """Train `spec.model` for its epochs, resuming from `checkpoint` when it holds some.

    Writes the checkpoint (model, optimizer, scheduler, history) after every epoch on rank 0.
    Raises StopRequested when `budget` runs out before the phase is complete.
    """
    model = spec.model.to(runtime.device)
    optimizer = spec.make_optimizer(model)
    updates = steps_per_epoch(len(spec.train), spec.batch_size, runtime.world_size)
    trainer = _Trainer(model, model, optimizer, spec.make_scheduler(optimizer, updates), updates,
                       spec.batch_size // runtime.world_size)
    history, start = _restore(trainer, spec, checkpoint)
    if start >= spec.epochs:
        return history
    if runtime.distributed:
        trainer.trained = nn.parallel.DistributedDataParallel(
            model, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None)
    title = f"{spec.name} {spec.label}".strip()
    store = None  # the store path's (DataLoader, finish): one per phase, its workers persist
    if spec.device_transform is not None:
        from ..store.loader import store_augmentation, store_loader

        augmentation = store_augmentation(runtime.device, spec.device_transform,
                                          spec.cpu_transform)
        store = (store_loader(spec.train, trainer.per_rank_batch, runtime.rank,
                              runtime.world_size, spec.seed, runtime.workers, runtime.device,
                              augmentation.worker), augmentation.finish)
    epochs_bar = tqdm(range(start, spec.epochs), desc=title, unit="epoch",
                      initial=start, total=spec.epochs, disable=not runtime.progress)
    try:
        for epoch in epochs_bar:
            budget.take()
            began = time.perf_counter()
            history.loss.append(_train_epoch(trainer, spec, runtime, epoch, title, store))
            if spec.test is not None:
                history.top1.append(evaluate(model, spec.test, trainer.per_rank_batch * 2, runtime,
                                             spec.amp))
            history.seconds.append(time.perf_counter() - began)
            postfix = {"loss": f"{history.loss[-1]:.3f}"}
            if history.top1:
                postfix["top1"] = f"{history.top1[-1]:.2f}%"
            epochs_bar.set_postfix(postfix)
            if runtime.is_main:
                _save_atomic({"epoch": epoch + 1, "model": model.state_dict(),
                              "optimizer": optimizer.state_dict(),
                              "scheduler": trainer.scheduler.state_dict(),
                              "history": history.to_dict()}, checkpoint)
            barrier(runtime)
    finally:
        # Closed however the loop ends, so an error or "interrupted" line starts a line of its
        # own instead of trailing a progress bar.
        epochs_bar.close()
    return history


def _restore(trainer: _Trainer, spec: PhaseSpec, checkpoint: Path):
    """(history, first epoch to run) from `checkpoint`, loading its states into `trainer`."""
    state = load_checkpoint(checkpoint)
    if state is None:
        return PhaseHistory(), 0
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    history = PhaseHistory(**state["history"])
    # A checkpoint written before divergence was checked for may record NaN losses.
    for epoch, loss in enumerate(history.loss):
        if not math.isfinite(loss):
            raise _diverged(spec, epoch, f"{checkpoint} records a training loss of {loss}")
    return history, state["epoch"]


def _pil_batches(spec: PhaseSpec, runtime: Runtime, trainer: _Trainer, epoch: int,
                 seed: int):
    """(DataLoader, its batches on the device): PIL images transformed in the workers."""
    sampler = DistributedSampler(spec.train, num_replicas=runtime.world_size,
                                 rank=runtime.rank, shuffle=True, seed=spec.seed,
                                 drop_last=False)
    sampler.set_epoch(epoch)
    generator = torch.Generator().manual_seed(seed)  # worker seeds of this epoch
    loader = make_loader(spec.train, trainer.per_rank_batch, runtime, sampler, generator,
                         drop_last=True)
    # images (B, 3, S, S) float32 normalized; labels (B,) int64
    batches = ((images.to(runtime.device), labels.to(runtime.device))
               for images, labels in _batches(loader))
    return loader, batches


def _store_batches(runtime: Runtime, loader: DataLoader, finish: Callable, epoch: int,
                   seed: int):
    """Batches of the store path: copied to the device (next one ahead) and finished there
    (store.loader.StoreAugmentation), each from its own seed drawn from the epoch's."""
    from ..store.loader import DevicePrefetcher

    loader.sampler.set_epoch(epoch, seed)
    for images, labels, batch_seed in DevicePrefetcher(_batches(loader), runtime.device):
        # images (B, 3, H, W) uint8 (or float32 from CPU workers) -> (B, 3, S, S) float32
        # normalized; labels (B,) int64
        yield finish(images, batch_seed), labels


def _train_epoch(trainer: _Trainer, spec: PhaseSpec, runtime: Runtime, epoch: int,
                 title: str, store: Optional[Tuple[DataLoader, Callable]] = None) -> float:
    """One epoch of updates; returns the mean training loss over all processes.

    The PIL path reads each step's loss (stopping at the first non-finite one); the store path
    sums the losses on the device and reads them once per epoch, so that the GPU never waits
    for the host: a diverged loss stops it at the end of that epoch.
    """
    seed = seed_everything(spec.seed, spec.name, epoch, runtime.rank)
    if store is None:
        loader, batch_source = _pil_batches(spec, runtime, trainer, epoch, seed)
    else:
        loader = store[0]
        batch_source = _store_batches(runtime, *store, epoch, seed)
    per_step = store is None
    trainer.model.train()
    optimizer, updates = trainer.optimizer, trainer.updates
    loss_sum = torch.zeros(2, dtype=torch.float64)  # (sum of batch losses, batches)
    device_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)  # store path
    batches = tqdm(batch_source, desc=f"{title} {epoch + 1}/{spec.epochs}",
                   unit="batch", total=len(loader), leave=False,
                   disable=not runtime.progress)
    try:
        for step, (images, labels) in enumerate(batches):
            targets = labels  # or (B, C) float32 soft targets after Mixup/CutMix
            if spec.mixup is not None:
                images, targets = spec.mixup(images, labels)
            with autocast(runtime, spec.amp):
                loss = spec.criterion(trainer.trained(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            trainer.scheduler.step_update(epoch * updates + step + 1)
            if not per_step:
                device_sum += loss.detach().double()
                loss_sum[1] += 1.0
                continue
            value = loss.item()
            # Alone, stop at once; under torchrun wait for the epoch's summed loss below, which
            # every process sees alike (one process stopping alone would hang the others).
            if not runtime.distributed and not math.isfinite(value):
                raise _diverged(spec, epoch, f"the training loss became {value} at "
                                f"step {step + 1}/{updates}")
            loss_sum += torch.tensor([value, 1.0], dtype=torch.float64)
            batches.set_postfix(loss=f"{value:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    finally:
        batches.close()
    if not per_step:
        loss_sum[0] = device_sum.item()  # the epoch's one host sync
    total, count = all_reduce_sum(loss_sum, runtime).tolist()
    mean_loss = total / max(count, 1.0)
    if not math.isfinite(mean_loss):
        raise _diverged(spec, epoch, f"the mean training loss became {mean_loss}")
    # The last update can overflow the weights with a finite loss; DDP keeps them equal on
    # every process, so all stop together. Checked before they are evaluated or saved.
    if not _weights_finite(trainer.model):
        raise _diverged(spec, epoch, "the model weights became NaN or inf")
    return mean_loss
