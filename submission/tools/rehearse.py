"""`python -m submission rehearse OUT.zip OUTDIR`: run a packed zip exactly as the Signate server does.

The zip is unpacked into a temporary folder; a fresh Python process, started in that folder (not in
`src/`), appends `src/` to `sys.path`, runs `from generator import Generator`,
`Generator.get_params(<params/>)` and `Generator.generate(OUTDIR)`; then the organizer-style
validation runs on OUTDIR (exact counts, PIL-readable, one size and channel count, nothing else).
`--classes/--images-per-class` shrink the run for a local trial by editing the unpacked
params/config.json; the zip itself is never modified.

The child runs without a network where the machine allows it, as on the server (tools/isolation.py);
the output says whether it did.

Before anything is unpacked (rehearse_checks.py, server_imports.py): the trial counts within generate's
bounds, the zip, OUTDIR (not holding the zip, not inside a dataset), the packed code's imports against
the server's stack plus the zip's requirements.txt, and that `--python` is a Python 3.10+. With a trial override the packed
config is first checked as packed (`get_params` alone), so the override never hides a bad zip.
A non-empty OUTDIR holding an unfinished run (a rehearse killed mid-run) is resumed. The child's stderr streams through as it
comes; a failure says "traceback above" only when the child printed one. The child ends when
rehearse does, even by kill -9; the temp folder `rehearse-<pid>-*` such a kill leaves behind is
removed by the next rehearse once that pid is gone.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import UserError
from ..fileio import (
    loads_json,
    make_dirs,
    remove_tree_for_overwrite,
)
from ..paths import check_not_inside_a_dataset, check_output_outside_inputs
from .isolation import NetworkIsolation, network_isolation
from .rehearse_checks import (
    check_counts,
    check_outdir,
    check_python,
    check_resumable,
    check_zip,
    error_line,
    read_packed_counts,
)
from .server_imports import check_server_imports

HELP = "unpack a submission zip and run it as the Signate server does, then validate the dataset"

# Temporary folders are `rehearse-<pid>-<tempfile's 8 random characters>`: a run killed with -9 leaves
# its folder behind, and the next run removes the ones whose pid is gone.
TEMP_PREFIX = "rehearse-"
TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"([0-9]+)-[a-z0-9_]{8}")
STDERR_TAIL_BYTES = 64 * 1024

# What the server executes, as a fresh interpreter sees it: argv = [src, params, out, error_file,
# rehearse's pid]. A `SubmissionSetupError` (the adapter's "cannot run here" message) goes to
# error_file and exits 2 so the caller can print it as one line; anything else is a crash and keeps
# its traceback. The one addition to the server's steps: the run ends when rehearse does, even by
# kill -9 (Linux: PR_SET_PDEATHSIG; any POSIX system: a thread that sees rehearse's pid, or its own
# parent, go away; the parent differs from rehearse when --python is a wrapper script).
SERVER_SEQUENCE = """\
import os, sys, threading, time
src_dir, params_dir, out_dir, error_file, rehearse_pid = sys.argv[1:6]
def _exit_with_rehearse(rehearse_pid):
    if os.name != "posix":
        return
    try:
        import ctypes, signal
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1: PR_SET_PDEATHSIG
    except Exception:
        pass  # not Linux: the thread below does it
    first_parent = os.getppid()
    def gone():
        if os.getppid() != first_parent:
            return True
        try:
            os.kill(rehearse_pid, 0)  # gone, even if it died before this process started
        except ProcessLookupError:
            return True
        except OSError:
            pass
        return False
    def watch():
        while not gone():
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-rehearse", daemon=True).start()
_exit_with_rehearse(int(rehearse_pid))
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
if out_dir:  # empty: get_params only (rehearse's check of the config as packed, before a trial override)
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
    parser.add_argument("--overwrite", action="store_true",
                        help="empty a non-empty OUTDIR first (only a generated tree: class folders of images)")
    parser.add_argument("--overwrite-all", action="store_true",
                        help="like --overwrite, but also delete files generate did not write (never the root, "
                             "your home or a folder holding the current directory)")


