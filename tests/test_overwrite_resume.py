"""Issue 9: --overwrite never deletes what the user did not name; resume checks what it trusts;
every failure of a run is one line. Overwrite tests run only inside folders the test creates and
check that a canary outside OUT survives."""
import errno
import fcntl
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from submission import FractalConfig, GenerationConfig, generate, run_generation
from submission.errors import UserError
from submission.fileio import STATE_DIRNAME, check_overwritable, remove_tree_for_overwrite

from .conftest import REPO, run_cli
from .test_generate import SMALL, assert_clean_error, reference, tree_digest  # noqa: F401  (fixture)

TINY = ["--classes", "2", "--images-per-class", "2", "--image-size", "32", "--points", "1000", "--workers", "1", "--quiet"]


@pytest.fixture
def nest(tmp_path):
    """tmp/x/a/b with a canary file in tmp/x/a; b is the working directory of the commands."""
    cwd = tmp_path / "x" / "a" / "b"
    cwd.mkdir(parents=True)
    canary = tmp_path / "x" / "a" / "canary"
    canary.write_text("keep")
    return cwd, canary


def test_dotdot_never_reaches_the_cwd_or_its_parents(nest):
    cwd, canary = nest
    for target in ("..", "../..", ".", "../b/.."):
        for command in ("generate",):
            result = run_cli(command, target, *TINY, "--overwrite-all", cwd=cwd, env={"PYTHONPATH": str(REPO)})
            assert_clean_error(result, "refusing to --overwrite")
    assert canary.read_text() == "keep" and cwd.is_dir()


def test_a_symlink_to_an_ancestor_is_refused(nest, tmp_path):
    cwd, canary = nest
    link = tmp_path / "link"
    link.symlink_to(canary.parent)
    assert_clean_error(run_cli("generate", link, *TINY, "--overwrite-all", cwd=cwd, env={"PYTHONPATH": str(REPO)}),
                       "symbolic link")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "data.txt").write_text("mine")
    link2 = tmp_path / "link2"
    link2.symlink_to(other)
    assert_clean_error(run_cli("generate", link2, *TINY, "--overwrite-all"), "symbolic link")
    assert canary.read_text() == "keep" and (other / "data.txt").read_text() == "mine"


def test_guard_resolves_root_and_home_spellings(tmp_path, monkeypatch):
    home = tmp_path / "home" / "user"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for spelling in ("/..", "/", "~", "~/..", "~/../..", str(home / ".." / "user")):
        with pytest.raises(UserError, match="refusing to --overwrite"):
            check_overwritable(Path(spelling), force=True)


def test_overwrite_removes_only_generates_own_output(tmp_path):
    out = generate(tmp_path / "out", GenerationConfig(classes=2, images_per_class=2, image_size=32, workers=1, fractal=FractalConfig(points=1000)), progress=False)
    (out / "00001" / "README.md").write_text("my notes")
    with pytest.raises(UserError, match="README.md"):
        remove_tree_for_overwrite(out)
    assert (out / "00001" / "README.md").read_text() == "my notes"
    (out / "00001" / "README.md").unlink()
    remove_tree_for_overwrite(out)
    assert out.is_dir() and not any(out.iterdir())


def test_overwrite_empties_a_mount_point_without_removing_it(tmp_path, monkeypatch):
    out = generate(tmp_path / "volume", GenerationConfig(classes=2, images_per_class=2, image_size=32, workers=1, fractal=FractalConfig(points=1000)), progress=False)
    real_rmdir = os.rmdir

    def busy_at_the_mount(path, *args, **kwargs):  # a mount point cannot be removed
        if Path(path) == out:
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        return real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", busy_at_the_mount)
    config = GenerationConfig(classes=1, images_per_class=2, image_size=32, workers=1, seed=3, fractal=FractalConfig(points=1000))
    generate(out, config, overwrite=True, progress=False)
    assert sorted(os.listdir(out)) == ["00000"]


def test_overwrite_regenerates_a_finished_tree_of_another_config(tmp_path):
    base = GenerationConfig(classes=2, images_per_class=2, image_size=32, workers=1, fractal=FractalConfig(points=1000))
    out = generate(tmp_path / "t", base, progress=False)
    other = base.replace(image_size=48, seed=7)
    fresh = generate(tmp_path / "fresh", other, progress=False)
    same_layout = base.replace(seed=7)  # same file names: only the images can tell
    with pytest.raises(UserError, match="finished dataset of another config"):
        generate(out, same_layout, progress=False)
    generate(out, other, overwrite=True, progress=False)
    assert tree_digest(out) == tree_digest(fresh)
    report = run_generation(out, other, progress=False)  # a true rerun still does nothing
    assert report.images == 0


def test_a_marked_class_missing_an_image_is_redone(reference, tmp_path):
    ref, config, _ = reference
    out = tmp_path / "merged"
    generate(out, config.replace(shard_index=0, shard_count=2), progress=False)  # classes 0 and 2 marked done
    (out / "00002" / "00002_00003.png").unlink()  # as an interrupted copy of shard folders leaves it
    (out / "00000" / "00000_00001.png").write_bytes(b"")
    report = run_generation(out, config, progress=False)
    assert report.classes_written == 4
    assert tree_digest(out) == tree_digest(ref)


