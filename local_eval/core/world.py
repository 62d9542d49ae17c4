"""Which process of a torchrun launch this is, read from its environment (torch-free, so that the
command lines can word their Ctrl-C line without importing torch)."""
from __future__ import annotations

import os


def world_from_env() -> tuple:
    """(rank, world_size, local_rank) as torchrun sets them; (0, 1, 0) otherwise."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))