def run(args: argparse.Namespace) -> int:
    for stale in remove_stale_temp_dirs():  # first: a refused run cleans up after a killed one too
        print(f"rehearse: removed {stale}, left by a rehearse that was killed", flush=True)
    zip_path, outdir = Path(args.zip), Path(args.outdir)
    check_counts(args.classes, args.images_per_class)  # first: the cheapest, and no work may precede it
    check_zip(zip_path)
    check_counts(args.classes, args.images_per_class, packed=read_packed_counts(zip_path))
    # Absolute (not resolved: a venv's python is a symlink that must stay one), since the child
    # starts in another directory.
    python = os.path.abspath(shutil.which(args.python) or args.python)
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise UserError(f"--python {args.python} is not an executable interpreter")
    check_output_outside_inputs(outdir, {"OUT.zip": zip_path}, "OUTDIR")  # --overwrite-all would delete the zip
    check_not_inside_a_dataset(outdir, "OUTDIR")
    resume = check_outdir(outdir, overwrite=args.overwrite or args.overwrite_all, force=args.overwrite_all)
    with zipfile.ZipFile(zip_path) as archive:
        check_server_imports({name: archive.read(name) for name in archive.namelist()
                              if name == "requirements.txt" or (name.startswith("src/") and name.endswith(".py"))},
                             str(zip_path))
    python_version = check_python(python, shown=args.python)
    isolation = network_isolation()

    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        root = Path(tmp) / "unpacked"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(root)
        if args.classes is not None or args.images_per_class is not None:
            # The server runs the config as packed: check it so (get_params alone) before the trial
            # override, which would otherwise hide e.g. `classes: -1` or a bank of another class count.
            print("rehearse: checking params/config.json as packed (get_params), before the trial override", flush=True)
            run_server_sequence(python, root, Path(tmp), out_dir="", isolation=isolation)
        classes, images_per_class = apply_overrides(root / "params" / "config.json", args.classes, args.images_per_class)
        if resume:
            check_resumable(outdir, root / "params" / "config.json")
        elif outdir.is_dir() and any(outdir.iterdir()):  # checked above: only with --overwrite
            remove_tree_for_overwrite(outdir, force=args.overwrite_all)
        make_dirs(outdir, "OUTDIR")  # an empty folder, as the server hands out (or the run to resume)
        print(f"rehearse: {zip_path} unpacked to {root}; running the server sequence with {python} "
              f"(Python {python_version}){'; resuming the unfinished run in ' + str(outdir) if resume else ''}",
              flush=True)
        print(isolation.report(), flush=True)
        run_server_sequence(python, root, Path(tmp), out_dir=str(outdir.resolve()), isolation=isolation)

    from .verify import verify_dataset

    report = verify_dataset(outdir, classes=classes, images_per_class=images_per_class)
    print(f"rehearse: OK, {outdir} passes the organizer-style validation "
          f"({report.classes} classes, {report.images} images, all {report.image_size[0]}x{report.image_size[1]} {report.mode})")
    return 0


def run_server_sequence(python: str, root: Path, tmp: Path, out_dir: str, isolation: NetworkIsolation) -> None:
    """The server's steps in a fresh interpreter started in `root` (get_params only when `out_dir`
    is empty), without a network where `isolation` can; a refusal or a failure is a one-line `UserError`."""
    error_file = tmp / "setup_error.txt"
    command = [*isolation.prefix, python, "-s", "-c", SERVER_SEQUENCE, str(root / "src"), str(root / "params"),
               out_dir, str(error_file), str(os.getpid())]
    returncode, stderr_tail = run_streaming_stderr(command, cwd=root)  # cwd: the unpack root, not src/
    if returncode == 2 and error_file.is_file():
        raise UserError("the packed generator refused to start: " + error_file.read_text(encoding="utf-8"))
    if returncode != 0:
        raise UserError(failure_message(returncode, stderr_tail) + isolation.hint(stderr_tail))


def run_streaming_stderr(command: List[str], cwd: Path) -> Tuple[int, bytes]:
    """Run `command`; its stderr is copied to ours as it comes (progress bars too) and its last
    STDERR_TAIL_BYTES are returned with the exit code, so a failure can be described truthfully."""
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tail = bytearray()
    copier = threading.Thread(target=_copy_stderr, args=(process.stderr, tail), name="rehearse-stderr", daemon=True)
    copier.start()
    try:
        returncode = process.wait()
    except BaseException:  # Ctrl-C reached the child too: let it stop, then make sure it has
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    finally:
        # Worker processes of the child inherit the pipe; never hang on one that outlives it.
        copier.join(timeout=5)
    return returncode, bytes(tail)


def _copy_stderr(stream, tail: bytearray) -> None:
    sink = getattr(sys.stderr, "buffer", None)
    while True:
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            break
        try:
            if sink is not None:
                sink.write(chunk)
                sink.flush()
            else:
                sys.stderr.write(chunk.decode("utf-8", "replace"))
                sys.stderr.flush()
        except (OSError, ValueError):  # our stderr is gone: keep draining so the child never blocks
            pass
        tail += chunk
        del tail[:-STDERR_TAIL_BYTES]
    stream.close()


def failure_message(returncode: int, stderr_tail: bytes) -> str:
    """One line for a failed child: how it ended, and a traceback only if it printed one."""
    text = stderr_tail.decode("utf-8", "replace")
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        ended = f"was killed by {name}" + (" (out of memory?)" if -returncode == signal.SIGKILL else "")
    else:
        ended = f"failed with exit code {returncode}"
    if "Traceback (most recent call last)" in text:
        detail = "traceback above"
    else:
        said = error_line(text)
        detail = f"no traceback; its last error output: {said}" if said else "no traceback, no error output"
    return f"the packed generator {ended} ({detail}); fix it and re-pack before uploading"


def remove_stale_temp_dirs(temp_root: Optional[Path] = None) -> List[Path]:
    """Delete the temporary folders of rehearse runs that were killed before they could (kill -9).

    Only folders in `temp_root` (default: the one `tempfile` uses) named exactly
    `rehearse-<pid>-<8 random characters>`, owned by this user, whose pid is no longer running.
    """
    if os.name != "posix":  # os.kill(pid, 0) is no liveness test elsewhere
        return []
    root = Path(temp_root if temp_root is not None else tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_NAME.fullmatch(entry.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(Path(entry.path))
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we wrote: leave the folder alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def apply_overrides(config_file: Path, classes: Optional[int], images_per_class: Optional[int]) -> "tuple[int, int]":
    """Write the trial overrides into the unpacked config; return the (classes, images_per_class) to expect.

    Only the two counts are touched here; the packed adapter validates the whole file strictly.
    """
    if not config_file.is_file():
        raise UserError("the zip has no params/config.json; re-pack it with `python -m submission pack`")
    try:
        data = loads_json(config_file.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # bad JSON (a repeated key too), or not UTF-8
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
