"""`submission.fileio.write_atomic`: the error the user sees is the real one, in one clear line."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from submission import fileio
from submission.errors import UserError
from submission.fileio import write_atomic


def _raise(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize("failing", ["open", "replace"])
def test_a_read_only_disk_is_named_even_when_the_cleanup_fails_too(tmp_path, monkeypatch, failing):
    """On a read-only file system the temp file's cleanup raises EROFS as well; that must not
    replace the clear message about the write itself."""
    target = tmp_path / "out.zip"
    if failing == "open":
        monkeypatch.setattr(fileio, "open", _raise(errno.EROFS), raising=False)
    else:
        monkeypatch.setattr(fileio.os, "replace", _raise(errno.EROFS))
    monkeypatch.setattr(Path, "unlink", _raise(errno.EROFS))
    with pytest.raises(UserError) as info:
        write_atomic(target, b"data")
    message = str(info.value)
    assert "read-only file system" in message and str(target) in message and "\n" not in message


def test_any_cleanup_error_is_swallowed(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, "open", _raise(errno.EACCES), raising=False)
    monkeypatch.setattr(Path, "unlink", _raise(errno.EIO))
    with pytest.raises(UserError, match="Permission denied"):
        write_atomic(tmp_path / "x.bin", b"data")


def test_a_name_over_the_limit_says_so(tmp_path):
    with pytest.raises(UserError, match="file name too long") as info:
        write_atomic(tmp_path / ("a" * 300 + ".zip"), b"data")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("length", [251, 255])
def test_a_legal_name_near_the_limit_is_written(tmp_path, length):
    """`.NAME.tmp` is 5 bytes longer than NAME: the temporary name must not be what breaks the limit."""
    target = tmp_path / ("n" * (length - 4) + ".png")
    write_atomic(target, b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind


def test_a_normal_write_leaves_no_temporary(tmp_path):
    write_atomic(tmp_path / "a.txt", b"1")
    write_atomic(tmp_path / "a.txt", b"2")
    assert (tmp_path / "a.txt").read_bytes() == b"2" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
