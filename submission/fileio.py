"""File-system safety in one place: atomic writes (a kill never leaves a truncated file), output
paths checked before any slow work, one-line errors for what the disk says, and the one guarded way
to clear an output folder for --overwrite."""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

from .errors import UserError
from .paths import STATE_DIRNAME, describe_mode, open_regular_file

PathLike = Union[str, "os.PathLike[str]"]
TMP_SUFFIX = ".tmp"
NAME_MAX = 255  # bytes per file or folder name on ext4, xfs, btrfs, tmpfs, APFS and NTFS
# What `generate` (and a packed generator) writes: OUT/<digits>/<digits>_<digits>.<png|jpg>, plus
# the hidden temporary names of `write_atomic`. Only such entries are ever removed by --overwrite.
_IMAGE_NAME = re.compile(r"\.?\d+_\d+\.(png|jpg)(\.tmp)?")
MAX_LISTED = 3


class DuplicateKeyError(ValueError):
    """A JSON object names a key twice (a ValueError, like json's own decode errors)."""


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    seen: Dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(f"duplicate key {key!r} in one JSON object (which value was meant?)")
        seen[key] = value
    return seen


def loads_json(text: Union[str, bytes]) -> Any:
    """`json.loads` that refuses a key repeated in one object: json keeps the last value silently,
    other readers may keep the first, so such a file has no one meaning. Every config or table
    reader parses through this; errors are `ValueError`s (`DuplicateKeyError` or json's own)."""
    return json.loads(text, object_pairs_hook=_unique_keys)


def os_error(exc: OSError, path: PathLike, action: str = "write") -> UserError:
    """A one-line `UserError` for an OSError met while creating or writing `path`."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(f"disk full while writing {path} (no space or no inodes left); free some space (or pick "
                         "another output directory) and rerun the same command to resume")
    if exc.errno == errno.EROFS:
        return UserError(f"cannot {action} {path}: read-only file system; choose an output path on a writable disk")
    if exc.errno == errno.ENAMETOOLONG:
        return UserError(f"cannot {action} {_short(path)}: file name too long (most file systems allow {NAME_MAX} "
                         "bytes per file or folder name); choose a shorter name")
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return UserError(f"cannot {action} {path}: a file is in the way where a folder must be; choose another path")
    return UserError(f"cannot {action} {path}: {exc.strerror}; check the output directory's permissions")


def read_text_file(path: PathLike, label: str, limit: int, kind: str, fix: str) -> str:
    """The UTF-8 text of a small file, read at most `limit` bytes far (a huge or endless file is
    refused, not slurped); every problem is a one-line `UserError` naming the file by `label`
    (e.g. "--config x.json"), the `kind` of file expected and the `fix`."""
    try:
        with open_regular_file(path, label, fix) as f:  # a FIFO or device is refused, never waited on
            data = f.read(limit + 1)
    except OSError as exc:
        raise UserError(f"cannot read {label}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UserError(f"{label} is larger than {limit >> 20} MiB, so not {kind}; {fix}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{label} is not UTF-8 text (byte {exc.start} is {data[exc.start:exc.start + 1]!r}); "
                        f"{fix}") from None


def _tmp_name(name: str) -> str:
    """`.NAME.tmp`; shortened, with a hash of NAME, when the extra 5 bytes would push a legal NAME
    over the file system's name-length limit."""
    tmp = f".{name}{TMP_SUFFIX}"
    if len(os.fsencode(tmp)) <= NAME_MAX:
        return tmp
    # 50 characters are at most 200 bytes in UTF-8: the result stays well under NAME_MAX
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:12]
    return f".{name[:50]}~{digest}{TMP_SUFFIX}"


def write_atomic(path: PathLike, data: bytes) -> None:
    """Write to a hidden temporary name beside `path`, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(_tmp_name(path.name))
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:  # best effort: on a read-only or vanished disk this fails too, and must not hide `exc`
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise os_error(exc, path) from None


def make_dirs(path: PathLike, what: str = "folder") -> None:
    """`mkdir -p` with the same one-line errors as `write_atomic`."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, path, action=f"create {what}") from None


