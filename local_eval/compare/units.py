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

from ..run.record import without_content, without_places

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
    without where they are (the same on every machine) and without what the files hold (a
    content change redoes runs, it does not rename them)."""
    text = json.dumps(without_content(without_places(identity["presets"][preset])), sort_keys=True)
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


def unit_lock_dir(plan, index: int) -> Path:
    return plan.cache / LOCKS_DIR / f"unit-{index}"


@dataclass(frozen=True)
class UnitFiles:
    """Where a unit's state is: enough to tell it without rebuilding the plan (--status reads
    these from plan.json alone, so it needs neither the datasets nor torch)."""

    out: Path
    index: int
    kind: str
    folder: Path  # the run folder, or the generated dataset's folder
    label: str

    def done(self) -> bool:
        if self.kind == "generate":
            return (self.out / "cache" / GENERATED_DIR / self.folder.name).exists()
        return (self.folder / "report.json").is_file()

    def running(self) -> bool:
        log = log_path(self.out, self.index)
        if log.is_file() and log.stat().st_size == 0:  # opened by the scheduler: starting
            return True
        own = (self.out / "cache" / LOCKS_DIR / self.folder.name if self.kind == "generate"
               else self.folder)
        return (_lock_held(self.out / "cache" / LOCKS_DIR / f"unit-{self.index}")
                or _lock_held(own))

    def state(self) -> str:
        if self.done():
            return "done"
        if self.running():
            return "running"
        return "failed" if log_path(self.out, self.index).is_file() else "waiting"


def files_of(plan, unit: Unit) -> UnitFiles:
    folder = plan.data_path(unit.dataset) if unit.kind == "generate" else plan.run_dir(unit.key)
    return UnitFiles(plan.out, unit.index, unit.kind, folder, unit.label())


def is_done(plan, unit: Unit) -> bool:
    return files_of(plan, unit).done()


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


def status_lines(out: Path, records: List[Dict[str, Any]]) -> List[str]:
    """`compare OUT --status` from plan.json's units: the counts, then each running or failed
    unit, a failed one with its log's last line."""
    units = [UnitFiles(out, r["index"], r["kind"], out / r["path"],
                       f"generate {r['dataset']}" if r["kind"] == "generate"
                       else f"{r['dataset']} / {r['preset']} / seed {r['seed']}")
             for r in records]
    states = [(unit, unit.state()) for unit in units]
    counts = {name: sum(1 for _, s in states if s == name)
              for name in ("done", "running", "failed", "waiting")}
    lines = [f"{out}: {len(states)} units: " + ", ".join(f"{n} {name}"
                                                           for name, n in counts.items())]
    for unit, state in states:
        if state in ("running", "failed"):
            line = f"  unit {unit.index} ({unit.label}): {state}"
            if state == "failed":
                line += f": {last_log_line(log_path(out, unit.index))}"
            lines.append(line)
    return lines


def read_units(out: Path) -> List[Dict[str, Any]]:
    """plan.json's units (UserError when OUT holds no comparison with units)."""
    from submission.errors import UserError

    if not (out / "plan.json").is_file():
        raise UserError(f"{out} holds no comparison (plan.json); make one with python -m "
                        f"local_eval compare DATASETS... --out {out} --prepare-only")
    try:
        record = json.loads((out / "plan.json").read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{out / 'plan.json'} is damaged ({error})") from error
    if "units" not in record:
        raise UserError(f"{out / 'plan.json'} lists no units (made before they existed); rerun "
                        f"its compare command once with --prepare-only")
    return record["units"]
