"""`python -m submission pack OUT.zip [generate options]`: the zip uploaded to Signate.

Zip root (what the server unpacks):
  params/config.json      the frozen `GenerationConfig`
  params/...              the data family's files (`Family.packed_params`; the fractal family: bank.npz,
                          its category bank, with `bank_path` null in the config: the adapter points it there)
  requirements.txt        what the server image lacks (submission/server_requirements.txt)
  src/generator.py        the server's entry point (submission/server_generator.py)
  src/submission/...      the package's .py files

The zip is byte-deterministic: entries sorted, fixed timestamps and permissions, and the bank's
own .npz (itself a zip) rewritten the same way; packing twice gives identical bytes.
"""
from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path
from typing import Dict

from ..config import GenerationConfig
from ..errors import UserError
from ..families import create_family
from ..fileio import check_writable_target, deterministic_zip, make_dirs, write_atomic
from ..paths import check_not_inside_a_dataset

HELP = "write the Signate submission zip: params/ (bank + config), src/ (generator + package), requirements.txt"

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # submission/
GENERATOR_TEMPLATE = PACKAGE_DIR / "server_generator.py"
# What stays home: the developer tools, the command line that runs them, and the adapter (shipped
# once, as src/generator.py). The zip carries only the code that runs on the server.
NOT_SHIPPED = ("tools", "__main__.py", GENERATOR_TEMPLATE.name)
SERVER_REQUIREMENTS = PACKAGE_DIR / "server_requirements.txt"
CONTEST_CLASSES = CONTEST_IMAGES_PER_CLASS = 1000
# "auto" on the server would mean splat on CUDA, which ran on an H200 under torch 2.11 (README
# "Measured on a GPU") but never under the server's torch 2.0.1 / CUDA 11.7. On CPU the packed
# generator is tested under the server's exact stack and needs about 13 minutes on its 40 cores
# (projected from 518 images/s on 16), against a 12-hour limit, so a pack runs on CPU unless
# --device says otherwise.
PACKED_DEFAULT_DEVICE = "cpu"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .options import add_generation_arguments

    parser.add_argument("out", metavar="OUT.zip", help="the zip to write, e.g. dist/submission.zip")
    add_generation_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace OUT.zip if it exists")


def run(args: argparse.Namespace) -> int:
    from .options import config_from_args

    config = config_from_args(args)
    if args.device is None and config.device == "auto":
        config = config.replace(device=PACKED_DEFAULT_DEVICE)
    out = Path(args.out)
    check_pack_target(out, overwrite=bool(getattr(args, "overwrite", False)))
    check_packable(config)
    print(f"pack: preparing the {config.family} family's files for {config.classes} classes...", flush=True)
    data = build_zip_bytes(config)
    make_dirs(out.parent, "OUT.zip's")
    write_atomic(out, data)
    print(summary(out, config, data))
    return 0


def check_pack_target(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() != ".zip":
        raise UserError(f"{out} does not end in .zip; name the submission e.g. dist/submission.zip")
    # Before anything slow: under a file, an over-long name, an unwritable folder or disk is one line.
    check_writable_target(out, "OUT.zip")
    check_not_inside_a_dataset(out, "OUT.zip")
    if out.is_dir():
        raise UserError(f"{out} is a directory; give a file name such as {out / 'submission.zip'}")
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it or choose another name")


def check_packable(config: GenerationConfig) -> None:
    """The server runs one process that must write the whole dataset from params/ alone."""
    if config.shard_count != 1:
        raise UserError(f"a submission generates every class; drop --shard (got {config.shard_index}/{config.shard_count})")
    for path in (GENERATOR_TEMPLATE, SERVER_REQUIREMENTS):
        if not path.is_file():
            raise UserError(f"{path} is missing from the package; restore it from git")


def build_zip_bytes(config: GenerationConfig) -> bytes:
    """The submission zip for `config` as bytes (deterministic for a given config and source tree)."""
    family = create_family(config.family)
    params = family.packed_params(config, progress=True)
    files: Dict[str, bytes] = {
        **{f"params/{name}": data for name, data in params.items()},
        "params/config.json": (family.packed_config(config).to_json() + "\n").encode("utf-8"),
        **packed_code(),
    }
    return deterministic_zip(files)


def packed_code() -> Dict[str, bytes]:
    """The zip's code entries: requirements.txt, src/generator.py and src/submission/'s .py files."""
    files = {"requirements.txt": SERVER_REQUIREMENTS.read_bytes(), "src/generator.py": GENERATOR_TEMPLATE.read_bytes()}
    for source in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = source.relative_to(PACKAGE_DIR)
        if "__pycache__" not in relative.parts and relative.parts[0] not in NOT_SHIPPED:
            files[f"src/submission/{relative.as_posix()}"] = source.read_bytes()
    return files


def summary(out: Path, config: GenerationConfig, data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        n_files = sum(1 for name in archive.namelist() if not name.endswith("/"))
    lines = [
        f"wrote {out} ({len(data) / 2**20:.2f} MiB, {n_files} files)",
        f"  dataset:   {config.classes} classes x {config.images_per_class} images, {config.image_size} px "
        f"{config.image_format}, seed {config.seed}",
        f"  family:    {create_family(config.family).describe(config)}",
        f"  execution: device {config.device}, batch {config.batch_size}, "
        f"workers {config.workers if config.workers is not None else 'all cores'}",
        f"  augment:   image {'on (albumentations)' if config.image_augment.enabled else 'off'}",
        "  next:      python -m submission rehearse " + f"{out} <OUTDIR> --classes 2 --images-per-class 4",
    ]
    if (config.classes, config.images_per_class) != (CONTEST_CLASSES, CONTEST_IMAGES_PER_CLASS):
        lines.append(f"note: the contest expects {CONTEST_CLASSES} x {CONTEST_IMAGES_PER_CLASS} images; "
                     "this pack is for a local trial only")
    return "\n".join(lines)
