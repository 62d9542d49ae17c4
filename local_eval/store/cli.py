"""`python -m local_eval store DATA`: decode an ImageFolder once into an image store.

Runs and comparisons with `--loader store` (the default) build the store they need themselves;
this command builds it ahead (say on a machine with more cores) or into a chosen --out, and
with --verify hashes every image of an existing store against the hashes recorded when it was
built (every open checks the labels and a sample of the images; integrity.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from submission.tools.command import OneLineParser, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m local_eval store",
        description="Decode a generated ImageFolder once into one uint8 array (N, H, W, 3) read "
                    "as a memory map, plus labels and a manifest; pre-training with --loader "
                    "store reads it instead of decoding PNG files every epoch. Rerun to resume "
                    "an interrupted build; a store older than its folder is rebuilt.")
    parser.add_argument("data", type=Path, help="generated ImageFolder root")
    parser.add_argument("--out", type=Path,
                        help="store folder (default: the cache, $LOCAL_EVAL_STORES or "
                             "~/.cache/local_eval/stores/<key of DATA's path>)")
    parser.add_argument("--workers", type=int,
                        help="decoding processes (default: the usable cores)")
    parser.add_argument("--verify", action="store_true",
                        help="hash every image of the store against the hashes recorded when it "
                             "was built (every open hashes a sample: the first, the last and two "
                             "random chunks of 256 images); a damaged store in the cache is "
                             "rebuilt, one in --out refused")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _store(args), "interrupted; rerun the same command to resume "
                                             "the build")


def _store(args: argparse.Namespace) -> int:
    from submission.paths import check_output_outside_inputs
    from submission.system import available_cores

    from ..core.limits import WORKERS, check_bound
    from ..datasets.common import check_image_folder
    from ..datasets.fingerprint import forget
    from .layout import check_store_folder, default_store_dir

    if args.workers is not None:  # decoding processes: at least one
        check_bound("--workers", args.workers, WORKERS._replace(low=1))
    check_image_folder(args.data, "DATA", "DATA")
    folder = args.out if args.out is not None else default_store_dir(args.data)
    # a store written into the data would be listed as images of it (one rule: submission.paths)
    check_output_outside_inputs(folder, {"DATA": args.data}, "--out" if args.out is not None
                                else "the store folder (set by LOCAL_EVAL_STORES)")
    check_store_folder(folder)
    forget()
    from .build import open_store

    workers = available_cores() if args.workers is None else args.workers
    began = time.monotonic()
    store = open_store(args.data, folder, workers, progress=not args.no_progress,
                       verify=args.verify)
    count, height, width, _ = store.shape
    size = (folder / "images.u8").stat().st_size
    print(f"store {folder}: {count} images of {width}x{height} px in "
          f"{len(store.classes)} classes, {size / 1e9:.2f} GB")
    if args.verify:
        print(f"verified: labels and all {len(store.manifest['image_sha256'])} image chunks "
              f"match the hashes recorded at build time ({time.monotonic() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
