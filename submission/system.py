"""Facts about the machine the generator runs on."""
from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may use (the affinity mask in containers, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
