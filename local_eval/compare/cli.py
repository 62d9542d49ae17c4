"""`python -m local_eval compare`: which dataset scores better, with how much confidence.

As for `python -m local_eval`, torch is imported only after the command line is parsed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

from submission.errors import UserError
from submission.tools.command import OneLineParser, run_command

from ..core.presets import PRESETS
from ..core.world import world_from_env
from ..datasets.fingerprint import forget as forget_fingerprints
from ..run.arguments import (
    add_data_and_runtime_arguments,
    add_recipe_arguments,
    add_repeats_argument,
    check_runtime_arguments,
    config_from_args,
    data_root_from_args,
    loader_workers_per_process,
    resolve_downstream,
)
from .executors import add_executor_arguments, folder_mode

if TYPE_CHECKING:
    from .plan import ComparePlan

# Each seed is a full training run per dataset and preset; 3-10 are what a comparison needs.
MAX_SEEDS = 1000


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m local_eval compare",
        description="Evaluate several pre-training datasets with the same presets and seeds and "
                    "say which scores better: every (dataset, preset, seed) is one local_eval "
                    "run in OUT/runs/<dataset>/<preset>/seed<k>/; OUT/compare.{json,md,png} "
                    "hold each score, the mean and std over seeds, and the paired difference to "
                    "the baseline with a 95% t-interval. Rerun the same command to resume.")
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help="NAME=PATH (a generated ImageFolder), recipe:NAME or NAME=CONFIG.json "
                             "(a generation config, generated once under OUT/cache, sized to the "
                             "presets), scratch (no pre-training) or noise (random images shaped "
                             "like the first folder or generated dataset, written once under "
                             "OUT/cache)")
    parser.add_argument("--calibrate", metavar="TABLES",
                        help="also (or only) the recipes of the 4th-place tables "
                             "(image_augment, point_cloud, or all) as datasets, and print per "
                             "preset the Spearman correlation of our scores with the published "
                             "ones (fractal becomes the baseline)")
    parser.add_argument("--out", type=Path, help="comparison folder (required)")
    parser.add_argument("--presets", default="quick",
                        help=f"comma-separated evaluator presets, from {', '.join(PRESETS)} "
                             f"(default: quick)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="training seeds 0..K-1, the same for every dataset (default: 3)")
    parser.add_argument("--baseline", help="dataset the others are compared with (default: the "
                                           "first)")
    parser.add_argument("--target-diff", type=float, metavar="X",
                        help="the score difference whose seeds-needed the report gives "
                             "(default: 5%% of the baseline's mean score per preset)")
    parser.add_argument("--downstream", metavar="SETS",
                        help="as for python -m local_eval (default: each preset's own)")
    add_data_and_runtime_arguments(parser)
    parser.add_argument("--stop-after-epochs", type=int, metavar="N",
                        help="stop after N training epochs of this invocation, over all runs; "
                             "rerun to continue")
    add_repeats_argument(parser)
    add_recipe_arguments(parser)
    add_executor_arguments(parser)
    parser.add_argument("--merge", nargs="+", type=Path, metavar="OTHER_OUT",
                        help="compare OUT --merge OTHER_OUT...: take in the finished runs of "
                             "other comparison folders (made on other machines) that are runs "
                             "of OUT's plan, then rewrite OUT's report (docs/compare.md)")
    return parser


def plan_from_args(args: argparse.Namespace) -> "ComparePlan":
    """The plan the command line asks for (raises UserError before anything is written)."""
    if args.out is None:
        raise UserError("--out is required: the comparison folder (e.g. --out cmp)")
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be from 1 to {MAX_SEEDS} (each seed is one run per "
                        f"dataset and preset), got {args.seeds}")
    if args.seed is not None:
        raise UserError("compare sets each run's seed itself (0..K-1); drop --seed and use "
                        "--seeds K")
    check_runtime_arguments(args)
    presets = [p.strip() for p in args.presets.split(",")]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise UserError(f"unknown preset {unknown[0]!r} in --presets; known presets: "
                        f"{', '.join(PRESETS)}")
    if len(set(presets)) != len(presets):
        raise UserError(f"--presets {args.presets} lists a preset twice; list each once")
    configs = {p: config_from_args(args, p) for p in presets}
    from .calibration import BEST_ENTRY
    from .datasets import parse_dataset, resolve_datasets
    from .plan import ComparePlan

    tables, texts = _calibration_tables(args.calibrate), list(args.datasets)
    listed = {parse_dataset(text).name for text in texts}
    texts = [f"recipe:{r}" for r in _calibration_recipes(tables) if r not in listed] + texts
    if not texts:
        raise UserError("name at least one DATASET (NAME=PATH, recipe:NAME, scratch, noise) or "
                        "--calibrate TABLES")
    datasets = resolve_datasets([parse_dataset(text) for text in texts], list(configs.values()))
    names = [d.name for d in datasets]
    baseline = args.baseline or (BEST_ENTRY if tables and BEST_ENTRY in names else names[0])
    downstream = {p: resolve_downstream(args.downstream, args.downstream_dir, p)
                  for p in presets}
    return ComparePlan(out=args.out, datasets=tuple(datasets), configs=configs,
                       downstream=downstream, seeds=tuple(range(args.seeds)), baseline=baseline,
                       data_root=data_root_from_args(args), downstream_dir=args.downstream_dir,
                       download=args.download, calibrate=tables,
                       target_diff=args.target_diff, finetune_repeats=args.finetune_repeats,
                       loader=args.loader)


def _calibration_tables(text: Optional[str]) -> Tuple[str, ...]:
    from .calibration import TABLES

    if not text:
        return ()
    names = list(TABLES) if text == "all" else [t.strip() for t in text.split(",")]
    unknown = [t for t in names if t not in TABLES]
    if unknown:
        raise UserError(f"unknown calibration table {unknown[0]!r}; known: {', '.join(TABLES)} "
                        f"(or all)")
    return tuple(dict.fromkeys(names))


def _calibration_recipes(tables: Tuple[str, ...]) -> List[str]:
    """The tables' recipes, `fractal-4th` (in both tables: the baseline) first."""
    from .calibration import BEST_ENTRY, published

    recipes = [r for t in tables for r in published(t)]
    return sorted(dict.fromkeys(recipes), key=lambda r: (r != BEST_ENTRY, recipes.index(r)))


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.merge is not None:
        from .merge import merge_command

        return run_command(lambda: merge_command(args, build_parser, plan_from_args),
                           "interrupted; run the same merge again to finish it")
    if folder_mode(args):
        from .folder import folder_command

        return run_command(lambda: folder_command(args, _plan_in_folder),
                           "interrupted; run the same task again to resume it")
    return run_command(lambda: _compare(args, argv), lambda: _interrupted_line(args.out))


