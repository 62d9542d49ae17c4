"""What `rehearse` checks before it unpacks anything (each a one-line `UserError`): the trial counts,
the zip, OUTDIR, and that `--python` is a Python 3.10+; plus the helpers that put a child's output
into one line."""
from __future__ import annotations

import re
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import UserError
from ..fileio import STATE_DIRNAME, check_overwritable, check_writable_target, loads_json
from ..limits import need_int
from ..paths import describe_path

PYTHON_CHECK_TIMEOUT_S = 120
MIN_PYTHON = (3, 10)  # the server's Python
PYTHON_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(?![\d.])")  # what sys.version starts with, e.g. 3.10.13
ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit)\b|Fatal |error:)")


def check_counts(classes: Optional[int], images_per_class: Optional[int],
                 packed: Tuple[Optional[int], Optional[int]] = (None, None)) -> None:
    """The trial overrides within generate's bounds (and, with the packed counts `packed` for the
    count not overridden, their product), before anything is unpacked or run."""
    from ..config import MAX_CLASSES, MAX_IMAGES_PER_CLASS, MAX_TOTAL_IMAGES

    for name, value, high in (("--classes", classes, MAX_CLASSES), ("--images-per-class", images_per_class,
                                                                     MAX_IMAGES_PER_CLASS)):
        if value is not None:
            need_int(name, value, 1, f"{name} must be a positive integer, got {value}", high)
    counts = (classes if classes is not None else packed[0], images_per_class if images_per_class is not None else packed[1])
    if (classes is not None or images_per_class is not None) and all(isinstance(n, int) for n in counts):
        total = counts[0] * counts[1]
        if total > MAX_TOTAL_IMAGES:
            raise UserError(f"classes x images_per_class must be at most {MAX_TOTAL_IMAGES} images, got {counts[0]} x "
                            f"{counts[1]} = {total}; lower --classes or --images-per-class")


def read_packed_counts(zip_path: Path) -> Tuple[Optional[int], Optional[int]]:
    """(classes, images_per_class) of the zip's params/config.json, read without unpacking; None for
    what is missing or not an integer (the packed generator judges the file itself)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            data = loads_json(archive.read("params/config.json").decode("utf-8"))
    except (KeyError, ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    values = (data.get("classes"), data.get("images_per_class"))
    return tuple(v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None for v in values)  # type: ignore[return-value]


def check_python(python: str, shown: str) -> str:
    """Run `python -s -c 'import sys; print(sys.version)'`; its version when it is a Python of at least
    `MIN_PYTHON` (the server's 3.10), else a one-line `UserError`."""
    try:
        result = subprocess.run([python, "-s", "-c", "import sys; print(sys.version)"], stdin=subprocess.DEVNULL,
                                capture_output=True, timeout=PYTHON_CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"--python {shown} did not print its version within {PYTHON_CHECK_TIMEOUT_S} s; "
                        "pass a working interpreter, e.g. .venv-server/bin/python") from None
    except OSError as exc:
        raise UserError(f"--python {shown} cannot be started ({exc.strerror}); pass a Python interpreter, "
                        "e.g. .venv-server/bin/python") from None
    if result.returncode != 0:
        said = error_line(result.stderr) or error_line(result.stdout)
        raise UserError(f"--python {shown} does not work: `import sys; print(sys.version)` exited with code "
                        f"{result.returncode} ({'it said: ' + said if said else 'no output'}); "
                        "pass a working interpreter, e.g. .venv-server/bin/python")
    said = (lines_of(result.stdout) or [""])[0][:200]  # sys.version's first line (some builds put [GCC ...] on a second)
    match = PYTHON_VERSION.match(said)
    if match is None:  # e.g. /bin/echo, which prints its arguments and exits 0
        raise UserError(f"--python {shown} is not a Python interpreter: asked for `import sys; print(sys.version)` it "
                        f"printed {said!r}; pass a Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ interpreter, "
                        "e.g. .venv-server/bin/python")
    version = tuple(int(part) for part in match.groups())
    if version < MIN_PYTHON:
        raise UserError(f"--python {shown} is Python {match.group(0)}, and the server runs Python 3.10; pass a Python "
                        f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ interpreter, e.g. .venv-server/bin/python")
    return match.group(0)


def error_line(output) -> str:
    """The last line of `output` that names an error (`...Error: ...`, `Fatal ...`), else its last line."""
    lines = lines_of(output)
    errors = [line for line in lines if ERROR_LINE.search(line)]
    return (errors or lines or [""])[-1][:200]


def lines_of(output) -> List[str]:
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    return [line.strip() for line in re.split(r"[\r\n]", output) if line.strip()]


def check_zip(zip_path: Path) -> None:
    """The server contract: a readable zip with params/ and src/generator.py at its root."""
    try:
        is_dir, is_file = zip_path.is_dir(), zip_path.is_file()
    except OSError as exc:  # e.g. a name over the file system's limit
        raise UserError(f"cannot read {zip_path}: {exc.strerror}; pass the zip `python -m submission pack` wrote") from None
    if is_dir:
        zips = sorted(zip_path.glob("*.zip"))
        example = zips[0] if zips else zip_path / "submission.zip"
        raise UserError(f"{zip_path} is a folder, not a zip; pass the zip file `python -m submission pack` "
                        f"wrote, e.g. {example}")
    if not is_file:
        what = describe_path(zip_path)  # missing, or a FIFO or device (which zipfile would block on or misread)
        if what == "missing":
            raise UserError(f"{zip_path} does not exist; write it with `python -m submission pack {zip_path}`")
        raise UserError(f"{zip_path} is {what}, not a zip file; pass the zip `python -m submission pack` wrote")
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


def check_outdir(outdir: Path, overwrite: bool, force: bool = False) -> bool:
    """Whether OUTDIR holds an unfinished run to resume (a rehearse or generate that was stopped);
    otherwise it must be empty, or be emptied with --overwrite."""
    # First: an over-long name would make the calls below raise; under a file, an unwritable folder
    # or a read-only disk is one line here, before anything is unpacked.
    check_writable_target(outdir, "OUTDIR", is_dir=True)
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"OUTDIR {outdir} is a file; give a directory path")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not overwrite:
            if (outdir / STATE_DIRNAME / "config.json").is_file():
                return True  # the packed generate resumes it, as `generate` does
            raise UserError(f"OUTDIR {outdir} is not empty and holds no unfinished run to resume; pass --overwrite "
                            "to replace it or choose another directory")
        check_overwritable(outdir, force=force)  # its contents are removed; the folder itself stays
    return False


def check_resumable(outdir: Path, config_file: Path) -> None:
    """The unfinished run in OUTDIR is of the config about to run (trial overrides included), so the
    packed generate resumes it instead of failing with a traceback."""
    from ..config import GenerationConfig
    from ..state import read_state_record, state_record

    try:
        wanted = state_record(GenerationConfig.from_json(config_file.read_text(encoding="utf-8")))
    except UserError:
        return  # a config this package cannot read: the packed code decides
    recorded = read_state_record(outdir / STATE_DIRNAME)
    if recorded != wanted:
        changed = sorted(k for k in set(recorded or {}) | set(wanted) if (recorded or {}).get(k) != wanted.get(k))
        raise UserError(f"OUTDIR {outdir} holds an unfinished run of another config (differs in: {', '.join(changed)}); "
                        "rerun with the same zip and options to resume, or pass --overwrite to start over")
