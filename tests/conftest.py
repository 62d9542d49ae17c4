"""Shared fixtures: small configs and a subprocess runner for the real command line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .full_stack import pytest_runtest_logreport, pytest_sessionfinish, pytest_terminal_summary  # noqa: F401  (hooks)

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, module: str = "submission", timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` from the repository root, capturing text output."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=kwargs.pop("cwd", REPO), env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def _variable_in_a_temporary_folder(name: str, folder: Path):
    """Set $name to `folder` for the session (in os.environ, so that the commands the tests start
    inherit it), then restore what it was."""
    previous = os.environ.get(name)
    os.environ[name] = str(folder)
    yield
    if previous is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = previous


@pytest.fixture(scope="session", autouse=True)
def image_stores_in_a_temporary_folder(tmp_path_factory):
    """Runs build their image stores (local_eval.store) here, not in the user's ~/.cache."""
    yield from _variable_in_a_temporary_folder("LOCAL_EVAL_STORES", tmp_path_factory.mktemp("image_stores"))


@pytest.fixture(scope="session", autouse=True)
def file_hashes_in_a_temporary_folder(tmp_path_factory):
    """The per-file sha256 cache of local_eval.datasets.fingerprint goes here, not to ~/.cache."""
    yield from _variable_in_a_temporary_folder("LOCAL_EVAL_HASHES", tmp_path_factory.mktemp("file_hashes"))


@pytest.fixture
def small_config():
    from submission import FractalConfig, GenerationConfig

    return GenerationConfig(classes=4, images_per_class=6, image_size=64, workers=1, batch_size=4,
                            fractal=FractalConfig(points=2000))


def simulate_read_only_disk(monkeypatch, root: Path) -> None:
    """Make everything under `root` behave as a read-only mount does for root (the tests run as root,
    and mounting needs privileges): statvfs reports ST_RDONLY, access(W_OK) is refused, and mkdir,
    open for writing, replace and unlink (even of a missing file) fail with EROFS."""
    import builtins
    import errno

    root = Path(os.path.abspath(root))

    def under(path) -> bool:
        try:
            path = Path(os.path.abspath(os.fsdecode(path)))
        except TypeError:  # a file descriptor
            return False
        return path == root or root in path.parents

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real = {name: getattr(os, name) for name in ("statvfs", "access", "mkdir", "replace", "unlink", "open")}
    real_open = builtins.open

    class ReadOnly:
        def __init__(self, result):
            self._result = result
            self.f_flag = result.f_flag | os.ST_RDONLY

        def __getattr__(self, name):
            return getattr(self._result, name)

    def statvfs(path):
        return ReadOnly(real["statvfs"](path)) if under(path) else real["statvfs"](path)

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and under(path):
            return False
        return real["access"](path, mode, *args, **kwargs)

    def writer(name):
        def call(path, *args, **kwargs):
            if under(path):
                refuse(path)
            return real[name](path, *args, **kwargs)
        return call

    def replace(src, dst, *args, **kwargs):
        if under(src) or under(dst):
            refuse(dst)
        return real["replace"](src, dst, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path):
            refuse(path)
        return real["open"](path, flags, *args, **kwargs)

    def builtin_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and under(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "statvfs", statvfs)
    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "mkdir", writer("mkdir"))
    monkeypatch.setattr(os, "unlink", writer("unlink"))
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", builtin_open)
