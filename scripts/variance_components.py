"""Where the spread of a score comes from, read from a `compare --finetune-repeats F` folder.

    python -m local_eval compare fractal=DATA --presets kit-mobilenet-cpu --seeds 6 \\
        --finetune-repeats 4 --downstream-dir DIGITS --out GRID
    .venv/bin/python scripts/variance_components.py GRID [--dataset fractal] \\
        [--preset kit-mobilenet-cpu] [--diff X]

Prints the pre-training seed, fine-tuning seed and (computed) test-sample components
(local_eval.compare.variance), then per K = 1 and 3 the sd of one run's score, its cost from the
runs' own wall_seconds (minutes of one process), and the seeds and minutes that resolve a
difference of --diff (default: 5% of the mean score) between two recipes at 80% power.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local_eval.compare.variance import (  # noqa: E402
    binomial_sd,
    nested_anova,
    rows,
)
from local_eval.core.metric import scored_epochs  # noqa: E402
from submission.errors import UserError  # noqa: E402
from submission.tools.command import OneLineParser, run_command  # noqa: E402


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="scripts/variance_components.py",
                           description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path, help="a compare folder made with --finetune-repeats")
    parser.add_argument("--dataset", help="dataset name (default: the only or first one)")
    parser.add_argument("--preset", help="preset (default: the only or first one)")
    parser.add_argument("--pretrain-minutes", type=float,
                        help="CPU-minutes of one pre-training, measured elsewhere (default: the "
                             "runs' wall_seconds, which count waiting on a loaded machine)")
    parser.add_argument("--finetune-minutes", type=float,
                        help="CPU-minutes of one fine-tuning (default: from wall_seconds)")
    parser.add_argument("--diff", type=float, help="score difference to resolve (default: 5%% "
                                                   "of the mean score)")
    return parser


def _only(folder: Path, name: Optional[str], what: str) -> Path:
    choices = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not choices:
        raise UserError(f"{folder} holds no {what} folders; pass a compare folder")
    if name is None:
        return folder / choices[0]
    if name not in choices:
        raise UserError(f"no {what} {name!r} in {folder}; there are: {', '.join(choices)}")
    return folder / name


def load_reports(grid: Path, dataset: Optional[str], preset: Optional[str]) -> List[dict]:
    """The finished runs' reports, by seed (a grid still running gives what it has)."""
    runs = _only(_only(grid / "runs", dataset, "dataset"), preset, "preset")
    reports = [json.loads(p.read_text()) for p in runs.glob("seed*/report.json")]
    reports.sort(key=lambda report: report["seed"])
    if not reports:
        raise UserError(f"{runs} holds no finished run (seed*/report.json) yet")
    return reports


def _test_sd(report: dict) -> float:
    """The binomial sd of the run's score: per downstream set, then over their mean."""
    variances = []
    for entry in report["downstream"].values():
        top1 = entry["finetune"]["top1"]
        first, last = scored_epochs(len(top1))
        accuracy = sum(top1[first - 1:last]) / (last - first + 1)
        variances.append(binomial_sd(accuracy, entry["test_images"], last - first + 1) ** 2)
    return math.sqrt(sum(variances)) / len(variances)


def observed_sd(scores: List[List[float]], k: int) -> float:
    """The sample sd over seeds of each seed's mean of its first k repeats (a K = k run)."""
    means = [sum(row[:k]) / k for row in scores]
    mean = sum(means) / len(means)
    return math.sqrt(sum((m - mean) ** 2 for m in means) / (len(means) - 1))


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _report(args))


def _report(args) -> int:
    for flag in ("diff", "pretrain_minutes", "finetune_minutes"):
        value = getattr(args, flag)
        if value is not None and not 0 < value < math.inf:
            raise UserError(f"--{flag.replace('_', '-')} must be a positive number, got {value}")
    reports = load_reports(args.grid, args.dataset, args.preset)
    scores = [r.get("repeat_scores", [r["score"]]) for r in reports]
    parts = nested_anova(scores)
    repeats = parts.repeats
    pretrain = sum(r["wall_seconds"]["pretrain"] for r in reports) / len(reports) / 60
    finetune = sum(r["wall_seconds"]["finetune"] for r in reports) / len(reports) / 60 / repeats
    pretrain = args.pretrain_minutes if args.pretrain_minutes is not None else pretrain
    finetune = args.finetune_minutes if args.finetune_minutes is not None else finetune
    source = "as given" if args.pretrain_minutes or args.finetune_minutes else \
        "wall_seconds of one process"
    test_sd = sum(_test_sd(r) for r in reports) / len(reports)
    diff = args.diff if args.diff is not None else 0.05 * parts.mean
    total = parts.pretrain_var + parts.finetune_var
    print(f"{parts.seeds} pre-training seeds x {repeats} fine-tunings, mean score "
          f"{parts.mean:.2f}; MS between {parts.ms_between:.2f} (df {parts.seeds - 1}), "
          f"MS within {parts.ms_within:.2f} (df {parts.seeds * (repeats - 1)})")
    for name, var in (("pre-training seed", parts.pretrain_var),
                      ("fine-tuning seed", parts.finetune_var)):
        print(f"  {name:<18} sd {math.sqrt(var):6.2f}  ({100 * var / total if total else 0:.0f}% "
              f"of a K = 1 run's variance)")
    print(f"  {'test sample':<18} sd {test_sd:6.2f}  (binomial, computed: the test set is "
          f"fixed, so it is in no spread above)")
    print(f"cost per run: pre-training {pretrain:.2f} min, each fine-tuning {finetune:.2f} min "
          f"({source}); best K by variance x cost: "
          f"{parts.best_repeats(pretrain, finetune):.2f}")
    print(f"K | run sd | min/run | var x min | seeds per recipe for {diff:.2f} | min for both")
    for row in rows(parts, pretrain, finetune, diff):
        print(f"{row['k']} | {row['run_sd']:.2f} | {row['run_cost']:.2f} | "
              f"{row['var_x_cost']:.1f} | {row['seeds']} | {row['cost_to_resolve']:.0f}")
    for k in sorted({1, min(3, repeats)}):
        print(f"observed: the sd over the {parts.seeds} seeds of the mean of their first {k} "
              f"repeat(s) is {observed_sd(scores, k):.2f}")
    print("scores (one row per pre-training seed, one column per fine-tuning repeat):")
    for report, row in zip(reports, scores):
        print(f"  seed {report['seed']}: " + ", ".join(f"{s:.2f}" for s in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
