"""The command-line options that make a `GenerationConfig` (shared by generate, pack and bench):
one option per config field, its help text and default read from the dataclass itself."""
from __future__ import annotations

import argparse
from typing import Any, Dict

from ..config import IMAGE_FORMATS, GenerationConfig
from ..errors import UserError
from ..paths import describe_path
from ..recipes import create_recipe, list_recipes

# (option name, config field, argparse type, extra argparse keywords)
DATASET_OPTIONS = (("--classes", "classes", int, {}), ("--images-per-class", "images_per_class", int, {}),
                   ("--image-size", "image_size", int, {}), ("--points", "points", int, {}),
                   ("--radius", "radius", float, {}), ("--seed", "seed", int, {}),
                   ("--format", "image_format", str, {"choices": IMAGE_FORMATS}))
# Options that only the fractal family reads: given with another family they would be silently ignored.
FRACTAL_ONLY_OPTIONS = (("--points", "points"), ("--radius", "radius"), ("--backend", "backend"), ("--bank", "bank_path"))
EXECUTION_OPTIONS = (("--device", "device", str, {}), ("--backend", "backend", str, {}),
                     ("--workers", "workers", int, {}), ("--batch-size", "batch_size", int, {}),
                     ("--bank", "bank_path", str, {"metavar": "NPZ"}))


def field_help(name: str) -> str:
    """A config field's help text with its default, e.g. "square image side in pixels (default 384)"."""
    spec = GenerationConfig.field_spec(name)
    text = spec.metadata["help"]
    return text if spec.default is None or "default" in text else f"{text} (default {spec.default})"


def _shard(text: str):
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    return index, count


def add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that make a `GenerationConfig`; omitted ones keep the default (or --config's value)."""
    dataset = parser.add_argument_group("dataset (defaults: the contest setting)")
    start = dataset.add_mutually_exclusive_group()
    start.add_argument("--recipe", metavar="NAME", help=f"start from a named recipe (default fractal; known: "
                       f"{', '.join(list_recipes())}; see `python -m submission recipes`)")
    start.add_argument("--config", metavar="JSON", help="start from a saved GenerationConfig (e.g. params/config.json)")
    execution = parser.add_argument_group("execution (do not change the images)")
    for group, options in ((dataset, DATASET_OPTIONS), (execution, EXECUTION_OPTIONS)):
        for flag, name, kind, extra in options:
            group.add_argument(flag, dest=name, type=kind, help=field_help(name).replace("%", "%%"), **extra)
    execution.add_argument("--shard", type=_shard, metavar="I/N", help="generate only classes c with c %% N == I (default 0/1)")


def config_from_args(args: argparse.Namespace) -> GenerationConfig:
    config_file, recipe = getattr(args, "config", None), getattr(args, "recipe", None)
    # `is not None`: an empty value (an unset shell variable) is refused, never read as "the default"
    if config_file is not None:
        if not config_file:
            raise UserError("--config is empty; give a GenerationConfig JSON file (e.g. params/config.json)")
        base = GenerationConfig.from_file(config_file)
    else:
        base = create_recipe("fractal" if recipe is None else recipe)
    bank = getattr(args, "bank_path", None)
    if bank and describe_path(bank) not in ("a file", "missing"):  # a FIFO would block the bank's reader forever
        raise UserError(f"--bank {bank} is {describe_path(bank)}, not a regular file; give a category bank .npz "
                        "(e.g. params/bank.npz of a pack)")
    shard_index, shard_count = args.shard if args.shard else (None, None)
    given: Dict[str, Any] = {name: getattr(args, name) for _, name, _, _ in DATASET_OPTIONS + EXECUTION_OPTIONS}
    if base.family != "fractal":
        ignored = [flag for flag, name in FRACTAL_ONLY_OPTIONS if given.get(name) is not None]
        if ignored:
            raise UserError(f"{', '.join(ignored)} only applies to the fractal family, and this config's family is "
                            f"{base.family}; drop {'it' if len(ignored) == 1 else 'them'}")
    return base.with_overrides(**given, shard_index=shard_index, shard_count=shard_count)
