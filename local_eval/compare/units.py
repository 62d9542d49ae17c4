"""A comparison as numbered work units, for job arrays and worker pools.

Units are the cached datasets to generate first (noise, generation configs), then every run in
`ComparePlan.keys()` order; plan.json lists them (`unit_records`). A unit is keyed by what it is,
not by where it ran: a run by dataset name + preset + seed + the sha256 of the preset's config and
downstream sets (`id`, `config_sha256`), a generation by its dataset's identity, so results made
elsewhere can be matched to a plan by key.

State lives in the comparison folder only, so any node of a cluster can read it:
- done: a run's report.json; a generation's marker `cache/generated/<folder>`;
- running: a task of it holds `cache/locks/unit-<i>/.lock`, or a `compare` process holds the
  run's own `.lock` (a generation's `cache/locks/<folder>/.lock`), or its log was just opened
  by the scheduler and is still empty (the task is starting);
- failed: none of these, but its log `logs/unit-<i>.log` exists (it started, stopped unfinished);
- waiting: none of these.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from submission.fileio import make_dirs, write_atomic

from ..run.record import without_content

LOG_DIR = "logs"
GENERATED_DIR = "generated"  # under cache/: one empty marker per finished generation
LOCKS_DIR = "locks"  # under cache/
LOCK_FILE = ".lock"  # local_eval.core.lock's name


@dataclass(frozen=True)
class Unit:
    index: int
    kind: str  # "generate" or "run"
    dataset: str
    preset: Optional[str] = None
    seed: Optional[int] = None
    needs: Tuple[int, ...] = ()  # the generation units this run reads

    @property
    def key(self) -> Tuple[str, str, int]:
        return (self.dataset, self.preset, self.seed)  # type: ignore[return-value]

    def label(self) -> str:
        if self.kind == "generate":
            return f"generate {self.dataset}"
        return f"{self.dataset} / {self.preset} / seed {self.seed}"


def plan_units(plan) -> List[Unit]:
    """Generations first (in dataset order), then the runs in the plan's order."""
    cached = [d.name for d in plan.datasets if d.cached]
    units = [Unit(i, "generate", name) for i, name in enumerate(cached)]
    for dataset, preset, seed in plan.keys():
        needs = (cached.index(dataset),) if dataset in cached else ()
        units.append(Unit(len(units), "run", dataset, preset, seed, needs))
    return units


def config_sha256(identity: Dict[str, Any], preset: str) -> str:
    """sha256 (16 hex digits) of a preset's config and downstream sets as plan.json records them,
    without what the files hold (a content change redoes runs, it does not rename them)."""
    text = json.dumps(without_content(identity["presets"][preset]), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unit_records(plan, identity: Dict[str, Any]) -> List[Dict[str, Any]]:
    """plan.json's `units`: index, kind, what it is and its stable key."""
    datasets = {d["name"]: d for d in identity["datasets"]}
    records = []
    for unit in plan_units(plan):
        if unit.kind == "generate":
            records.append({"index": unit.index, "kind": "generate", "dataset": unit.dataset,
                            "id": f"generate/{unit.dataset}",
                            "dataset_identity": without_content(datasets[unit.dataset]),
                            "path": str(plan.data_path(unit.dataset).relative_to(plan.out))})
            continue
        records.append({"index": unit.index, "kind": "run", "dataset": unit.dataset,
                        "preset": unit.preset, "seed": unit.seed, "needs": list(unit.needs),
                        "id": f"{unit.dataset}/{unit.preset}/seed{unit.seed}",
                        "config_sha256": config_sha256(identity, unit.preset),
                        "path": str(plan.run_dir(unit.key).relative_to(plan.out))})
    return records


def generation_lock_dir(plan, name: str) -> Path:
    return plan.cache / LOCKS_DIR / plan.data_path(name).name


def _generated_marker(plan, name: str) -> Path:
    return plan.cache / GENERATED_DIR / plan.data_path(name).name


def prepare_dataset(plan, name: str, log) -> None:
    """Generate (or wait for) cached dataset `name`, then mark it generated."""
    dataset = plan.dataset(name)
    if not dataset.cached:
        return
    dataset.prepare(plan.cache, log)
    marker = _generated_marker(plan, name)
    if not marker.exists():
        make_dirs(marker.parent, "the compare cache")
        write_atomic(marker, b"")


def log_path(out: Path, index: int) -> Path:
    return out / LOG_DIR / f"unit-{index}.log"


def is_done(plan, unit: Unit) -> bool:
    if unit.kind == "generate":
        return _generated_marker(plan, unit.dataset).exists()
    return (plan.run_dir(unit.key) / "report.json").is_file()


def _lock_held(folder: Path) -> bool:
    """Whether a process holds `folder`'s flock now; writes nothing. A shared, non-blocking probe
    that is released at once (a task that meets it waits for it, local_eval.compare.task)."""
    import fcntl

    path = folder / LOCK_FILE
    if not path.is_file():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def unit_lock_dir(plan, index: int) -> Path:
    return plan.cache / LOCKS_DIR / f"unit-{index}"


def is_running(plan, unit: Unit) -> bool:
    if _lock_held(unit_lock_dir(plan, unit.index)):
        return True
    log = log_path(plan.out, unit.index)
    if log.is_file() and log.stat().st_size == 0:
        return True
    if unit.kind == "generate":
        return _lock_held(generation_lock_dir(plan, unit.dataset))
    return _lock_held(plan.run_dir(unit.key))


def last_log_line(path: Path) -> str:
    """The last non-empty line of a unit's log (progress bars' carriage returns split lines)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - 8192))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.replace("\r", "\n").split("\n") if line.strip()]
    return lines[-1] if lines else "(empty log)"


def unit_states(plan) -> List[Tuple[Unit, str]]:
    """(unit, "done" | "running" | "failed" | "waiting") for every unit of the plan."""
    states = []
    for unit in plan_units(plan):
        if is_done(plan, unit):
            state = "done"
        elif is_running(plan, unit):
            state = "running"
        elif log_path(plan.out, unit.index).is_file():
            state = "failed"
        else:
            state = "waiting"
        states.append((unit, state))
    return states


def status_lines(plan) -> List[str]:
    """`compare OUT --status`: the counts, then each failed unit with its log's last line."""
    states = unit_states(plan)
    counts = {name: sum(1 for _, s in states if s == name)
              for name in ("done", "running", "failed", "waiting")}
    lines = [f"{plan.out}: {len(states)} units: " + ", ".join(f"{n} {name}"
                                                                for name, n in counts.items())]
    for unit, state in states:
        if state in ("running", "failed"):
            line = f"  unit {unit.index} ({unit.label()}): {state}"
            if state == "failed":
                line += f": {last_log_line(log_path(plan.out, unit.index))}"
            lines.append(line)
    return lines
