"""Free disk space for a run's checkpoints, checked before anything is written: a run keeps one
checkpoint per phase, and one per fine-tuning repeat of each downstream set (twice with
--compare-scratch), so many repeats of a large model can fill the disk mid-run."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from submission.errors import UserError

# A checkpoint holds the weights and the optimizer's state, float32: AdamW keeps two moments per
# weight, SGD one; the scheduler and epoch counter are small. MARGIN covers pickling and heads.
CHECKPOINT_COPIES = 3
MARGIN_BYTES = 1 << 20


def checkpoint_bytes(parameters: int) -> int:
    """The size a checkpoint of a model with `parameters` weights takes at most."""
    return CHECKPOINT_COPIES * 4 * parameters + MARGIN_BYTES


def checkpoint_count(pretrains: bool, sets: int, repeats: int, scratch: bool) -> int:
    return int(pretrains) + sets * repeats * (2 if scratch else 1)


def existing_bytes(out: Path, pattern: str = "*.pt") -> int:
    """What the folder's checkpoints already take (a rerun rewrites them in place)."""
    try:
        return sum(p.stat().st_size for p in Path(out).glob(pattern) if p.is_file())
    except OSError:
        return 0


def free_bytes(out: Path) -> int:
    """Free space on the disk that holds (or will hold) `out`."""
    folder = Path(os.path.abspath(out))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_space(out: Path, count: int, each: int, what: str = "--out") -> None:
    """Refuse when the disk holding `out` has less free space than `count` checkpoints of `each`
    bytes need (one more for the temporary file a checkpoint is written to first)."""
    needed = (count + 1) * each - existing_bytes(out)
    free = free_bytes(out)
    if needed > free:
        raise UserError(f"{what} {out}: {count} checkpoint(s) of up to {each / 1e6:,.0f} MB need "
                        f"{needed / 1e9:,.2f} GB, but its disk has {free / 1e9:,.2f} GB free; free "
                        f"some space, choose another --out or lower --finetune-repeats")


def check_comparison_space(out: Path, runs: int, needed: int) -> None:
    """The same for all the runs of a comparison: `needed` bytes of checkpoints in all."""
    needed -= existing_bytes(out, "runs/**/*.pt")
    free = free_bytes(out)
    if needed > free:
        raise UserError(f"--out {out}: the checkpoints of its {runs} runs need up to "
                        f"{needed / 1e9:,.2f} GB, but its disk has {free / 1e9:,.2f} GB free; free "
                        f"some space, choose another --out or lower --seeds or --finetune-repeats")
