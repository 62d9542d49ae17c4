"""Facts about the machine the generator runs on: usable cores and the torch device."""
from __future__ import annotations

import os

from .config import DEVICES
from .errors import UserError


def available_cores() -> int:
    """Cores this process may use (the affinity mask in containers, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cuda' or 'cuda:N' must exist (else `UserError`)."""
    import torch  # here, not at import: the config layer stays free of torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"CUDA was asked for (--device {name}) but torch sees no CUDA device; use --device cpu or auto")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UserError(f"--device {name}: no such CUDA device (this machine has {torch.cuda.device_count()}: "
                            f"cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
        return name
    raise UserError(f"unknown device {name!r}; choose one of {list(DEVICES)} (or cuda:N)")
