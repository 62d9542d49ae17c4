"""What the run and compare command lines share: where the data is, how the processes run, and
the recipe: one --FIELD per EvalConfig field, parsed by type.

`python -m local_eval run` and `python -m local_eval compare` share it (torch-free, so that a
bad flag is refused at once); an override of None keeps the
preset's value, and 'none' on the command line unsets an Optional field.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional

from submission.config import DEVICES
from submission.errors import UserError
from submission.system import available_cores

from ..core.config import EvalConfig, field_help
from ..core.limits import REPEATS, STOP_AFTER_EPOCHS, WORKERS, check_bound
from ..core.presets import PRESETS, build_config, default_downstream, preset_config
from ..core.world import world_from_env

# Where the named downstream sets are when --data-root is not given: data/ in the repository
# (gitignored), where `make downstream` lays out Fashion-MNIST.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2] / "data"
# Written on the command line for an Optional field to mean "unset" (all classes, no RandAugment).
UNSET_WORDS = ("none", "all", "off")
_UNSET = object()
LOADERS = ("store", "pil")
_METAVARS = {int: "N", float: "X", str: "NAME", bool: "BOOL"}


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _tuple_parser(hint: Any) -> Any:
    """argparse `type` for a Tuple[float, ...] field: comma-separated numbers."""
    def parse(text: str) -> tuple:
        try:
            return tuple(float(item) for item in text.split(","))
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got "
                                             f"{text!r}") from error

    parse.__name__ = "list of numbers"
    return parse


def _field_parser(hint: Any) -> Any:
    """argparse `type` for a config field of type `hint` (Optional[...] accepts 'none')."""
    if typing.get_origin(hint) is tuple:
        return _tuple_parser(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = len(args) == 1
    base = args[0] if optional else hint
    convert = _bool if base is bool else base

    def parse(text: str) -> Any:
        if optional and text.lower() in UNSET_WORDS:
            return _UNSET
        try:
            return convert(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"expected {base.__name__}, got {text!r}") from error

    parse.__name__ = base.__name__  # argparse names the type in its messages
    return parse


def _metavar(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return "X,X"
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return _METAVARS.get(args[0] if args else hint, "X")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{item:.4g}" for item in value)
    return str(value)


def _preset_values(name: str) -> str:
    """The field's value per preset, presets with one value grouped: 'smoke, quick=0.5; ...'."""
    groups: Dict[str, List[str]] = {}
    for preset in PRESETS:
        groups.setdefault(_show(getattr(preset_config(preset), name)), []).append(preset)
    if len(groups) == 1:
        return f"every preset={next(iter(groups))}"
    return "; ".join(f"{', '.join(presets)}={value}" for value, presets in groups.items())


