"""`python -m local_eval gpu-campaign`: as many units of a committed comparison as fit a time
budget, for a GPU lent in short pieces (scripts/gpu_campaign.sh; docs/compare.md "On a cluster").

The committed comparison (its plan.json and command.json, and the runs merged so far) says what
is left: every run without a report.json there. This machine prepares the same plan in WORK
(the committed command line, --out WORK, --data-root where the downstream set is here), then runs
units one at a time (`compare WORK --task I`), dataset by dataset so that each generation serves
all its seeds, and starts a unit only when it would finish inside the budget by its estimate: a
run by the preset's GPU arithmetic (presets.gpu_run_seconds) or, once one has finished here, by
the measured mean; a generation by its images at a rate scaled from the measured 883 images/s at
224 px on 16 cores (docs/performance.md) by the pixels. A failed unit (e.g. glyphs without its
fonts) skips its dataset. The finished runs (run.json, report.json, curves.png) and the plan go
into OUT/runs.tar.gz, what ran and how long into OUT/slot.json; `compare COMMITTED --merge` takes
them in.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from submission.errors import UserError
from submission.tools.command import OneLineParser, run_command

GENERATE_RATE_224 = 883.0  # images/s, `generate` on 16 cores with a GPU (docs/performance.md)
GENERATE_OVERHEAD_S = 15.0  # assumed: process start, bank, writer pool, the store's first open
RESERVE_S = 15.0  # packing the results at the end
SLOT_FOLDER = "gpu-campaign-slot"  # the comparison folder inside runs.tar.gz


def slot_argv(command: Dict[str, Any], work: Path, data_root: Optional[str],
              presets: Optional[str]) -> List[str]:
    """The committed command line with --out WORK (and --data-root, --presets replaced), no
    progress bars (the log is read afterwards)."""
    argv, changes = list(command["argv"]), {"--out": str(work)}
    if data_root:
        changes["--data-root"] = data_root
    if presets:
        changes["--presets"] = presets
    for flag, value in changes.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv + ["--no-progress", "--prepare-only"]


def generate_seconds(dataset, rate_224: float) -> float:
    shape = dataset.shape([]) if hasattr(dataset, "generation") else (
        dataset.classes, dataset.images_per_class, dataset.image_size)
    classes, per_class, size = shape
    return classes * per_class / (rate_224 * (224 / size) ** 2) + GENERATE_OVERHEAD_S


class Slot:
    """The units of one budget, chosen and run in turn."""

    def __init__(self, plan, done: set, args, began: Optional[float] = None) -> None:
        from ..compare.units import plan_units

        self.plan, self.args = plan, args
        self.began = time.monotonic() if began is None else began  # the budget counts from here
        self.units = plan_units(plan)
        self.generation = {u.dataset: u for u in self.units if u.kind == "generate"}
        order = [d.name for d in plan.datasets]
        self.pending = sorted((u for u in self.units if u.kind == "run" and u.key not in done),
                              key=lambda u: (order.index(u.dataset), u.seed, u.preset))
        self.generated: set = set()
        self.failed: set = set()
        self.measured: Dict[tuple, List[float]] = {}
        self.record: List[Dict[str, Any]] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def run_estimate(self, unit) -> float:
        from ..compare.datasets import ScratchDataset
        from ..core.presets import gpu_run_seconds

        pretrained = not isinstance(self.plan.dataset(unit.dataset), ScratchDataset)
        known = self.measured.get((unit.preset, pretrained))
        if known:
            return sum(known) / len(known)
        if self.args.run_seconds:
            return self.args.run_seconds
        estimate = gpu_run_seconds(unit.preset, pretrained=pretrained)
        if estimate is None:
            raise UserError(f"preset {unit.preset} has no GPU estimate (presets.GPU_ESTIMATES); "
                            f"pass --run-seconds S")
        return estimate

    def cost(self, unit) -> float:
        gen = self.generation.get(unit.dataset)
        extra = 0.0 if gen is None or unit.dataset in self.generated else \
            generate_seconds(self.plan.dataset(unit.dataset), self.args.generate_rate)
        return extra + self.run_estimate(unit)

    def preview(self) -> List[str]:
        """The runs this slot will take by the estimates, in order, as next_unit picks them (a
        generation counted with its dataset's first run), with the running total."""
        lines, total, generated = [], self.elapsed(), set(self.generated)
        for unit in self.pending:
            run = self.run_estimate(unit)
            gen = 0.0 if unit.dataset not in self.generation or unit.dataset in generated else \
                generate_seconds(self.plan.dataset(unit.dataset), self.args.generate_rate)
            if total + gen + run + RESERVE_S > self.args.budget:
                continue
            generated.add(unit.dataset)
            total += gen + run
            lines.append(f"  unit {unit.index:3d} {unit.label():48s} "
                         + (f"generate {gen:4.0f} s + " if gen else " " * 17)
                         + f"run {run:4.0f} s -> at {total:4.0f} s")
        return lines + [f"  by the estimates: {len(lines)} run(s) in this slot, "
                        f"{len(self.pending) - len(lines)} left for later"]

    def next_unit(self):
        """The first pending run (dataset by dataset) that finishes inside the budget."""
        for unit in self.pending:
            if unit.dataset in self.failed:
                continue
            if self.elapsed() + self.cost(unit) + RESERVE_S <= self.args.budget:
                return unit
        return None

    def execute(self, unit, estimate: float) -> bool:
        began = time.monotonic()
        limit = max(30.0, self.args.budget + self.args.grace - self.elapsed())
        command = [sys.executable, "-m", "local_eval", "compare", str(self.plan.out), "--task",
                   str(unit.index)]
        try:
            code = subprocess.run(command, timeout=limit).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        seconds = time.monotonic() - began
        self.record.append({"unit": unit.index, "what": unit.label(), "estimate_s": round(estimate, 1),
                            "seconds": round(seconds, 1), "ok": code == 0})
        print(f"[{self.elapsed():6.0f} s] unit {unit.index} ({unit.label()}): "
              f"{'done' if code == 0 else f'failed ({code})'} in {seconds:.0f} s "
              f"(estimate {estimate:.0f} s)", flush=True)
        return code == 0

    def run(self) -> None:
        while True:
            unit = self.next_unit()
            if unit is None:
                break
            gen = self.generation.get(unit.dataset)
            if gen is not None and unit.dataset not in self.generated:
                estimate = generate_seconds(self.plan.dataset(unit.dataset),
                                            self.args.generate_rate)
                if not self.execute(gen, estimate):
                    self.failed.add(unit.dataset)
                    continue
                self.generated.add(unit.dataset)
            self.pending.remove(unit)
            estimate = self.run_estimate(unit)
            if self.execute(unit, estimate):
                self.measured.setdefault(self._kind(unit), []).append(self.record[-1]["seconds"])
            else:
                self.failed.add(unit.dataset)
        left = [u for u in self.pending if u.dataset not in self.failed]
        print(f"[{self.elapsed():6.0f} s] stopped: " + (
            f"the next unit ({left[0].label()}) needs about {self.cost(left[0]):.0f} s, "
            f"{self.args.budget - self.elapsed():.0f} s of the budget are left" if left
            else "nothing left that this machine can run"), flush=True)

    def _kind(self, unit) -> tuple:
        from ..compare.datasets import ScratchDataset

        return unit.preset, not isinstance(self.plan.dataset(unit.dataset), ScratchDataset)


def pack(plan, out: Path) -> int:
    """OUT/runs.tar.gz: the plan and every finished run's run.json, report.json, curves.png."""
    from ..compare.merge import TRAVELS
    from ..compare.plan import PLAN_FILE

    count = 0
    with tarfile.open(out / "runs.tar.gz", "w:gz") as archive:
        archive.add(plan.out / PLAN_FILE, f"{SLOT_FOLDER}/{PLAN_FILE}")
        for key in plan.keys():
            folder = plan.run_dir(key)
            if not (folder / "report.json").is_file():
                continue
            count += 1
            for name in ("run.json", *TRAVELS):
                if (folder / name).is_file():
                    archive.add(folder / name,
                                f"{SLOT_FOLDER}/{folder.relative_to(plan.out)}/{name}")
    return count


def _campaign(args) -> int:
    from ..compare.cli import build_parser, plan_from_args
    from ..compare.cli import main as compare
    from ..compare.task import read_command

    began = time.monotonic()  # preparing WORK counts against the budget too
    command = read_command(args.committed)
    work = Path(args.work).resolve()
    argv = slot_argv(command, work, args.data_root, args.presets)
    if compare(argv) != 0:
        raise UserError(f"could not prepare {work} from {args.committed}/command.json")
    plan = plan_from_args(build_parser().parse_args(argv))
    done = {key for key in plan.keys()
            if (args.committed / plan.run_dir(key).relative_to(plan.out) / "report.json").is_file()}
    slot = Slot(plan, done, args, began)
    print(f"plan: {len(plan.keys())} runs, {len(done)} done in {args.committed}, "
          f"{len(slot.pending)} pending; budget {args.budget:.0f} s", flush=True)
    for line in slot.preview():
        print(line)
    if args.preview:
        return 0
    slot.run()
    args.out.mkdir(parents=True, exist_ok=True)
    packed = pack(plan, args.out)
    (args.out / "slot.json").write_text(json.dumps(
        {"budget_s": args.budget, "elapsed_s": round(slot.elapsed(), 1), "units": slot.record,
         "runs_packed": packed}, indent=1) + "\n")
    print(f"{packed} finished run(s) in {args.out / 'runs.tar.gz'}; merge them with: tar xzf "
          f"runs.tar.gz -C /tmp/slot && python -m local_eval compare {args.committed} --merge "
          f"/tmp/slot/{SLOT_FOLDER}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = OneLineParser(prog="python -m local_eval gpu-campaign", description=__doc__)
    parser.add_argument("committed", type=Path, help="the committed comparison folder")
    parser.add_argument("--work", required=True, help="where this machine runs the units")
    parser.add_argument("--out", type=Path, required=True, help="runs.tar.gz and slot.json")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds (default: 480)")
    parser.add_argument("--grace", type=float, default=60.0,
                        help="a unit past the budget by this many seconds is stopped")
    parser.add_argument("--data-root", help="where the downstream sets are on this machine")
    parser.add_argument("--presets", help="replace the plan's presets (DRY=1: smoke)")
    parser.add_argument("--run-seconds", type=float,
                        help="a run's estimate instead of the GPU arithmetic (DRY=1 on CPU)")
    parser.add_argument("--generate-rate", type=float, default=GENERATE_RATE_224,
                        help="generated images/s at 224 px (default: 883, 16 cores + GPU)")
    parser.add_argument("--preview", action="store_true",
                        help="prepare WORK, print the slot's plan and timing, run nothing")
    args = parser.parse_args(argv)
    return run_command(lambda: _campaign(args))


if __name__ == "__main__":
    sys.exit(main())
