"""`python -m submission`: a thin command line over the library functions (generate, verify, preview,
recipes, and the bench, pack and rehearse tools), for every data family."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from ..errors import UserError
from .command import OneLineParser, run_command
from .options import add_generation_arguments, config_from_args

# Subcommands implemented in their own modules; each defines HELP, add_arguments(parser), run(args).
# Only the module of the command being run is imported, so `--help` and bad options answer fast.
MODULE_COMMANDS = {
    "bench": ("submission.tools.bench", "time the renderers side by side (and a real generate, --end-to-end)"),
    "pack": ("submission.tools.pack", "write the Signate submission zip (params/, src/, requirements.txt)"),
    "rehearse": ("submission.tools.rehearse", "run a submission zip exactly as the Signate server does, then validate"),
}


def _run_generate(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from ..pipeline import run_generation

    report = run_generation(args.output_dir, config, overwrite=args.overwrite, progress=not args.quiet,
                            overwrite_all=args.overwrite_all)
    if report.images:
        print(f"wrote {report.images} images ({report.classes_written} classes, {report.classes_skipped} already done) "
              f"to {report.output_dir} in {report.seconds:.1f} s: {report.images_per_s:.1f} images/s "
              f"[{report.engine}, {report.workers} workers]")
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    from .verify import verify_dataset

    report = verify_dataset(args.dataset, classes=args.classes, images_per_class=args.images_per_class,
                            workers=args.workers, progress=not args.quiet)
    print(f"OK: {report.classes} classes, {report.images} images, all {report.image_size[0]}x{report.image_size[1]} "
          f"{report.mode}, readable and non-blank")
    return 0


def _run_preview(args: argparse.Namespace) -> int:
    from .preview import contact_sheet, recipe_contact_sheet

    # `is not None`: an empty --recipe/--recipes (an unset shell variable) is an error, never "none given"
    if args.recipe is not None:
        recipes = [args.recipe]
    elif args.recipes is not None:
        recipes = args.recipes.split(",")
        if not all(recipes):
            raise UserError(f"--recipes takes recipe names separated by commas (e.g. fractal,glyphs), got {args.recipes!r}")
    else:
        recipes = []
    if (args.dataset is None) == (not recipes):
        raise UserError("preview takes a dataset folder DIR or --recipe NAME / --recipes A,B,C (one of them)")
    if args.dataset is not None:
        if args.image_size is not None or args.seed is not None:
            raise UserError("--image-size and --seed go with --recipe/--recipes; a dataset's images are already made")
        path = contact_sheet(args.dataset, args.out, rows=args.rows, samples=args.samples, tile=args.tile)
    else:
        path = recipe_contact_sheet(recipes, args.out, rows=args.rows, samples=args.samples, tile=args.tile,
                                    image_size=args.image_size, seed=args.seed)
    print(f"preview written to {path}")
    return 0


def _run_recipes(args: argparse.Namespace) -> int:
    from ..recipes import create_recipe, describe_recipe, list_recipes

    for name in list_recipes():
        config = create_recipe(name)
        print(f"{name:<28} {describe_recipe(name)} [family {config.family}, {config.image_size} px]")
    return 0


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The full parser; `command` names the module subcommand to load (others get a stub parser)."""
    parser = OneLineParser(prog="python -m submission", description=(
        "Generate a formula-driven pre-training dataset as an ImageFolder tree (data families: fractal, "
        "3D IFS point clouds; glyphs, layered CJK characters; visualatom, sinusoidal-wave contours; see "
        "`recipes`), check it, preview it, benchmark the fractal renderers, and pack it for the Signate server."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="write the dataset (resumable; rerun the same command after a kill)",
                       description="Write OUT/<class>/<class>_<image>.<ext>. A rerun resumes an unfinished run of the same config.")
    p.add_argument("output_dir", metavar="OUT", help="output directory (created; must be empty or an unfinished run)")
    add_generation_arguments(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace generate's own output in OUT (class folders of images, .generate-state/); "
                        "refused when OUT holds anything else")
    p.add_argument("--overwrite-all", action="store_true",
                   help="like --overwrite, but also delete files generate did not write (never the root, "
                        "your home or a folder holding the current directory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_generate)

    p = sub.add_parser("verify", help="run the organizer's checks (counts, readable, one size/channels, no blanks)")
    p.add_argument("dataset", metavar="DIR")
    p.add_argument("--classes", type=int, help="expected number of class folders (default: any)")
    p.add_argument("--images-per-class", type=int, help="expected images per class (default: any, but all equal)")
    p.add_argument("--workers", type=int, help="processes reading images (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_verify)

    p = sub.add_parser("preview", help="write a contact sheet PNG (classes x samples) of a dataset or of recipes",
                       description="A contact sheet of a generated dataset DIR, or of recipes rendered in memory "
                                   "(--recipe NAME, or --recipes A,B,C for rows of several; nothing is written but the PNG).")
    p.add_argument("dataset", metavar="DIR", nargs="?", help="a dataset folder written by generate")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--recipe", metavar="NAME", help="render this recipe's first classes instead of reading DIR")
    which.add_argument("--recipes", metavar="A,B,C", help="several recipes, their rows stacked and labelled by name")
    p.add_argument("--image-size", type=int, metavar="N", help="render the recipes at this size (default: the recipe's)")
    p.add_argument("--seed", type=int, help="render the recipes with this seed (default: the recipe's)")
    p.add_argument("--out", required=True, metavar="PNG", help="where to write the picture (.png, or .jpg for JPEG)")
    p.add_argument("--rows", type=int, default=8,
                   help="classes shown: spread over a dataset, the first ones of a recipe (default 8)")
    p.add_argument("--samples", type=int, default=8, help="images per class (default 8)")
    p.add_argument("--tile", type=int, default=96, help="tile side in pixels (default 96)")
    p.set_defaults(func=_run_preview)

    p = sub.add_parser("recipes", help="list the named recipes (--recipe NAME of generate, preview and pack)")
    p.set_defaults(func=_run_recipes)

    for name, (module_name, help_text) in MODULE_COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in MODULE_COMMANDS else None).parse_args(argv)
    return run_command(lambda: args.func(args))
