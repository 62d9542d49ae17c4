"""Writing files so that a kill never leaves a truncated one, with clear errors when the disk says no;
and the one guarded way to clear an output folder for --overwrite."""
from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path
from typing import List

from .errors import UserError

TMP_SUFFIX = ".tmp"
STATE_DIRNAME = ".generate-state"  # generate's bookkeeping while a run is unfinished
# What `generate` (and a packed generator) writes: OUT/<digits>/<digits>_<digits>.<png|jpg>, plus
# the hidden temporary names of `write_atomic`. Only such entries are ever removed by --overwrite.
_IMAGE_NAME = re.compile(r"\.?\d+_\d+\.(png|jpg)(\.tmp)?")
MAX_LISTED = 3


def os_error(exc: OSError, path: Path, action: str = "write") -> UserError:
    """A one-line `UserError` for an OSError met while creating or writing `path`."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(f"disk full while writing {path} (no space or no inodes left); free some space (or pick another "
                         "output directory) and rerun the same command to resume")
    if exc.errno == errno.EROFS:
        return UserError(f"cannot {action} {path}: the file system is read-only; choose a writable output path")
    if exc.errno == errno.ENAMETOOLONG:
        return UserError(f"cannot {action} {path}: a file or folder name is too long (255 bytes at most); "
                         "choose a shorter output path")
    if exc.errno == errno.ENOTDIR:
        return UserError(f"cannot {action} {path}: a part of the path is a file, not a folder; "
                         "choose another output path")
    return UserError(f"cannot {action} {path}: {exc.strerror}; check the output directory's permissions")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a hidden temporary name beside `path`, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise os_error(exc, path) from None


def make_dirs(path: Path) -> None:
    """`mkdir -p` with the same one-line errors as `write_atomic`."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"cannot create folder {path}: a file of that name is in the way; "
                        "choose another output path") from None
    except OSError as exc:
        raise os_error(exc, Path(path), action="create") from None


def check_overwritable(path: Path, force: bool = False) -> None:
    """Refuse to --overwrite what no one means to lose, before anything is touched.

    The path is resolved (``..``, ``~`` and symbolic links in its parents), then refused when it
    is a symbolic link itself, the filesystem root, or the home folder, the current folder or any
    of their ancestors. Unless `force`, it must also hold nothing but what `generate` writes
    (class folders of images and its state folder): anything else is listed and refused.
    """
    given = Path(path).expanduser()
    if given.is_symlink():
        raise UserError(f"refusing to --overwrite {given}: it is a symbolic link; pass the folder it points to "
                        f"({given.resolve()}) if that is really what you mean to replace")
    target = given.resolve()
    protected = {"the filesystem root": Path(target.anchor), "your home folder": Path.home().resolve(),
                 "the current folder": Path.cwd().resolve()}
    for what, place in protected.items():
        if place == target or place.is_relative_to(target):
            relation = "is" if place == target else "contains"
            raise UserError(f"refusing to --overwrite {target}: it {relation} {what}; choose a dedicated output folder")
    if not force:
        foreign = foreign_entries(target)
        if foreign:
            listed = ", ".join(str(p) for p in foreign[:MAX_LISTED])
            more = f" and {len(foreign) - MAX_LISTED} more" if len(foreign) > MAX_LISTED else ""
            raise UserError(f"refusing to --overwrite {target}: it holds files that generate did not write ({listed}{more}); "
                            "move them away, or pass --overwrite-all to delete everything in it")


def foreign_entries(root: Path) -> List[Path]:
    """Entries under `root` that are not generate's own output (see `_IMAGE_NAME`), sorted."""
    if not root.is_dir():
        return []
    foreign = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name == STATE_DIRNAME and entry.is_dir(follow_symlinks=False):
            continue
        if not (entry.name.isdigit() and entry.is_dir(follow_symlinks=False)):
            foreign.append(Path(entry.path))
            continue
        foreign += sorted(Path(e.path) for e in os.scandir(entry.path)
                          if not (_IMAGE_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)))
    return foreign


def remove_tree_for_overwrite(path: Path, force: bool = False) -> None:
    """Empty a folder the user asked to --overwrite (after `check_overwritable`). The folder itself
    stays: it may be a mount point (a Docker volume), which cannot be removed."""
    target = Path(path).expanduser().resolve()
    check_overwritable(target, force=force)
    for entry in os.scandir(target):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
