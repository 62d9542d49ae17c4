"""One unit of a comparison (`compare OUT --task I`), its report and its status.

A task rebuilds the plan from OUT/command.json (the command line that made the plan and the folder
it was given in, so relative paths mean what they meant) and checks it against OUT/plan.json, then
runs unit I and nothing else:
- a finished unit is a no-op;
- a run another process trains is waited for (its flock), then read, or resumed from its
  checkpoint if its owner stopped without a result: never two trainings of one run at once;
- a killed task resumes from the run's checkpoints when it is run again (requeued).
After a run, the task rewrites compare.json/md/png from every finished run under a lock, so the
task that finishes last leaves the complete report.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, List

from submission.errors import UserError
from submission.fileio import loads_json, make_dirs

from ..core.lock import RunBusy, run_folder_lock
from ..core.outputs import write_json
from ..run.record import read_json_object
from ..run.spec import DataChanged, check_out_dir
from .plan import PLAN_FILE, ComparePlan, set_aside, write_plan_record
from .units import Unit, is_done, plan_units, prepare_dataset

COMMAND_FILE = "command.json"
SINGLE_TASK_ENV = "LOCAL_EVAL_TASK"  # a PBS job of one unit (PBS refuses an array of one)
TASK_ENV = ("SLURM_ARRAY_TASK_ID", "PBS_ARRAY_INDEX", SINGLE_TASK_ENV)


def write_command(plan: ComparePlan, argv: List[str]) -> None:
    """OUT/command.json: what a task needs to rebuild the plan."""
    record = {"argv": list(argv), "cwd": os.getcwd()}
    path = plan.out / COMMAND_FILE
    try:
        same = path.is_file() and loads_json(path.read_bytes()) == record
    except ValueError:  # damaged: rewritten below
        same = False
    if not same:
        write_json(record, path)


def read_command(out: Path) -> Dict[str, Any]:
    """OUT/command.json, or UserError saying what OUT lacks."""
    if not (out / PLAN_FILE).is_file():
        raise UserError(f"{out} holds no comparison ({PLAN_FILE}); make one with python -m "
                        f"local_eval compare DATASETS... --out {out} --prepare-only")
    path = out / COMMAND_FILE
    if not path.is_file():
        raise UserError(f"{out} was made before comparisons recorded their command "
                        f"({COMMAND_FILE}); rerun its compare command once with --prepare-only")
    return read_json_object(path, "rerun the compare command with --prepare-only to rewrite it")


def task_index_from_env() -> int:
    for name in TASK_ENV:
        value = os.environ.get(name)
        if value is not None:
            if not value.strip().isdigit():
                raise UserError(f"{name}={value!r} is not a task index")
            return int(value)
    raise UserError(f"--task-from-env needs {', '.join(TASK_ENV[:-1])} or {TASK_ENV[-1]} (set by "
                    f"a job array); outside one, pass --task I")


def check_index(plan: ComparePlan, index: int) -> Unit:
    units = plan_units(plan)
    if not 0 <= index < len(units):
        raise UserError(f"task {index} is outside the plan of {plan.out}: its units are "
                        f"0..{len(units) - 1} (see {PLAN_FILE})")
    return units[index]


def finished_reports(plan: ComparePlan) -> Dict[tuple, Dict[str, Any]]:
    reports = {}
    for key in plan.keys():
        path = plan.run_dir(key) / "report.json"
        if path.is_file():
            reports[key] = read_json_object(path, f"remove {path.parent} and rerun the compare command to redo "
                                                  "that run")
    return reports


def write_report(plan: ComparePlan) -> Dict[str, Any]:
    """compare.json/md/png from every finished run; one writer at a time (tasks finishing
    together), each writing everything finished so far, so the last one writes it complete."""
    from .report import write_outputs

    with run_folder_lock(plan.cache / "locks" / "report", wait=True):
        return write_outputs(plan, finished_reports(plan))


def run_unit(plan: ComparePlan, unit: Unit, runtime, log=print) -> None:
    """Run one unit (see the module docstring); the plan was checked by check_plan."""
    from ..run.runner import run

    make_dirs(plan.out, "--out")
    write_plan_record(plan)
    if is_done(plan, unit):
        log(f"unit {unit.index} ({unit.label()}): done already")
        return
    if unit.kind == "generate":
        prepare_dataset(plan, unit.dataset, log)
        log(f"unit {unit.index} ({unit.label()}): done")
        return
    try:
        check_out_dir(plan.spec(unit.key, plan.data_path(unit.dataset)))
    except DataChanged:
        set_aside(plan, [unit.key], log)
    prepare_dataset(plan, unit.dataset, log)
    run_dir = plan.run_dir(unit.key)
    while not is_done(plan, unit):
        log(f"unit {unit.index} ({unit.label()}) ...")
        try:
            report = run(plan.spec(unit.key, plan.data_path(unit.dataset)), runtime)
        except RunBusy:  # its owner finishes it, or stops and leaves it to us
            log(f"unit {unit.index}: another process is training it; waiting for it")
            with run_folder_lock(run_dir, wait=True):
                pass
            continue
        if report is None:  # stopped early (not asked for by a task): leave it resumable
            return
        log(f"unit {unit.index} ({unit.label()}): score {report['score']:.2f}")
    summary = write_report(plan)
    done = sum(1 for run in summary["runs"] if run["status"] == "finished")
    log(f"{done}/{len(summary['runs'])} runs done" + (
        f"; the report is complete: {plan.out / 'compare.md'}" if summary["complete"] else ""))
    sys.stdout.flush()
