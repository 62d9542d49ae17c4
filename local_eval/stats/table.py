"""`python -m local_eval stats DATA [DATA ...]`: what a pre-training dataset looks like, measured
without training, on a fixed seeded sample (20 classes x 10 images unless told otherwise); the
statistics are defined in local_eval.stats.images.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from submission.errors import UserError
from submission.limits import MAX_IMAGE_SIZE
from submission.tools.command import OneLineParser, run_command

from ..core.limits import MAX_SEED, STATS_SAMPLE
from .images import KIT_CROPS, dataset_stats


def _percent(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def stats_table(results: Dict[str, Dict[str, Any]]) -> str:
    """A markdown table, one row per dataset."""
    crops = list(dict.fromkeys(c for r in results.values() for c in r["blank_fraction"]))
    lines = ["| dataset | size | classes / images (sampled) | mean RGB | std RGB | colourful "
             f"| {' | '.join(f'blank {c} px' for c in crops)} | edges | centroid acc. (chance) |",
             "|---" * (8 + len(crops)) + "|"]
    for name, r in results.items():
        blank = " | ".join(_percent(r["blank_fraction"].get(c)) for c in crops)
        lines.append(
            f"| {name} | {r['image_size'][0]}x{r['image_size'][1]} | {r['classes']} / "
            f"{r['images']} ({r['sampled_classes']} / {r['sampled_images']}) | "
            f"{' '.join(f'{v:.0f}' for v in r['mean'])} | {' '.join(f'{v:.0f}' for v in r['std'])} "
            f"| {r['colourfulness']:.1f} | {blank} | {_percent(r['edge_density'])} "
            f"| {_percent(r['nearest_centroid_accuracy'])} ({_percent(r['chance'])}) |")
    return "\n".join(lines) + "\n"


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m local_eval stats",
        description="Measure pre-training datasets without training: size, intensity, "
                    "colourfulness, blank crops, edges and nearest-centroid class separability, "
                    "on a fixed seeded sample (seconds per dataset).")
    parser.add_argument("data", nargs="+", metavar="DATA", help="an ImageFolder, or NAME=PATH")
    parser.add_argument("--classes", type=int, default=20, help="classes sampled (default 20)")
    parser.add_argument("--images-per-class", type=int, default=10,
                        help="images sampled per class (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--crops", default=",".join(map(str, KIT_CROPS)),
                        help="comma-separated crop sizes for the blank-crop fraction (default: "
                             "the kit's RandomCrop sizes 32,224; sizes that do not fit: –)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--plot", type=Path, metavar="PNG",
                        help="also draw sample crops per dataset, blank ones framed red")
    return parser


def _named(texts: List[str]) -> Dict[str, Path]:
    named: Dict[str, Path] = {}
    for text in texts:
        name, separator, path = text.partition("=")
        name, path = (name, path) if separator else (Path(text).name or text, text)
        if name in named:
            raise UserError(f"dataset name {name!r} is given twice; name them NAME=PATH")
        named[name] = Path(path).expanduser()
    return named


def _check(args) -> Tuple[Dict[str, Path], Tuple[int, ...]]:
    from submission.paths import check_output_outside_inputs

    from ..datasets.folders import check_image_folder

    if args.classes < 2 or args.images_per_class < 2:
        raise UserError("--classes and --images-per-class must be at least 2 (the separability "
                        "figure leaves one image out of each class)")
    if args.classes * args.images_per_class > STATS_SAMPLE:
        raise UserError(f"--classes x --images-per-class must be at most {STATS_SAMPLE:,} images "
                        f"(the sample is held in memory at once: {STATS_SAMPLE:,} images of 384 px "
                        f"are 4.4 GB), got {args.classes} x {args.images_per_class}")
    if args.seed < 0:
        raise UserError(f"--seed must not be negative, got {args.seed}")
    if args.seed > MAX_SEED:
        raise UserError(f"--seed must be at most {MAX_SEED} (2**31 - 1, as for run), got {args.seed}")
    try:
        crops = tuple(int(c) for c in args.crops.split(","))
    except ValueError:
        raise UserError(f"--crops must be comma-separated pixel sizes, got {args.crops!r}") from None
    if min(crops) < 1:
        raise UserError(f"--crops must be positive sizes, got {args.crops}")
    if max(crops) > MAX_IMAGE_SIZE:
        raise UserError(f"--crops must be sizes of at most {MAX_IMAGE_SIZE} px (the largest image "
                        f"generate makes), got {args.crops}")
    _check_outputs(args)
    named = _named(args.data)
    for name, path in named.items():
        check_image_folder(path, f"dataset {name}", "DATA")
    inputs = {f"dataset {name}": path for name, path in named.items()}
    for path, flag in ((args.json, "--json"), (args.plot, "--plot")):
        if path is not None:  # a figure written into a dataset would join its images
            check_output_outside_inputs(path, inputs, flag)
    return named, crops


def _check_outputs(args) -> None:
    """--json and --plot can be written, checked before any image is read: a folder there, or a
    plot named other than .png (the figure is PNG bytes), would fail after the whole table."""
    from submission.fileio import check_writable_target

    for path, flag in ((args.json, "--json"), (args.plot, "--plot")):
        if path is None:
            continue
        if path.is_dir():
            raise UserError(f"{flag} {path} is a folder; give a file name inside it, e.g. "
                            f"{path / ('stats.json' if flag == '--json' else 'stats.png')}")
        check_writable_target(path, flag)
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UserError(f"--plot {args.plot} must end in .png (the plot is written as PNG)")
    if args.json is not None and args.plot is not None and \
            args.json.resolve() == args.plot.resolve():
        raise UserError(f"--json and --plot name the same file {args.json}; give two names")


def _stats(args) -> int:
    named, crops = _check(args)
    results = {name: dataset_stats(path, args.classes, args.images_per_class, args.seed, crops)
               for name, path in named.items()}
    print(stats_table(results), end="")
    if args.json is not None:
        from ..core.outputs import write_json

        write_json({"datasets": results}, args.json)
    if args.plot is not None:
        from .plot import plot_samples

        plot_samples(named, results, args.plot, min(crops))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _stats(args))


if __name__ == "__main__":
    sys.exit(main())