def _plan_in_folder(argv: List[str], out: Path) -> Tuple["ComparePlan", argparse.Namespace]:
    """The plan of a recorded command line, for the comparison folder `out` (where it is now:
    it may have moved, or be mounted elsewhere on this node)."""
    args = build_parser().parse_args(argv)
    if args.out is None or args.out.resolve() != out:
        args.out = out
    return plan_from_args(args), args


def _interrupted_line(out: Path) -> Optional[str]:
    # Ctrl-C: one line instead of a traceback; every finished epoch is checkpointed.
    if world_from_env()[0] != 0:
        return None
    return f"interrupted; rerun the same command to resume from {out}"


def _compare(args: argparse.Namespace, argv: List[str]) -> int:
    forget_fingerprints()  # look at the data afresh: it may have changed since the last command
    from .executors import check_executor_arguments

    _, world_size, _ = world_from_env()
    check_executor_arguments(args, world_size)
    gpus = None
    if args.parallel is not None or args.gpus:
        from .executors import worker_gpus

        gpus = worker_gpus(args)
    plan = plan_from_args(args)
    from ..core.distributed import init_runtime, resolve_device, shutdown
    from .plan import check_plan, run_compare
    from .report import markdown

    device = resolve_device(args.device)
    check_plan(plan, world_size)
    if args.executor != "local" and not args.prepare_only:
        from .folder import submit_plan

        return submit_plan(plan, args, argv)
    if world_from_env()[0] == 0:
        from .folder import prepare

        prepare(plan, argv, log=print if args.prepare_only else lambda _: None)
    if args.prepare_only:
        return 0
    if args.parallel is not None or args.gpus:
        from .executors import run_parallel

        return run_parallel(plan, args, gpus)
    workers = loader_workers_per_process(world_size) if args.workers is None else args.workers
    runtime = init_runtime(device, workers, progress=not args.no_progress)
    try:
        log = (lambda line: print(line, flush=True)) if runtime.is_main else (lambda _: None)
        summary = run_compare(plan, runtime, args.stop_after_epochs, log=log)
    finally:
        shutdown(runtime)
    if runtime.is_main:
        if summary is None:
            print(f"stopped after {args.stop_after_epochs} epoch(s) as asked; rerun the same "
                  f"command to resume from {plan.out}")
        else:
            print(markdown(summary))
            print(f"results: {plan.out / 'compare.json'}  table: {plan.out / 'compare.md'}  "
                  f"plot: {plan.out / 'compare.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
