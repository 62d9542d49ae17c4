"""Process layout: one process, or one per device under `torchrun --nproc_per_node N`."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from submission import system

from .world import world_from_env


@dataclass(frozen=True)
class Runtime:
    """Where this process runs; rank 0 writes every file and computes the metric."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    workers: int = 2  # DataLoader worker processes per process
    progress: bool = True  # tqdm bars (rank 0 only)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str) -> torch.device:
    """`submission.system.resolve_device` (auto, cpu, cuda; UserError for cuda without a GPU)
    as a torch.device."""
    return torch.device(system.resolve_device(name))


def init_runtime(device: torch.device, workers: int, progress: bool) -> Runtime:
    """Join the torchrun process group when there is one (NCCL on CUDA, gloo on CPU)."""
    rank, world_size, local_rank = world_from_env()
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Runtime(device, rank, world_size, workers, progress and rank == 0)


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Sum of (K,) float64 `values` over all processes."""
    if runtime.distributed:
        on_device = values.to(runtime.device)
        dist.all_reduce(on_device)
        return on_device.cpu()
    return values


def shutdown(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
