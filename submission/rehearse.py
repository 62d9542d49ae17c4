"""`python -m submission rehearse OUT.zip OUTDIR`: run a packed zip exactly as the Signate server does.

The zip is unpacked into a temporary folder; a fresh Python process, started in that folder (not in
`src/`), appends `src/` to `sys.path`, runs `from generator import Generator`,
`Generator.get_params(<params/>)` and `Generator.generate(OUTDIR)`; then the organizer-style
validation runs on OUTDIR (exact counts, PIL-readable, one size and channel count, nothing else).
`--classes/--images-per-class` shrink the run for a local trial by editing the unpacked
params/config.json; the zip itself is never modified.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Optional

from .errors import UserError
from .fileio import check_overwritable, remove_tree_for_overwrite

HELP = "unpack a submission zip and run it as the Signate server does, then validate the dataset"

# What the server executes, as a fresh interpreter sees it: argv = [src, params, out, error_file].
# A `SubmissionSetupError` (the adapter's "cannot run here" message) goes to error_file and exits 2
# so the caller can print it as one line; anything else is a crash and keeps its traceback.
SERVER_SEQUENCE = """\
import sys
src_dir, params_dir, out_dir, error_file = sys.argv[1:5]
sys.path.append(src_dir)
from generator import Generator
try:
    Generator.get_params(params_dir)
except Exception as exc:
    if type(exc).__name__ != "SubmissionSetupError":
        raise
    with open(error_file, "w", encoding="utf-8") as f:
        f.write(str(exc))
    sys.exit(2)
Generator.generate(out_dir)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("zip", metavar="OUT.zip", help="the submission zip written by `python -m submission pack`")
    parser.add_argument("outdir", metavar="OUTDIR", help="where the dataset is written (must not exist, or be empty)")
    parser.add_argument("--classes", type=int, default=None, help="override the packed class count (local trial)")
    parser.add_argument("--images-per-class", type=int, default=None,
                        help="override the packed images per class (local trial)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that plays the server (default: this one), e.g. .venv-server/bin/python")
    parser.add_argument("--overwrite", action="store_true", help="delete a non-empty OUTDIR first")


def run(args: argparse.Namespace) -> int:
    zip_path, outdir = Path(args.zip), Path(args.outdir)
    check_zip(zip_path)
    for name, value in (("--classes", args.classes), ("--images-per-class", args.images_per_class)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be a positive integer, got {value}")
    # Absolute (not resolved: a venv's python is a symlink that must stay one), since the child
    # starts in another directory.
    python = os.path.abspath(shutil.which(args.python) or args.python)
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise UserError(f"--python {args.python} is not an executable interpreter")
    check_outdir(outdir, overwrite=args.overwrite)

    with tempfile.TemporaryDirectory(prefix="rehearse-") as tmp:
        root = Path(tmp) / "unpacked"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(root)
        classes, images_per_class = apply_overrides(root / "params" / "config.json", args.classes, args.images_per_class)
        if outdir.is_dir() and any(outdir.iterdir()):  # checked above: only with --overwrite
            remove_tree_for_overwrite(outdir)
        outdir.mkdir(parents=True, exist_ok=True)  # an empty folder, as the server hands out
        print(f"rehearse: {zip_path} unpacked to {root}; running the server sequence with {python}", flush=True)
        error_file = Path(tmp) / "setup_error.txt"
        command = [python, "-s", "-c", SERVER_SEQUENCE,
                   str(root / "src"), str(root / "params"), str(outdir.resolve()), str(error_file)]
        returncode = subprocess.run(command, cwd=root).returncode  # cwd: the unpack root, not src/
        if returncode == 2 and error_file.is_file():
            raise UserError("the packed generator refused to start: " + error_file.read_text(encoding="utf-8"))
        if returncode != 0:
            raise UserError(f"the packed generator failed with exit code {returncode} (traceback above); "
                            "fix it and re-pack before uploading")

    from .verify import verify_dataset

    report = verify_dataset(outdir, classes=classes, images_per_class=images_per_class)
    print(f"rehearse: OK, {outdir} passes the organizer-style validation "
          f"({report.classes} classes, {report.images} images, all {report.image_size[0]}x{report.image_size[1]} {report.mode})")
    return 0


def check_zip(zip_path: Path) -> None:
    """The server contract: a readable zip with params/ and src/generator.py at its root."""
    if not zip_path.is_file():
        raise UserError(f"{zip_path} does not exist; write it with `python -m submission pack {zip_path}`")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
            corrupt_member = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise UserError(f"{zip_path} is not a readable zip ({exc}); re-pack it with `python -m submission pack`") from None
    if corrupt_member is not None:
        raise UserError(f"{zip_path} is corrupt (bad CRC in {corrupt_member}); re-pack it with `python -m submission pack`")
    unsafe = [n for n in names if n.startswith("/") or ".." in n.split("/")]
    if unsafe:
        raise UserError(f"{zip_path} has entries outside its root {unsafe[:3]}; re-pack it with `python -m submission pack`")
    missing = [need for need, ok in (("params/", any(n.startswith("params/") for n in names)),
                                     ("src/generator.py", "src/generator.py" in names)) if not ok]
    if missing:
        raise UserError(f"{zip_path} lacks {' and '.join(missing)} at its root, which the server requires; "
                        "re-pack it with `python -m submission pack`")


def check_outdir(outdir: Path, overwrite: bool) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"OUTDIR {outdir} is a file; give a directory path")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not overwrite:
            raise UserError(f"OUTDIR {outdir} is not empty; pass --overwrite to replace it or choose another directory")
        check_overwritable(outdir)


def apply_overrides(config_file: Path, classes: Optional[int], images_per_class: Optional[int]) -> "tuple[int, int]":
    """Write the trial overrides into the unpacked config; return the (classes, images_per_class) to expect.

    Only the two counts are touched here; the packed adapter validates the whole file strictly.
    """
    if not config_file.is_file():
        raise UserError("the zip has no params/config.json; re-pack it with `python -m submission pack`")
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"params/config.json in the zip is not valid JSON ({exc}); re-pack it with `python -m submission pack`") from None
    if not isinstance(data, dict):
        raise UserError("params/config.json in the zip is not a JSON object; re-pack it with `python -m submission pack`")
    if classes is not None:
        data["classes"] = classes
    if images_per_class is not None:
        data["images_per_class"] = images_per_class
    config_file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    expected = (data.get("classes"), data.get("images_per_class"))
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in expected):
        raise UserError(f"params/config.json in the zip has classes/images_per_class {expected}, not positive "
                        "integers; re-pack it with `python -m submission pack`")
    return expected  # type: ignore[return-value]
