"""`compare OUT --merge OTHER_OUT...`: take in finished runs made elsewhere (another machine, a GPU
slot, a laptop copy) when they are runs of OUT's plan, then rewrite OUT's report.

What a run is must not depend on the machine, so the two are compared without where things are:
- the plan (plan.json): the datasets a source shares with OUT by name, and the presets it shares,
  must be the same ones; a generated dataset is known by its generation config's hash (not its
  source file, not its folder), a downstream set by the sha256 of its bytes (downstream_sha256),
  not its path or the path/size/mtime fingerprint of the copy;
- each run (run.json): its config (seed included), the content of its data (generated and noise
  data are named by their config; a NAME=PATH folder by its fingerprint: relative names, sizes
  and mtimes, so its copy must keep them, e.g. rsync -a), loader, downstream sets and repeats.
Everything is checked before anything is written: a source that is not a comparison, has another
plan, or holds a run with another identity is refused in one line (UserError) and nothing is
merged. A run of a source imports as run.json (OUT's own record of that run, so that OUT's checks
read it as theirs), report.json and curves.png, plus merged-from.json (the source and its
run.json); never checkpoints. A finished run in OUT stays as it is (a source's equal one is a
no-op, a different one is left out and named); an unfinished run folder in OUT is left alone.
Each run arrives through a temporary folder renamed into place, so a killed merge leaves nothing
half-written, and merging again is a no-op.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from submission.errors import UserError
from submission.fileio import make_dirs, write_atomic

from ..core.config import EvalConfig
from ..core.lock import LOCK_FILE
from ..core.outputs import write_json
from ..run.record import RUN_FILE, differences, without_places
from .plan import PLAN_FILE, ComparePlan, RunKey

TRAVELS = ("report.json", "curves.png")  # with run.json: all the report needs of a run
MERGED_FILE = "merged-from.json"
PARTIAL = ".merging-"  # prefix of a run folder on its way in


def portable_run(identity: Dict[str, Any]) -> Dict[str, Any]:
    """A run.json without what depends on the machine; fields a record from before they existed
    lacks take their defaults (as run.spec.check_out_dir reads such records)."""
    record = without_places(identity)
    if isinstance(record.get("config"), dict):
        record["config"] = {**EvalConfig().to_dict(), **record["config"]}
    record.setdefault("finetune_repeats", 1)
    record.setdefault("downstream_sha256", None)
    record.setdefault("loader", None if identity.get("data") is None else "pil")
    return record


def portable_dataset(identity: Dict[str, Any]) -> Dict[str, Any]:
    """A plan's dataset entry without its folder path, or a generation config's source file (the
    config's hash names what it generates)."""
    dropped = ("path", "source") if identity.get("kind") == "generated" else ("path",)
    return {k: v for k, v in identity.items() if k not in dropped}


def portable_preset(identity: Dict[str, Any]) -> Dict[str, Any]:
    preset = without_places(identity)
    preset.setdefault("downstream_sha256", None)
    return preset


def plan_mismatch(mine: Dict[str, Any], other: Dict[str, Any]) -> Optional[str]:
    """Why a source's plan (`other`) is not a part of OUT's (`mine`), or None when it is: every
    dataset and preset it shares with OUT by name is the same one, and it shares some runs."""
    for key, default in (("loader", "pil"), ("finetune_repeats", 1)):
        if mine.get(key, default) != other.get(key, default):
            return f"{key} {other.get(key, default)!r} -> {mine.get(key, default)!r}"
    datasets = {d["name"]: d for d in mine.get("datasets", [])}
    shared = [d for d in other.get("datasets", []) if d.get("name") in datasets]
    for dataset in shared:
        changes = differences(portable_dataset(dataset), portable_dataset(datasets[dataset["name"]]))
        if changes:
            return f"dataset {dataset['name']}: {changes[0]}"
    presets = mine.get("presets", {})
    common = [p for p in other.get("presets", {}) if p in presets]
    for preset in common:
        changes = differences(portable_preset(other["presets"][preset]),
                              portable_preset(presets[preset]))
        if changes:
            return f"preset {preset}: {changes[0]}"
    if not (shared and common and set(other.get("seeds", [])) & set(mine.get("seeds", []))):
        return "it shares no dataset, preset and seed with it"
    return None


def read_json(path: Path, what: str) -> Dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{path} cannot be read as JSON ({error}); {what}") from None


def _source_plan(source: Path, out: Path, mine: Dict[str, Any]) -> Dict[str, Any]:
    if not (source / PLAN_FILE).is_file():
        raise UserError(f"merge source {source} is not a comparison (no {PLAN_FILE}); name the "
                        f"folder a compare --out wrote")
    other = read_json(source / PLAN_FILE, "name a comparison folder")
    why = plan_mismatch(mine, other)
    if why is not None:
        raise UserError(f"merge source {source} holds another plan than {out} ({why}); merge "
                        f"only comparisons of the same datasets, presets and overrides")
    return other


class Import:
    """One finished run of a source, checked against OUT's plan."""

    def __init__(self, key: RunKey, folder: Path, identity: Dict[str, Any]) -> None:
        self.key, self.folder, self.identity = key, folder, identity

    def same_result(self, target: Path) -> bool:
        """Whether the run in `target` has this one's result: scores, losses, accuracies
        (where, when, how fast and on which device it ran aside)."""
        return result_of(read_json(target / "report.json", "")) == \
            result_of(read_json(self.folder / "report.json", ""))


NOT_RESULTS = ("wall_seconds", "epoch_seconds", "runtime", "versions", "data")


def result_of(report: Any) -> Any:
    """A report.json without its NOT_RESULTS keys, at any depth."""
    if isinstance(report, dict):
        return {k: result_of(v) for k, v in report.items() if k not in NOT_RESULTS}
    if isinstance(report, list):
        return [result_of(v) for v in report]
    return report


def _check_run(plan: ComparePlan, key: RunKey, folder: Path) -> Import:
    """The source's run `key` in `folder`, or UserError naming the field that differs."""
    recorded = read_json(folder / RUN_FILE, "the run cannot be merged")
    read_json(folder / "report.json", "the run cannot be merged")
    identity = plan.spec(key, plan.data_path(key[0])).identity()
    changes = differences(portable_run(recorded), portable_run(identity))
    if changes:
        raise UserError(f"{folder} is another run than {plan.out}'s {'/'.join(map(str, key[:2]))}"
                        f"/seed{key[2]} ({changes[0]}); nothing was merged")
    return Import(key, folder, identity)


def collect(plan: ComparePlan, sources: List[Path]) -> Tuple[List[Import], List[str]]:
    """Every finished run of the sources that belongs to OUT's plan, checked (UserError before
    anything is written); and a line for each source on what it held."""
    from .plan import plan_record

    mine = plan_record(plan)
    runs: Dict[RunKey, Import] = {}
    lines = []
    keys = set(plan.keys())
    for source in sources:
        if source.resolve() == plan.out.resolve():
            raise UserError(f"merge source {source} is {plan.out} itself; name another "
                            f"comparison folder")
        other = _source_plan(source, plan.out, mine)
        finished = unfinished = foreign = 0
        # Its runs by its plan's own names (plans from before the units were numbered too).
        for key in [(d["name"], preset, seed) for preset in other.get("presets", {})
                    for seed in other.get("seeds", []) for d in other.get("datasets", [])]:
            folder = source / "runs" / key[0] / key[1] / f"seed{key[2]}"
            if not (folder / "report.json").is_file():
                unfinished += folder.is_dir()
                continue
            if key not in keys:
                foreign += 1
                continue
            finished += 1
            found = _check_run(plan, key, folder)
            if key in runs and not found.same_result(runs[key].folder):
                raise UserError(f"{runs[key].folder} and {folder} are the same run with "
                                f"different results; merge one of them")
            runs.setdefault(key, found)
        lines.append(f"{source}: {finished} finished run(s) of this plan"
                     + (f", {unfinished} unfinished (left out)" if unfinished else "")
                     + (f", {foreign} not in this plan (left out)" if foreign else ""))
    return [runs[key] for key in plan.keys() if key in runs], lines


def _bring_in(plan: ComparePlan, run: Import) -> None:
    """Copy the run into OUT through a temporary folder renamed into place."""
    target = plan.run_dir(run.key)
    partial = target.with_name(PARTIAL + target.name)
    if partial.exists():  # left by a killed merge: ours, and never read by anything
        shutil.rmtree(partial)
    make_dirs(partial, "--out")
    write_json(run.identity, partial / RUN_FILE)
    for name in TRAVELS:
        if (run.folder / name).is_file():
            write_atomic(partial / name, (run.folder / name).read_bytes())
    write_json({"source": str(run.folder.resolve()),
                "run": read_json(run.folder / RUN_FILE, "")}, partial / MERGED_FILE)
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    os.rename(partial, target)


def merge_runs(plan: ComparePlan, sources: List[Path], log: Callable[[str], None] = print) -> int:
    """Merge the sources' finished runs into `plan`'s folder; returns how many came in."""
    runs, lines = collect(plan, sources)
    for line in lines:
        log(line)
    merged = 0
    for run in runs:
        target = plan.run_dir(run.key)
        label = f"{'/'.join(map(str, run.key[:2]))}/seed{run.key[2]}"
        if (target / "report.json").is_file():
            if not run.same_result(target):
                log(f"  {label}: {plan.out} has it finished with another result; kept")
            continue
        if target.is_dir() and any(p.name != LOCK_FILE for p in target.iterdir()) \
                or (target / LOCK_FILE).exists():
            log(f"  {label}: {plan.out} holds it unfinished; left alone (finish it, or remove "
                f"{target} to take the merged one)")
            continue
        _bring_in(plan, run)
        merged += 1
    log(f"merged {merged} run(s) into {plan.out}" + ("" if merged else " (nothing new)"))
    return merged


def merge_command(args, build_parser, plan_from_args) -> int:
    """`compare OUT --merge SOURCE...`: check, merge, rewrite OUT's report. The command line's
    parser and plan builder come from compare.cli (which imports this module)."""
    from ..datasets.fingerprint import forget
    from .executors import folder_mode
    from .plan import check_plan
    from .report import markdown
    from .task import read_command, write_report

    forget()
    mode = folder_mode(args)
    if mode is not None:
        raise UserError(f"--merge is a command of its own; drop --{mode.replace('_', '-')}")
    if not (args.out is None and len(args.datasets) == 1
            or args.out is not None and not args.datasets):
        raise UserError("--merge works on one comparison folder: python -m local_eval compare "
                        "OUT --merge OTHER_OUT...")
    out = args.out if args.out is not None else Path(args.datasets[0])
    sources = [Path(text) for text in args.merge]
    for source in sources:
        if not source.is_dir():
            raise UserError(f"merge source {source} is not a folder; name comparison folders "
                            f"(compare --out) to merge from")
    command = read_command(out)
    cwd = os.getcwd()
    try:
        # Its relative paths mean what they meant where it was typed; a folder committed to a
        # repository and checked out elsewhere is read from here (the repository's root).
        if os.path.isdir(command.get("cwd", "")):
            os.chdir(command["cwd"])
        stored = build_parser().parse_args(command["argv"])
        stored.out = out.resolve()
        sources = [source.resolve() for source in sources]
        plan = plan_from_args(stored)
        check_plan(plan, 1)
        merge_runs(plan, sources)
        summary = write_report(plan)
    finally:
        os.chdir(cwd)
    print(markdown(summary))
    print(f"results: {out / 'compare.json'}  table: {out / 'compare.md'}  "
          f"plot: {out / 'compare.png'}")
    return 0
