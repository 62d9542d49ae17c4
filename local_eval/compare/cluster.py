"""`compare --executor slurm | pbs`: the units of a plan as the cluster's own job arrays.

Two arrays at most: the generations not done yet, then the runs not done yet, the second held
back until the first has succeeded (Slurm `--dependency=afterok`, PBS `-W depend=afterok`). Array
task I runs plan unit I (`compare OUT --task-from-env`: SLURM_ARRAY_TASK_ID / PBS_ARRAY_INDEX), so
a task index is a unit index and a unit's log is OUT/logs/unit-I.log on every kind of machine.
Tasks are idempotent (local_eval.compare.task): rerunning the same command submits what is not done
yet, and a task requeued after a kill resumes the run from its checkpoint.

Nothing is written before the scheduler has accepted every array: the first is submitted on hold
(`sbatch --hold`, `qsub -h`) with its script on stdin; the files (plan.json, command.json, the
scripts under OUT/<kind>/) are written, then it is released. A refused submission leaves nothing
(an array already accepted is cancelled) and is one `error:` line with the scheduler's message.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from submission.errors import UserError
from submission.fileio import write_atomic

from .pool import REPO
from .task import SINGLE_TASK_ENV
from .units import LOG_DIR, Unit

SUBMIT = {"slurm": "sbatch", "pbs": "qsub"}
RELEASE = {"slurm": ["scontrol", "release"], "pbs": ["qrls"]}
CANCEL = {"slurm": ["scancel"], "pbs": ["qdel"]}


@dataclass(frozen=True)
class Resources:
    """What each array task asks the scheduler for (None: the site's default)."""

    partition: Optional[str] = None  # Slurm partition, PBS queue (-q)
    gpus: Optional[int] = None  # per task
    cpus: Optional[int] = None  # per task
    mem: Optional[str] = None  # e.g. 32G
    time: Optional[str] = None  # e.g. 1:00:00
    max_running: Optional[int] = None  # array throttle: %P
    pbs_select: Optional[str] = None  # the whole -l select=... value (ABCI: 1, with -q rt_HG)
    options: Tuple[str, ...] = field(default_factory=tuple)  # site options passed through


def check_scheduler(kind: str, dry_run: bool) -> None:
    """The submit command must be on PATH (not for --dry-run, which submits nothing)."""
    if not dry_run and shutil.which(SUBMIT[kind]) is None:
        raise UserError(f"--executor {kind} needs {SUBMIT[kind]} on PATH and it is not there; run "
                        f"this on a login node of the cluster, or pass --dry-run to see the script")


def index_text(kind: str, indices: Sequence[int], throttle: Optional[int]) -> str:
    """Slurm: a compact list (3-7,9); PBS: one range (PBS arrays take no lists; the done units
    inside it are no-ops)."""
    if kind == "pbs":
        text = f"{indices[0]}-{indices[-1]}"
    else:
        parts, start = [], indices[0]
        for previous, current in zip(indices, list(indices[1:]) + [None]):
            if current != previous + 1:
                parts.append(str(start) if start == previous else f"{start}-{previous}")
                start = current
        text = ",".join(parts)
    return text + (f"%{throttle}" if throttle else "")


def script(kind: str, out: Path, name: str, indices: Sequence[int], res: Resources) -> str:
    """The batch script of one array (directives, then the task command)."""
    out = out.resolve()
    logs = out / LOG_DIR
    lines = ["#!/bin/bash"]
    if kind == "slurm":
        directive = "#SBATCH"
        lines += [f"{directive} --job-name=compare-{name}",
                  f"{directive} --array={index_text(kind, indices, res.max_running)}",
                  f"{directive} --output={logs}/unit-%a.log", f"{directive} --open-mode=append",
                  f"{directive} --requeue"]
        for flag, value in (("--partition", res.partition), ("--cpus-per-task", res.cpus),
                            ("--gres", res.gpus and f"gpu:{res.gpus}"), ("--mem", res.mem),
                            ("--time", res.time)):
            if value:
                lines.append(f"{directive} {flag}={value}")
        threads = "${SLURM_CPUS_PER_TASK:-1}"
    else:
        directive = "#PBS"
        lines += [f"{directive} -N compare-{name}"]
        if len(indices) > 1:  # an array of one is a plain job (submit_command's -v)
            lines.append(f"{directive} -J {index_text(kind, indices, res.max_running)}")
        lines += [f"{directive} -j oe", f"{directive} -o {logs}/", f"{directive} -r y"]
        if res.partition:
            lines.append(f"{directive} -q {res.partition}")
        select = res.pbs_select or ":".join(
            ["1"] + [f"{k}={v}" for k, v in (("ncpus", res.cpus), ("ngpus", res.gpus),
                                              ("mem", res.mem)) if v])
        lines.append(f"{directive} -l select={select}")
        if res.time:
            lines.append(f"{directive} -l walltime={res.time}")
        threads = f"{res.cpus or 1}"
    lines += [f"{directive} {option}" for option in res.options]
    task = f"${{PBS_ARRAY_INDEX:-${{{SINGLE_TASK_ENV}}}}}" if kind == "pbs" else "${SLURM_ARRAY_TASK_ID}"
    lines += ["# written by python -m local_eval compare; array task I runs plan unit I "
              "(OUT/plan.json)", "set -eu"]
    if kind == "pbs":  # PBS copies its output at the end; the unit's log is written as it goes
        lines.append(f'exec >> "{logs}/unit-{task}.log" 2>&1')
    lines += [f"export OMP_NUM_THREADS={threads}",
              f"export PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}}",
              f"cd {shlex.quote(str(REPO))}",
              f"exec {shlex.quote(sys.executable)} -m local_eval compare "
              f"--out {shlex.quote(str(out))} --task-from-env", ""]
    return "\n".join(lines)


def arrays(units: Sequence[Unit]) -> List[Tuple[str, List[int]]]:
    """(name, unit indices) of the arrays to submit, generations first; empty ones left out."""
    groups = [("generate", [u.index for u in units if u.kind == "generate"]),
              ("runs", [u.index for u in units if u.kind == "run"])]
    return [(name, indices) for name, indices in groups if indices]


def submit_command(kind: str, indices: Sequence[int], after: Optional[str], hold: bool
                   ) -> List[str]:
    command = [SUBMIT[kind]]
    if kind == "slurm":
        command.append("--parsable")
        if hold:
            command.append("--hold")
        if after:
            command += [f"--dependency=afterok:{after}", "--kill-on-invalid-dep=yes"]
    else:
        if hold:
            command.append("-h")
        if after:
            command += ["-W", f"depend=afterok:{after}"]
        if len(indices) == 1:  # a plain job (PBS refuses an array of one; PBS_* names are its own)
            command += ["-v", f"{SINGLE_TASK_ENV}={indices[0]}"]
    return command


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip() or "(no message)"


def _call(command: List[str], stdin: Optional[str] = None) -> str:
    """stdout of `command`, or UserError with its message on one line."""
    try:
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
    except OSError as error:
        raise UserError(f"{command[0]} could not be run: {error.strerror}") from None
    if result.returncode != 0:
        raise UserError(f"{command[0]} refused the job: "
                        f"{_one_line(result.stderr or result.stdout)}")
    return result.stdout.strip()


def submit(kind: str, out: Path, units: Sequence[Unit], res: Resources,
           write_files: Callable[[], None], log=print) -> List[str]:
    """Submit the arrays (see the module docstring); returns their job ids."""
    jobs: List[str] = []
    scripts = []
    try:
        for position, (name, indices) in enumerate(arrays(units)):
            text = script(kind, out, name, indices, res)
            after = jobs[-1] if jobs else None
            job = _call(submit_command(kind, indices, after, hold=position == 0), stdin=text)
            jobs.append(job.split(";")[0])  # sbatch --parsable: "id[;cluster]"
            scripts.append((name, text))
    except UserError:
        for job in jobs:
            subprocess.run(CANCEL[kind] + [job], capture_output=True)
        raise
    write_files()
    folder = out / kind
    folder.mkdir(parents=True, exist_ok=True)
    (out / LOG_DIR).mkdir(parents=True, exist_ok=True)
    for name, text in scripts:
        write_atomic(folder / f"{name}.sh", text.encode())
    if jobs:
        _call(RELEASE[kind] + [jobs[0]])
    for (name, indices), job in zip(arrays(units), jobs):
        log(f"submitted {name} as job {job}: units {index_text('slurm', indices, None)} "
            f"(script {folder / (name + '.sh')}; logs {out / LOG_DIR}/unit-I.log)")
    return jobs


def dry_run(kind: str, out: Path, units: Sequence[Unit], res: Resources, log=print) -> None:
    """Print the scripts and the submit commands; writes and submits nothing."""
    for position, (name, indices) in enumerate(arrays(units)):
        after = "<job id of the generate array>" if position else None
        command = submit_command(kind, indices, after, hold=False)
        log(f"# {' '.join(command)} {out / kind / (name + '.sh')}")
        log(script(kind, out, name, indices, res))
