"""OUT/.generate-state/: the bookkeeping of an unfinished run.

It holds `config.json` (what must match for a rerun to resume), the family's prepared files
(the fractal family's `bank.npz`, built once), `done/<class>` markers (written after a class's last image) and one lock file per
running shard. The folder is removed once every class of the config is done, so a finished tree
holds nothing but class folders of images.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from .config import GenerationConfig
from .errors import UserError
from .fileio import loads_json, make_dirs, os_error, write_atomic
from .layout import class_dirname, class_is_complete
from .plan import RunPlan

try:
    import fcntl
except ImportError:  # not on POSIX: runs are not locked against each other
    fcntl = None  # type: ignore[assignment]


def state_record(config: GenerationConfig) -> Dict:
    """What must match for a run to resume another: the content fields, not speed or sharding."""
    record = config.content_dict()
    record.pop("shard_index")
    record.pop("shard_count")
    return record


def read_state_record(state_dir: Path) -> Optional[Dict]:
    try:
        return loads_json((state_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None


def create_state(plan: RunPlan) -> None:
    """The state folder with its done/ folder and config record (kept when already there)."""
    make_dirs(plan.done_dir)
    record_file = plan.state_dir / "config.json"
    if not record_file.exists():
        write_atomic(record_file, json.dumps(state_record(plan.config), indent=2, sort_keys=True).encode())


def lock_path(plan: RunPlan) -> Path:
    """This shard's lock file (each shard has its own: shards may write one folder at the same time)."""
    return plan.state_dir / f"lock-{plan.config.shard_index}-of-{plan.config.shard_count}"


@contextlib.contextmanager
def run_lock(plan: RunPlan) -> Iterator[None]:
    """Hold this shard's lock file for the run: a second run of the same shard on the folder is
    refused (other shards may write the same folder at the same time)."""
    if fcntl is None:
        yield
        return
    config = plan.config
    path = lock_path(plan)
    try:
        handle = open(path, "a+")
    except OSError as exc:
        raise os_error(exc, path) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"another generate run is writing {plan.output_dir} (shard {config.shard_index}/"
                            f"{config.shard_count}); wait for it to finish or stop it, then rerun") from None
        yield


def refuse_if_running(state_dir: Path, out: Path) -> None:
    """Refuse to clear `out` while any generate run holds one of its lock files."""
    if fcntl is None or not state_dir.is_dir():
        return
    for path in state_dir.glob("lock-*"):
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise UserError(f"refusing to --overwrite {out}: a generate run is writing it; "
                                "stop that run first") from None
            fcntl.flock(handle, fcntl.LOCK_UN)


def classes_to_do(plan: RunPlan) -> List[int]:
    """This shard's classes without a trustworthy done marker. A marked class must hold every file,
    none empty (a marker can outlive its files, e.g. after an interrupted copy of shard folders);
    otherwise its marker is dropped and the class is redone."""
    config, todo = plan.config, []
    for category in config.class_ids():
        marker = plan.done_dir / class_dirname(config, category)
        if marker.exists() and class_is_complete(plan.output_dir, config, category):
            continue
        if marker.exists():
            print(f"class {marker.name} was marked done but is missing images; writing it again")
            marker.unlink()
        todo.append(category)
    return todo


def finish(plan: RunPlan) -> None:
    """Remove the state folder once every class of the whole config (all shards) is done."""
    config = plan.config
    if all((plan.done_dir / class_dirname(config, c)).exists() for c in range(config.classes)):
        shutil.rmtree(plan.state_dir)
