"""`compare`'s ways to run a plan, and its commands on an existing comparison folder.

On a plan (DATASETS... --out OUT):
  --prepare-only            check, write OUT/plan.json (numbered units) and command.json, stop
  --executor local          every unit in this process (the default; today's behaviour), or
      --parallel N / --gpus 0,1,...   on N worker processes (local_eval.compare.pool)
  --executor slurm | pbs    job arrays (local_eval.compare.cluster); --dry-run prints them
On a folder (compare OUT ... or --out OUT):
  --task I / --task-from-env   run unit I (local_eval.compare.task)
  --status                     units done, running, failed (with their log's last line), waiting
  --report                     compare.json/md/png from the finished runs
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from submission.errors import UserError

EXECUTORS = ("local", "slurm", "pbs")
FOLDER_MODES = ("task", "task_from_env", "status", "report")


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("running on several processes, GPUs or a cluster "
                                      "(docs/compare.md 'On a cluster')")
    modes = group.add_mutually_exclusive_group()
    modes.add_argument("--prepare-only", action="store_true",
                       help="check the plan, write OUT/plan.json with its numbered units, and stop")
    modes.add_argument("--task", type=int, metavar="I",
                       help="run unit I of the comparison in OUT (compare OUT --task I) and "
                            "nothing else; a finished unit is a no-op")
    modes.add_argument("--task-from-env", action="store_true",
                       help="--task from SLURM_ARRAY_TASK_ID or PBS_ARRAY_INDEX")
    modes.add_argument("--status", action="store_true",
                       help="how many units of OUT are done, running, failed, waiting")
    modes.add_argument("--report", action="store_true",
                       help="write OUT/compare.{json,md,png} from the runs finished so far")
    group.add_argument("--executor", default="local", choices=EXECUTORS,
                       help="local: this machine (default); slurm/pbs: submit job arrays")
    group.add_argument("--parallel", type=int, metavar="N",
                       help="local: N worker processes, one GPU each when there are GPUs, else "
                            "the CPU cores split between them")
    group.add_argument("--gpus", metavar="LIST",
                       help="local: one worker per listed GPU, e.g. 0,1,2,3")
    group.add_argument("--dry-run", action="store_true",
                       help="slurm/pbs: print the scripts and submit commands, write nothing")
    group.add_argument("--partition", help="slurm: partition; pbs: queue (-q), e.g. rt_HG")
    group.add_argument("--gpus-per-task", type=int, metavar="G", help="slurm/pbs: GPUs per run")
    group.add_argument("--cpus-per-task", type=int, metavar="C", help="slurm/pbs: cores per run")
    group.add_argument("--mem", help="slurm/pbs: memory per run, e.g. 32G (pbs: 32gb)")
    group.add_argument("--time", help="slurm/pbs: time limit per run, e.g. 1:00:00")
    group.add_argument("--max-running", type=int, metavar="P",
                       help="slurm/pbs: at most P tasks of an array at once (%%P)")
    group.add_argument("--pbs-select", metavar="SPEC",
                       help="pbs: the whole -l select= value (default: 1:ncpus=C:ngpus=G:mem=M)")
    group.add_argument("--scheduler-option", action="append", default=[], metavar="OPT",
                       help="a site option added to the script as is, e.g. "
                            "--scheduler-option=--account=abc (slurm) or "
                            "--scheduler-option='-P group' (pbs); repeatable")


def folder_mode(args: argparse.Namespace) -> Optional[str]:
    return next((m for m in FOLDER_MODES if getattr(args, m) is not None
                 and getattr(args, m) is not False), None)


def folder_of(args: argparse.Namespace) -> Path:
    """OUT of a folder command: --out, or the one positional argument."""
    if args.out is not None and not args.datasets:
        return args.out
    if args.out is None and len(args.datasets) == 1:
        return Path(args.datasets[0])
    raise UserError(f"--{folder_mode(args).replace('_', '-')} works on one comparison folder: "
                    f"python -m local_eval compare OUT --{folder_mode(args).replace('_', '-')}")


def check_executor_arguments(args: argparse.Namespace, world_size: int) -> None:
    """Every executor flag checked before anything is written."""
    local = args.executor == "local"
    if args.parallel is not None and args.parallel < 1:
        raise UserError(f"--parallel must be at least 1, got {args.parallel}")
    if not local and (args.parallel is not None or args.gpus):
        raise UserError(f"--parallel and --gpus are for --executor local; with --executor "
                        f"{args.executor} the scheduler places the runs (--gpus-per-task)")
    cluster_flags = [f for f in ("partition", "gpus_per_task", "cpus_per_task", "mem", "time",
                                 "max_running", "pbs_select") if getattr(args, f) is not None]
    if local and (cluster_flags or args.scheduler_option or args.dry_run):
        flag = cluster_flags[0] if cluster_flags else (
            "scheduler_option" if args.scheduler_option else "dry_run")
        raise UserError(f"--{flag.replace('_', '-')} is for --executor slurm or pbs")
    if args.pbs_select is not None and args.executor != "pbs":
        raise UserError("--pbs-select is for --executor pbs; Slurm takes --gpus-per-task, "
                        "--cpus-per-task and --mem")
    for flag in ("gpus_per_task", "cpus_per_task", "max_running"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "gpus_per_task" else 1):
            raise UserError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    parallel = args.parallel is not None or args.gpus
    if (parallel or not local) and args.stop_after_epochs is not None:
        raise UserError("--stop-after-epochs is for one compare process; stop the workers or "
                        "the jobs instead (a rerun resumes)")
    if (parallel or not local) and world_size > 1:
        raise UserError("--executor/--parallel/--gpus start their own processes; run them "
                        "without torchrun")
    if not local:
        from .cluster import check_scheduler

        check_scheduler(args.executor, args.dry_run)


def worker_gpus(args: argparse.Namespace) -> Optional[List[str]]:
    """The GPU of each local worker (None: CPU workers). --parallel N on a machine with GPUs
    (unless --device cpu) takes GPUs 0..N-1."""
    from .pool import gpu_count, parse_gpus

    if args.gpus:
        gpus = parse_gpus(args.gpus)
        if args.parallel is not None and args.parallel != len(gpus):
            raise UserError(f"--parallel {args.parallel} and --gpus {args.gpus} disagree: one "
                            f"worker per GPU; drop --parallel")
        return gpus
    count = gpu_count() if args.device != "cpu" else 0
    if count:
        if args.parallel > count:
            raise UserError(f"--parallel {args.parallel} puts one worker on each GPU and this "
                            f"machine has {count}; pass --parallel {count} or less (or "
                            f"--device cpu for CPU workers)")
        return parse_gpus(",".join(str(i) for i in range(args.parallel)))
    if args.device == "cuda":
        raise UserError("--device cuda but this machine has no CUDA GPU")
    return None


def unit_command(out: Path, index: int) -> List[str]:
    return [sys.executable, "-m", "local_eval", "compare", "--out", str(out.resolve()),
            "--task", str(index)]


def run_parallel(plan, args: argparse.Namespace, gpus: Optional[List[str]], log=print) -> int:
    """The local worker pool over the units not done yet; then the report."""
    from .pool import Pool, slot_environments
    from .report import markdown
    from .task import write_report
    from .units import is_done, log_path, plan_units

    units = [u for u in plan_units(plan) if not is_done(plan, u)]
    slots = slot_environments(args.parallel or 0, gpus)
    log(f"compare: {len(units)} units to run on {len(slots)} "
        f"{'GPU' if gpus else 'CPU'} worker(s); logs in {plan.out / 'logs'}")
    failed = Pool(units, slots, lambda u: unit_command(plan.out, u.index),
                  lambda u: log_path(plan.out, u.index), log).run()
    summary = write_report(plan)
    if failed:
        from .units import last_log_line

        for unit in failed:
            log(f"unit {unit.index} ({unit.label()}) failed: "
                f"{last_log_line(log_path(plan.out, unit.index))}")
        print(f"{len(failed)} unit(s) failed; fix the cause and rerun the same command to "
              f"resume", file=sys.stderr)
        return 1
    print(markdown(summary))
    return 0


def resources(args: argparse.Namespace):
    from .cluster import Resources

    return Resources(partition=args.partition, gpus=args.gpus_per_task, cpus=args.cpus_per_task,
                     mem=args.mem, time=args.time, max_running=args.max_running,
                     pbs_select=args.pbs_select, options=tuple(args.scheduler_option))