def test_a_user_file_in_a_class_folder_of_an_unfinished_run_is_refused(reference, tmp_path):
    _, config, _ = reference
    out = tmp_path / "run"
    generate(out, config.replace(shard_index=0, shard_count=2), progress=False)
    (out / "00000" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt"):
        generate(out, config, progress=False)
    assert (out / "00000" / "notes.txt").read_text() == "mine"


def test_a_corrupt_state_bank_is_rebuilt(reference, tmp_path):
    ref, config, _ = reference
    out = tmp_path / "corrupt"
    generate(out, config.replace(shard_index=0, shard_count=2), progress=False)
    (out / STATE_DIRNAME / "bank.npz").write_bytes(b"not a bank")
    generate(out, config.replace(workers=2), progress=False)
    assert tree_digest(out) == tree_digest(ref)


def test_a_dead_worker_is_one_line(monkeypatch, tmp_path, small_config):
    import submission.pipeline as pipeline

    def broken(*args, **kwargs):
        raise BrokenProcessPool("A process in the process pool was terminated abruptly")
        yield  # pragma: no cover

    monkeypatch.setattr(pipeline, "_run_classes", broken)
    with pytest.raises(UserError, match="worker process died.*rerun the same command to resume"):
        generate(tmp_path / "out", small_config, progress=False)


def test_disk_full_creating_a_class_folder(monkeypatch, tmp_path, small_config):
    real_mkdir = Path.mkdir

    def full(self, *args, **kwargs):
        if self.name.isdigit():
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", full)
    with pytest.raises(UserError, match="disk full"):
        generate(tmp_path / "out", small_config, progress=False)


def test_a_second_run_on_the_same_folder_is_told_another_holds_it(tmp_path, small_config):
    out = tmp_path / "busy"
    generate(out, small_config.replace(shard_index=0, shard_count=2), progress=False)  # unfinished: state kept
    lock = out / STATE_DIRNAME / "lock-0-of-1"
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running generate holds it
        with pytest.raises(UserError, match="another generate run is writing"):
            generate(out, small_config, progress=False)
        with pytest.raises(UserError, match="a generate run is writing it"):
            generate(out, small_config, overwrite=True, progress=False)
    generate(out, small_config, progress=False)  # once it is gone, the run resumes


def test_workers_are_capped_at_the_cores(tmp_path, small_config, monkeypatch):
    """With 2 usable cores, 64 asked-for workers and 4 classes, the run uses 2 processes: the core
    clamp, not the class clamp, decides (it is resolved once, in `RunPlan`)."""
    import submission.plan

    monkeypatch.setattr(submission.plan, "available_cores", lambda: 2)
    report = run_generation(tmp_path / "out", small_config.replace(workers=64), progress=False)
    assert report.workers == 2 and report.classes_written == 4


@pytest.mark.parametrize("cores, device, asked, classes, workers, threads", [
    (2, "cpu", 64, 100, 2, 1),  # capped at the cores
    (8, "cpu", None, 100, 8, 1),  # default: every core
    (8, "cpu", 2, 100, 2, 4),  # each worker's torch threads share the cores
    (8, "cpu", None, 3, 3, 2),  # no more workers than classes to write, their threads share the cores
    (40, "cuda", None, 100, 16, 2),  # at most 16 by default on CUDA
    (40, "cuda", 32, 100, 32, 1),  # unless asked
    (4, "cpu", None, 0, 1, 4),  # nothing to write: one (idle) worker
])
def test_run_plan_resolves_workers_and_threads_once(monkeypatch, cores, device, asked, classes, workers, threads):
    import submission.plan
    from submission.plan import RunPlan

    monkeypatch.setattr(submission.plan, "available_cores", lambda: cores)
    monkeypatch.setattr(submission.plan, "resolve_device", lambda name: device)
    plan = RunPlan.resolve(GenerationConfig(workers=asked)).for_classes(classes)
    assert (plan.workers, plan.threads) == (workers, threads)


def test_over_long_names_are_one_line(tmp_path):
    assert_clean_error(run_cli("generate", tmp_path / ("n" * 300), *TINY), "too long")


@pytest.mark.slow
def test_workers_exit_when_the_main_process_is_killed(tmp_path):
    out = tmp_path / "orphans"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "submission", "generate", str(out), "--classes", "8",
                             "--images-per-class", "400", "--image-size", "64", "--points", "2000", "--workers", "2",
                             "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(out.glob("0000*/*.png")):  # workers are running
            time.sleep(0.1)
        children = [int(pid) for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert children, "no worker processes found"
        os.kill(proc.pid, signal.SIGKILL)  # the main process alone, as the OOM killer or kill -9 does
        proc.wait()
        deadline = time.time() + 15
        while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
            time.sleep(0.2)
        alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
        assert not alive, f"workers {alive} outlived their parent"
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
