"""Path rules every command shares: an output never lies inside, equals or holds an input (or an
existing dataset), and a file read as input is a regular file (a FIFO would block the reader forever).

`check_output_outside_inputs` is the one place the first rule is decided; docs/reliability.md
documents its signature for the commands that call it.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import List, Mapping, Optional, Tuple, Union

from .errors import UserError

PathLike = Union[str, "os.PathLike[str]"]
STATE_DIRNAME = ".generate-state"  # generate's bookkeeping while a run is unfinished (fileio re-exports it)
# torchvision.datasets.folder.IMG_EXTENSIONS, copied so that no torch is imported (tests/test_local_eval_data_stats.py
# checks that the two stay equal). The one source: local_eval.datasets.folders, which holds the whole rule of which
# files of a dataset count, imports it from here.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# How much of a folder `is_dataset` looks at: enough to recognise a tree of class folders, little
# enough to stay instant on a million-image dataset or on / itself.
PROBED_CLASS_FOLDERS = 16
PROBED_ENTRIES = 64


def is_image_name(name: str) -> bool:
    """Whether a directory entry named `name` is an image by its name: visible (no leading ".": hidden
    entries, such as `write_atomic`'s temporary names, never count) with an image extension, in any case."""
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


def describe_mode(mode: int) -> str:
    """What a file of st_mode `mode` is, for a message: "a file", "a directory", "a FIFO (named pipe)", ..."""
    for test, name in ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def describe_path(path: PathLike) -> str:
    """What is at `path`: "a file", "a FIFO (named pipe)", "a dangling symbolic link to X", "missing", ..."""
    try:
        return describe_mode(os.stat(path).st_mode)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a dangling symbolic link to {os.readlink(path)}"
        return "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"a loop of symbolic links (to {os.readlink(path)})" if os.path.islink(path) else "a loop of symbolic links"
        return f"unreadable ({exc.strerror})"


def check_regular_file(path: PathLike, label: str, fix: str) -> None:
    """Raise a one-line `UserError` unless `path` is a regular file (symbolic links followed): a FIFO,
    a device or a directory given where a file is read would block the reader or fail deep inside."""
    what = describe_path(path)
    if what != "a file":
        raise UserError(f"{label} is {what}, not a regular file; {fix}")


def open_regular_file(path: PathLike, label: str, fix: str):
    """`open(path, "rb")` that never blocks: a FIFO, device or directory is refused in one line
    (opened without blocking, then checked, so nothing can swap the file in between)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        what = describe_path(path)
        raise UserError(f"{label} is {'missing (No such file or directory)' if what == 'missing' else what}; {fix}") from None
    except IsADirectoryError:
        raise UserError(f"{label} is a directory; {fix}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserError(f"{label} is {describe_mode(mode)}, not a regular file; {fix}")
    return os.fdopen(fd, "rb")


def _resolved(path: PathLike) -> Path:
    try:
        return Path(os.path.abspath(Path(path).expanduser())).resolve()
    except (RuntimeError, OSError):  # a symbolic link loop (RuntimeError until Python 3.12)
        raise UserError(f"{path} cannot be resolved: a symbolic link on its way points (in a loop) back to "
                        "itself; fix or remove the link") from None


def _identity(path: Path) -> Optional[Tuple[int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _within(inner: Path, outer: Path) -> bool:
    """`inner` is `outer` or lies under it: by resolved path, or by file identity (device and inode) of
    an existing folder on the way, which also sees bind mounts and hard-linked folders."""
    if inner == outer or inner.is_relative_to(outer):
        return True
    target = _identity(outer)
    return target is not None and any(_identity(p) == target for p in (inner, *inner.parents))


def check_output_outside_inputs(output: PathLike, inputs: Mapping[str, PathLike], what: str = "the output") -> None:
    """Raise a one-line `UserError` when `output` equals, lies inside or contains any of `inputs`.

    `inputs` maps a label for the message (e.g. "--data", "the downstream set fashion-mnist") to a
    path; `what` names the output (e.g. "--out"). Paths need not exist; symbolic links, `..` and `~`
    are resolved, and existing folders are also compared by identity. Writing into an input would
    change what later runs read (a picture among a dataset's images), and --overwrite of an output
    that holds an input would delete it.
    """
    out = _resolved(output)
    for label, given in inputs.items():
        source = _resolved(given)
        if _within(out, source) and _within(source, out):
            relation = "is"
        elif _within(out, source):
            relation = "lies inside"
        elif _within(source, out):
            relation = "contains"
        else:
            continue
        raise UserError(f"{what} {output} {relation} {label} {given}; an output may not be, lie inside or contain "
                        f"an input (writing it would change or delete that input), so choose another {what}")


def is_dataset(folder: Path, toward: Optional[Path] = None) -> bool:
    """Whether `folder` is a dataset: generate's unfinished run (it holds `.generate-state/`), or an
    ImageFolder (no visible files at its top, its visible folders hold image files and nothing else).

    `toward` is the child of `folder` an output is headed for: it is the one folder allowed to hold
    no image yet. Only the first `PROBED_CLASS_FOLDERS` folders and `PROBED_ENTRIES` entries each
    are read.
    """
    if (folder / STATE_DIRNAME).is_dir():
        return True
    try:
        entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError:
        return False
    if not entries or any(not e.is_dir() for e in entries):
        return False
    with_images = 0
    for entry in entries[:PROBED_CLASS_FOLDERS]:
        if _holds_images(Path(entry.path)):
            with_images += 1
        elif toward is None or entry.name != toward.name:
            return False
    return with_images > 0


def _holds_images(folder: Path) -> bool:
    """A class folder: its visible entries (the first `PROBED_ENTRIES`) are all image files, at least
    one. A run folder holding `loss.png` beside `report.json` is not one."""
    images = 0
    try:
        with os.scandir(folder) as it:
            for count, entry in enumerate(it):
                if count >= PROBED_ENTRIES:
                    break
                if entry.name.startswith("."):
                    continue
                if not is_image_name(entry.name):
                    return False
                images += 1
    except OSError:
        return False
    return images > 0


def dataset_holding(path: PathLike) -> Optional[Path]:
    """The nearest existing dataset (see `is_dataset`) strictly above `path`, resolved; None if none."""
    target = _resolved(path)
    chain: List[Path] = [target, *target.parents]
    for child, folder in zip(chain, chain[1:]):
        if folder.is_dir() and is_dataset(folder, toward=child):
            return folder
    return None


def check_not_inside_a_dataset(output: PathLike, what: str) -> None:
    """Raise a one-line `UserError` when `output` lies inside an existing dataset (see `dataset_holding`):
    a file or folder written there is read by whatever trains on that dataset."""
    dataset = dataset_holding(output)
    if dataset is not None:
        raise UserError(f"{what} {output} lies inside the dataset {dataset}, so writing there would change what "
                        f"trains on it; choose {what} outside {dataset}")