def check_writable_target(path: PathLike, what: str, is_dir: bool = False) -> None:
    """Raise `UserError` unless `path` can be created (or replaced) by this user, before any slow work.

    `path` is a file to write, or with `is_dir` a folder to write into; `what` names it in the message
    (e.g. "OUTDIR"). Checked: no name over NAME_MAX bytes, no regular file where a folder must be, and
    the nearest existing folder on the way is writable and not on a read-only file system.
    """
    path = Path(path)
    absolute = Path(os.path.abspath(path))
    for part in absolute.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise UserError(f"{what} {_short(path)}: the name {part[:24]}... is {size} bytes, over the {NAME_MAX}-byte "
                            "limit of most file systems (file name too long); choose a shorter name")
    _refuse_dangling_links(absolute, path, what)
    start = absolute if is_dir else absolute.parent
    folder, mode = _nearest_existing(start, path, what)
    if not stat.S_ISDIR(mode):
        if folder == absolute:
            raise UserError(f"{what} {path} is {describe_mode(mode)}, not a directory; give a directory path")
        raise UserError(f"{folder} is {describe_mode(mode)}, not a folder, so {what} {path} cannot be created; "
                        "choose another output path")
    if _read_only(folder):
        raise UserError(f"{what} {path} is on a read-only file system ({folder}); choose a path on a writable disk")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {folder}: permission denied, so {what} {path} cannot be written there; "
                        "choose a writable output path (or fix its permissions)")


def _refuse_dangling_links(absolute: Path, path: Path, what: str) -> None:
    """A symbolic link to nothing on the way to `absolute` (or at it): `mkdir` would fail with "file
    exists" and a write would replace the link, so say what it is instead."""
    for place in (absolute, *absolute.parents):
        if os.path.lexists(place):
            if os.path.islink(place) and not os.path.exists(place):
                raise UserError(f"{place} is a dangling symbolic link to {os.readlink(place)}, so {what} {path} cannot "
                                "be written there; create the link's target, or remove the link or choose another path")
            return


def _nearest_existing(start: Path, path: Path, what: str) -> Tuple[Path, int]:
    """(the first of `start` and its parents that exists, its st_mode)."""
    for folder in (start, *start.parents):
        try:
            return folder, os.stat(folder).st_mode
        except (FileNotFoundError, NotADirectoryError):  # not there yet, or under a file: look higher
            continue
        except OSError as exc:
            raise os_error(exc, path, action=f"use {what}") from None
    raise UserError(f"cannot use {what} {path}: no folder of it exists")  # unreachable: the root exists


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows): the write itself will say
        return False


def _short(path: PathLike) -> str:
    """`path` for a message: an over-long one would drown the line."""
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]}"


def check_overwritable(path: PathLike, force: bool = False) -> None:
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


def remove_tree_for_overwrite(path: PathLike, force: bool = False) -> None:
    """Empty a folder the user asked to --overwrite (after `check_overwritable`). The folder itself
    stays: it may be a mount point (a Docker volume), which cannot be removed."""
    target = Path(path).expanduser().resolve()
    check_overwritable(target, force=force)
    for entry in os.scandir(target):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


# --- deterministic zips: the submission, and the npz banks inside it ---
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no clock in the bytes
FILE_MODE = 0o100644  # regular file, rw-r--r--
DIR_MODE = 0o040755  # directory, rwxr-xr-x


def restamp_zip(data: bytes) -> bytes:
    """A zip's bytes (e.g. an .npz, which numpy stamps with the current time) rewritten by
    `deterministic_zip`: equal contents give equal bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return deterministic_zip(members, add_directories=False)


def deterministic_zip(files: Mapping[str, bytes], add_directories: bool = True) -> bytes:
    """A zip of `files` (archive path -> bytes): sorted entries, explicit directory entries, fixed
    timestamps, permissions and compression, so equal inputs give equal bytes."""
    names = set(files)
    if add_directories:
        for name in files:
            parts = name.split("/")[:-1]
            names.update("/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(names):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = 3  # unix, so the modes below apply on every platform
            if name.endswith("/"):
                info.external_attr = (DIR_MODE << 16) | 0x10  # 0x10: MS-DOS directory flag
                archive.writestr(info, b"")
            else:
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, files[name], compresslevel=9)
    return buffer.getvalue()