def add_data_and_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the downstream data is and how the processes run: shared by both command lines."""
    parser.add_argument("--data-root", type=Path,
                        help="folder holding the named downstream sets in torchvision's layouts "
                             "(cifar-10-batches-py/, MNIST/raw/, FashionMNIST/raw/, caltech101/, "
                             "...; default: data/ in the repository, where make downstream puts "
                             "Fashion-MNIST)")
    parser.add_argument("--cifar-root", type=Path, help="deprecated: the same as --data-root")
    parser.add_argument("--download", action="store_true",
                        help="download the listed named sets into --data-root first with "
                             "torchvision (needs internet)")
    parser.add_argument("--downstream-dir", type=Path,
                        help="ImageFolder pair DIR/train/<class>/* and DIR/val/<class>/*")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="auto: cuda when available (default: auto)")
    parser.add_argument("--workers", type=int,
                        help="data-loading worker processes per training process (default: "
                             "the cores shared out over the processes)")
    parser.add_argument("--loader", default="store", choices=LOADERS,
                        help="how pre-training reads --data: store (decoded once into an image "
                             "store in the cache, augmented on the device) or pil (PNG files "
                             "decoded and augmented by the loader workers every epoch, the "
                             "reference; also for images of mixed sizes) (default: store)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_repeats_argument(parser: argparse.ArgumentParser) -> None:
    """--finetune-repeats K: shared by run and compare."""
    parser.add_argument("--finetune-repeats", type=int, default=1, metavar="K",
                        help="fine-tune the one pre-trained backbone K times with different "
                             "fine-tuning seeds and score their mean: cheaper than K seeds "
                             "where fine-tuning noise dominates (docs/compare.md 'Fine-tuning "
                             "repeats'; default: 1)")


def check_runtime_arguments(args: argparse.Namespace) -> None:
    """--workers, --stop-after-epochs and --finetune-repeats within their bounds
    (local_eval.core.limits), before anything is read: shared by run and compare."""
    if args.stop_after_epochs is not None:
        check_bound("--stop-after-epochs", args.stop_after_epochs, STOP_AFTER_EPOCHS)
    if args.workers is not None:
        if args.workers < 0:
            raise UserError(f"--workers must not be negative, got {args.workers}")
        check_bound("--workers", args.workers, WORKERS)
    check_bound("--finetune-repeats", args.finetune_repeats, REPEATS)


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """--epochs, --batch-size and one --FIELD per EvalConfig field (None: the preset's value)."""
    parser.add_argument("--epochs", type=int, help="set both pretrain and finetune epochs")
    parser.add_argument("--batch-size", type=int,
                        help="set both pretrain and finetune (global) batch sizes")
    group = parser.add_argument_group(
        "recipe overrides", "each defaults to the preset's value (shown per preset in "
        "brackets); 'none' unsets an optional one")
    hints = typing.get_type_hints(EvalConfig)
    for field in dataclasses.fields(EvalConfig):
        group.add_argument("--" + field.name.replace("_", "-"), dest=field.name,
                           type=_field_parser(hints[field.name]), default=None,
                           metavar=_metavar(hints[field.name]),
                           help=f"{field_help(field.name)} [{_preset_values(field.name)}]")


def overrides_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    overrides: Dict[str, Any] = {}
    if args.epochs is not None:
        overrides.update(pretrain_epochs=args.epochs, finetune_epochs=args.epochs)
    if args.batch_size is not None:
        overrides.update(pretrain_batch_size=args.batch_size, finetune_batch_size=args.batch_size)
    for field in dataclasses.fields(EvalConfig):
        value = getattr(args, field.name)
        if value is not None:
            overrides[field.name] = value
    return overrides


def config_from_args(args: argparse.Namespace, preset: Optional[str] = None) -> EvalConfig:
    """The config of `preset` (default: --preset) with the command line's overrides."""
    overrides = overrides_from_args(args)
    unset = [name for name, value in overrides.items() if value is _UNSET]
    config = build_config(preset or args.preset,
                          {k: v for k, v in overrides.items() if v is not _UNSET})
    return config.replace(**{name: None for name in unset}) if unset else config


def data_root_from_args(args: argparse.Namespace) -> Path:
    """--data-root, or the deprecated --cifar-root (said once on stderr), or the default."""
    if args.cifar_root is not None:
        if args.data_root is not None:
            raise UserError("--cifar-root is a deprecated name of --data-root; give only "
                            "--data-root")
        if world_from_env()[0] == 0:  # once, not once per torchrun process
            print("warning: --cifar-root is deprecated; use --data-root (the same folder)",
                  file=sys.stderr)
        return args.cifar_root
    return DEFAULT_DATA_ROOT if args.data_root is None else args.data_root


def resolve_downstream(text: Optional[str], downstream_dir: Optional[Path], preset: str) -> str:
    """--downstream as given, else folder with --downstream-dir, else the preset's default."""
    if text is None:
        return "folder" if downstream_dir is not None else default_downstream(preset)
    if downstream_dir is not None and "folder" not in [t.strip() for t in text.split(",")]:
        raise UserError(f"--downstream-dir is given but --downstream {text} does not list "
                        f"'folder'; add folder to the list, or drop --downstream-dir")
    return text


def loader_workers_per_process(world_size: int) -> int:
    """Loader processes per training process: the usable cores shared out, at least 1.

    Decoding and augmenting caps pre-training on a GPU: on an H200 with 16 cores the contest
    preset's loader gave 1,586 images/s with 8 workers and 3,160 with 16 (ViT-Tiny itself trains
    at 8,556 in bf16), so every core is used; README "Measured on a GPU".
    """
    return max(1, available_cores() // world_size)
