"""`compare`'s commands on a comparison folder (--task, --status, --report), and the preparing and
submitting of a plan (--prepare-only, --executor slurm|pbs). See local_eval.compare.executors."""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Tuple

from submission.fileio import make_dirs

if TYPE_CHECKING:  # the plan module imports torch; --status must not
    from .plan import ComparePlan

PlanFromArgv = Callable[[List[str], Path], Tuple[Any, argparse.Namespace]]


def prepare(plan: "ComparePlan", argv: List[str], log=print) -> None:
    """Write OUT/plan.json (with its units) and OUT/command.json; nothing else."""
    from .plan import write_plan_record
    from .task import write_command
    from .units import plan_units

    make_dirs(plan.out, "--out")
    write_plan_record(plan)
    write_command(plan, argv)
    units = plan_units(plan)
    generations = sum(1 for u in units if u.kind == "generate")
    log(f"{plan.out / 'plan.json'}: {len(units)} units, 0..{len(units) - 1} ({generations} "
        f"generation(s) first, then {len(units) - generations} runs); run one with python -m "
        f"local_eval compare {plan.out} --task I")


def submit_plan(plan: "ComparePlan", args: argparse.Namespace, argv: List[str]) -> int:
    """--executor slurm|pbs: submit the units not done yet as job arrays (or print them)."""
    from .cluster import dry_run, submit
    from .executors import resources
    from .units import is_done, plan_units

    units = [u for u in plan_units(plan) if not is_done(plan, u)]
    if args.dry_run:
        dry_run(args.executor, plan.out, units or plan_units(plan), resources(args))
        return 0
    if not units:
        from .report import markdown
        from .task import write_report

        prepare(plan, argv, log=lambda _: None)
        print(markdown(write_report(plan)))
        print(f"every unit of {plan.out} is done; nothing to submit")
        return 0
    submit(args.executor, plan.out, units, resources(args),
           lambda: prepare(plan, argv, log=lambda _: None))
    print(f"follow it with python -m local_eval compare {plan.out} --status")
    return 0


def _plan_of_folder(out: Path, plan_from_argv: PlanFromArgv):
    """The plan in OUT, rebuilt from its command.json (in the folder it was given in)."""
    from .task import read_command

    command = read_command(out)
    out = out.resolve()
    os.chdir(command["cwd"])  # its relative paths are relative to where it was typed
    return plan_from_argv(command["argv"], out)


def folder_command(args: argparse.Namespace, plan_from_argv: PlanFromArgv) -> int:
    """--status, --report, --task I; `plan_from_argv(argv, out)` is the command line's plan
    (and parsed arguments) in folder `out` (local_eval.compare.cli)."""
    cwd = os.getcwd()
    try:
        return _folder_command(args, plan_from_argv)
    finally:
        os.chdir(cwd)  # _plan_of_folder went to where the comparison was typed


def _report_view(plan: "ComparePlan", args: argparse.Namespace) -> int:
    """--report with --baseline and/or --target-diff: the table against another dataset (or for
    another difference), printed; OUT's compare.* stay the plan's, which every task rewrites.
    The plan checks both values (ComparePlan.__post_init__)."""
    from .diagnostics import dataset_diagnostics
    from .report import markdown, summarize
    from .task import finished_reports

    view = dataclasses.replace(plan, baseline=args.baseline or plan.baseline,
                               target_diff=args.target_diff if args.target_diff is not None else plan.target_diff)
    summary = summarize(view, finished_reports(view))
    summary["data_stats"] = dataset_diagnostics(view)
    print(markdown(summary))
    print(f"(printed only: {plan.out}/compare.md stays against {plan.baseline})")
    return 0


def _folder_command(args: argparse.Namespace, plan_from_argv: PlanFromArgv) -> int:
    from .executors import folder_mode, folder_of
    from .units import read_units, status_lines

    mode = folder_mode(args)
    out = folder_of(args)
    if mode == "status":
        print("\n".join(status_lines(out, read_units(out))))
        return 0
    from ..datasets.fingerprint import forget
    from .plan import check_plan
    from .report import markdown
    from .task import check_index, task_index_from_env, write_report

    forget()
    index = task_index_from_env() if mode == "task_from_env" else args.task
    plan, stored = _plan_of_folder(out, plan_from_argv)
    check_plan(plan, 1)
    if mode == "report":
        if args.baseline is not None or args.target_diff is not None:
            return _report_view(plan, args)
        summary = write_report(plan)
        print(markdown(summary))
        return 0
    unit = check_index(plan, index)
    from ..core.distributed import init_runtime, resolve_device, shutdown
    from ..core.lock import run_folder_lock
    from ..run.arguments import loader_workers_per_process
    from .task import run_unit
    from .units import unit_lock_dir

    device = resolve_device(stored.device)
    workers = loader_workers_per_process(1) if stored.workers is None else stored.workers
    runtime = init_runtime(device, workers, progress=not stored.no_progress)
    log = lambda line: print(line, flush=True)  # noqa: E731
    # Held while this task lives: --status sees it running, and a second task of the same unit
    # (resubmitted while this one runs) waits for it, then finds the unit done.
    with run_folder_lock(unit_lock_dir(plan, unit.index), wait=True,
                         on_wait=lambda: log(f"unit {unit.index} is running in another task; "
                                             f"waiting for it")):
        try:
            run_unit(plan, unit, runtime, log=log)
        finally:
            shutdown(runtime)
    return 0
