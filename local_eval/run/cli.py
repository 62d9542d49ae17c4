"""`python -m local_eval run` (or `python -m local_eval --data ...`): estimate the leaderboard
score of a generated dataset.

torch, timm and the training modules are imported only once the command line is parsed and the
recipe validated, so a bad flag or value is refused in a fraction of a second.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from submission.tools.command import OneLineParser, run_command

from ..core.presets import PRESETS
from ..core.world import world_from_env
from ..datasets.fingerprint import forget as forget_fingerprints
from .arguments import (
    add_data_and_runtime_arguments,
    add_recipe_arguments,
    add_repeats_argument,
    check_runtime_arguments,
    config_from_args,
    data_root_from_args,
    loader_workers_per_process,
    resolve_downstream,
)
from .record import RUN_FILE

if TYPE_CHECKING:
    from .spec import RunSpec


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m local_eval run",
        description="Pre-train a model on a generated ImageFolder, fine-tune it on the kit's "
                    "downstream sets or ImageFolder pairs and report the contest metric: the sum of "
                    "(100 - top-1 %) over fine-tuning epochs ceil(E/2)..E, averaged over the "
                    "downstream sets, lower is better.",
        epilog="python -m local_eval --data ... is the same command; python -m local_eval --help "
               "lists the others (compare: several datasets x presets x seeds, with paired "
               "statistics).",
    )
    parser.add_argument("--data", type=Path, required=True, help="generated ImageFolder root")
    parser.add_argument("--out", type=Path, required=True,
                        help="run folder (checkpoints, report.json, curves.png); rerun to resume")
    parser.add_argument("--preset", default="quick", choices=PRESETS,
                        help="smoke: seconds, for tests; quick: ~15-20 min on 2 CPU cores; "
                             "contest: the full 224 px ViT setting for a GPU; kit-mobilenet, "
                             "kit-resnet: the organizer's kit (32 px MobileNetV2, 224 px "
                             "ResNet-18; GPU); kit-mobilenet-gpu: a ~1 min cut for one "
                             "H100/H200-class GPU; kit-mobilenet-cpu: a ~10 min CPU cut of "
                             "kit-mobilenet (default: quick)")
    parser.add_argument("--downstream", metavar="SETS",
                        help="comma-separated fine-tuning sets, scored as their mean: the kit's "
                             "named sets cifar10, cifar100, mnist, fashion-mnist, caltech101, "
                             "caltech256, omniglot (read from --data-root), folder (= "
                             "--downstream-dir) or a folder with train/ and val/ (default: "
                             "cifar10 for kit presets, else cifar100; folder when only "
                             "--downstream-dir is given)")
    add_data_and_runtime_arguments(parser)
    parser.add_argument("--compare-scratch", action="store_true",
                        help="also fine-tune from random initialization and report the gain")
    add_repeats_argument(parser)
    parser.add_argument("--stop-after-epochs", type=int, metavar="N",
                        help="stop after N epochs of this invocation (all phases count); rerun "
                             "the same command to continue from the checkpoints")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config as JSON and exit")
    add_recipe_arguments(parser)
    return parser


def spec_from_args(args: argparse.Namespace) -> "RunSpec":
    check_runtime_arguments(args)
    downstream = resolve_downstream(args.downstream, args.downstream_dir, args.preset)
    config = config_from_args(args)  # validates the recipe: still no torch imported
    from .spec import RunSpec

    return RunSpec(config=config, data=args.data, out=args.out,
                   downstream=downstream, data_root=data_root_from_args(args),
                   downstream_dir=args.downstream_dir, download=args.download,
                   compare_scratch=args.compare_scratch, preset=args.preset,
                   finetune_repeats=args.finetune_repeats,
                   loader=args.loader)


def _summary(report: Dict[str, Any], out: Path) -> List[str]:
    first, last = report["scored_epochs"]
    sets = report["downstream"]
    if len(sets) == 1:
        top1 = next(iter(sets.values()))["finetune"]["top1"]
        lines = [f"score {report['score']:.2f} (sum of 100 - top-1 over fine-tuning epochs "
                 f"{first}-{last}; lower is better); final top-1 {top1[-1]:.2f}%"]
    else:
        per_set = ", ".join(f"{name} {entry['score']:.2f}" for name, entry in sets.items())
        lines = [f"score {report['score']:.2f} (mean over {len(sets)} downstream sets of the sum "
                 f"of 100 - top-1 over fine-tuning epochs {first}-{last}; lower is better): "
                 f"{per_set}"]
    if report.get("finetune_repeats"):
        lines.append(f"the mean of {report['finetune_repeats']} fine-tunings scoring "
                     + ", ".join(f"{score:.2f}" for score in report["repeat_scores"]))
    if report["scratch_score"] is not None:
        lines.append(f"from scratch {report['scratch_score']:.2f}; pre-training gains "
                     f"{report['score_gain_over_scratch']:.2f} (positive: the data helped)")
    lines.append(f"report: {out / 'report.json'}  curves: {out / 'curves.png'}")
    return lines


def _interrupted_line(out: Path) -> Optional[str]:
    # Ctrl-C: one line instead of a traceback; every finished epoch is checkpointed.
    if world_from_env()[0] != 0:
        return None
    if (out / RUN_FILE).is_file():
        return f"interrupted; rerun the same command to resume from {out}"
    return f"interrupted before anything was written to {out}; rerun the same command"


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _run(args), lambda: _interrupted_line(args.out))


def _run(args: argparse.Namespace) -> int:
    forget_fingerprints()  # look at the data afresh: it may have changed since the last command
    if args.print_config:
        print(json.dumps(config_from_args(args).to_dict(), indent=2))
        return 0
    spec = spec_from_args(args)
    from ..core.distributed import init_runtime, resolve_device, shutdown
    from .runner import run
    from .spec import validate

    device = resolve_device(args.device)
    _, world_size, _ = world_from_env()
    validate(spec, world_size)
    workers = loader_workers_per_process(world_size) if args.workers is None else args.workers
    runtime = init_runtime(device, workers, progress=not args.no_progress)
    try:
        report = run(spec, runtime, args.stop_after_epochs)
    finally:
        shutdown(runtime)
    if runtime.is_main:
        if report is None:
            print(f"stopped after {args.stop_after_epochs} epoch(s) as asked; rerun the same "
                  f"command to resume from {spec.out}")
        else:
            print("\n".join(_summary(report, spec.out)))
    return 0
