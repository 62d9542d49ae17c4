"""End to end: generate -> verify, determinism across workers and shards, resume after a kill, bad input."""
import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from submission import FractalConfig, GenerationConfig, generate, run_generation
from submission.errors import UserError
from submission.fileio import STATE_DIRNAME
from submission.tools.verify import verify_dataset

from .conftest import REPO, run_cli

SMALL = ["--classes", "4", "--images-per-class", "6", "--image-size", "64", "--points", "2000", "--batch-size", "4"]


def tree_digest(root: Path) -> dict:
    """{relative path: sha256} of every file and folder entry under root (hidden ones included)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small dataset written in-process with one worker: the bytes every other run must match."""
    out = tmp_path_factory.mktemp("ref") / "data"
    config = GenerationConfig(classes=4, images_per_class=6, image_size=64, batch_size=4, workers=1, fractal=FractalConfig(points=2000))
    report = run_generation(out, config, progress=False)
    return out, config, report


def test_small_run_is_exactly_the_contest_layout(reference):
    out, config, report = reference
    assert report.images == 24 and report.classes_written == 4
    assert sorted(os.listdir(out)) == ["00000", "00001", "00002", "00003"]  # no state left behind
    assert sorted(os.listdir(out / "00002")) == [f"00002_{j:05d}.png" for j in range(6)]
    result = verify_dataset(out, classes=4, images_per_class=6)
    assert (result.images, result.image_size, result.mode) == (24, (64, 64), "RGB")
    assert set(report.stage_seconds) == {"sampling", "rendering", "augmentation", "encoding"}


def test_rerun_of_a_finished_tree_does_nothing(reference):
    out, config, _ = reference
    before = tree_digest(out)
    report = run_generation(out, config, progress=False)
    assert report.images == 0 and tree_digest(out) == before


@pytest.mark.slow
def test_bytes_do_not_depend_on_worker_count(reference, tmp_path):
    out, _, _ = reference
    result = run_cli("generate", tmp_path / "w2", *SMALL, "--workers", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert tree_digest(tmp_path / "w2") == tree_digest(out)


def test_shards_union_is_the_full_dataset(reference, tmp_path):
    out, config, _ = reference
    shared = tmp_path / "shared"
    for index in range(3):  # other batch sizes too: a cloud's image does not depend on its batch
        generate(shared, config.replace(shard_index=index, shard_count=3, batch_size=index + 2), progress=False)
    assert tree_digest(shared) == tree_digest(out)  # the last shard removed the bookkeeping
    separate = tmp_path / "separate"
    generate(separate, config.replace(shard_index=1, shard_count=3), progress=False)
    assert sorted(p.name for p in separate.iterdir()) == [STATE_DIRNAME, "00001"]


def test_jpeg_and_sizes(tmp_path):
    out = generate(tmp_path / "jpg", GenerationConfig(classes=2, images_per_class=3, image_size=48, workers=1, image_format="jpg", fractal=FractalConfig(points=1500)), progress=False)
    assert sorted(os.listdir(out / "00001")) == [f"00001_{j:05d}.jpg" for j in range(3)]
    assert verify_dataset(out, classes=2, images_per_class=3).image_size == (48, 48)


@pytest.mark.slow
def test_resume_after_kill_completes_the_exact_tree(reference, tmp_path):
    ref, _, _ = reference
    out = tmp_path / "killed"
    args = ["generate", out, *SMALL, "--workers", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "submission", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("00001/*.png")):  # kill in the middle of the run
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / STATE_DIRNAME).is_dir(), "the run finished before the kill; the test proves nothing"
    done = sorted(os.listdir(out / STATE_DIRNAME / "done"))
    assert len(done) < 4
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert f"{len(done)} already done" in result.stdout
    assert tree_digest(out) == tree_digest(ref)


def test_resume_skips_done_classes_and_cleans_temp_files(reference, tmp_path):
    ref, config, _ = reference
    out = tmp_path / "partial"
    generate(out, config.replace(shard_index=0, shard_count=2), progress=False)  # classes 0 and 2 done
    (out / "00001").mkdir()
    (out / "00001" / ".00001_00000.png.tmp").write_bytes(b"truncated")  # as a kill would leave it
    (out / "00001" / "00001_00000.png").write_bytes(b"half")  # written, but the class was never marked done
    report = run_generation(out, config, progress=False)
    assert (report.classes_skipped, report.classes_written) == (2, 2)
    assert tree_digest(out) == tree_digest(ref)


# --- bad input: one line on stderr, exit code 2, nothing on disk lost ---

def assert_clean_error(result, fragment):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("extra, fragment", [
    (["--classes", "0"], "classes must be a positive integer"),
    (["--images-per-class", "-3"], "images_per_class must be a positive integer"),
    (["--image-size", "4"], "image_size must be at least 16"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "cuda"], "CUDA was asked for"),
    (["--backend", "opengl"], "unknown renderer backend 'opengl'"),
    (["--shard", "3/2"], "shard must be I/N"),
])
def test_bad_options(tmp_path, extra, fragment):
    if "cuda" in extra:
        import torch
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    result = run_cli("generate", tmp_path / "out", *SMALL, *extra)
    assert_clean_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_output_path_is_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert_clean_error(run_cli("generate", target, *SMALL), "is a file, not a directory")
    assert_clean_error(run_cli("generate", target / "sub", *SMALL), "is a file, not a folder")
    assert target.read_text() == "keep me"


def test_non_empty_directory_is_refused_unless_overwrite_all(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    assert_clean_error(run_cli("generate", out, *SMALL), "not empty and is not an unfinished run")
    assert (out / "notes.txt").read_text() == "precious"
    tiny = ["--classes", "1", "--images-per-class", "2", "--image-size", "32", "--points", "1000", "--workers", "1", "--quiet"]
    # --overwrite removes only generate's own output: a folder holding anything else is refused, listing it.
    assert_clean_error(run_cli("generate", out, *tiny, "--overwrite"), "notes.txt")
    assert (out / "notes.txt").read_text() == "precious"
    result = run_cli("generate", out, *tiny, "--overwrite-all")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["00000"]


def test_unfinished_run_with_other_config_is_refused(reference, tmp_path):
    _, config, _ = reference
    out = tmp_path / "other"
    generate(out, config.replace(shard_index=0, shard_count=2), progress=False)  # leaves an unfinished run
    before = tree_digest(out)
    assert_clean_error(run_cli("generate", out, *SMALL, "--seed", "9"), "different config (differs in: seed)")
    assert tree_digest(out) == before


def test_unwritable_and_full_disk(tmp_path, monkeypatch, small_config):
    import submission.fileio as fileio
    import submission.pipeline as pipeline

    monkeypatch.setattr(pipeline.os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match="permission denied"):
        generate(tmp_path / "ro", small_config, progress=False)
    monkeypatch.undo()

    def no_space(path, mode="r", *args, **kwargs):
        if "w" in mode and ".png" in str(path):  # the disk fills up once images are being written
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(fileio, "open", no_space, raising=False)
    with pytest.raises(UserError, match="disk full while writing"):
        generate(tmp_path / "full", small_config, progress=False)
    assert not list((tmp_path / "full").rglob("*.png")) and not list((tmp_path / "full").rglob("*.tmp"))
    monkeypatch.undo()
    generate(tmp_path / "full", small_config, progress=False)  # once there is space, the rerun completes
    verify_dataset(tmp_path / "full", classes=4, images_per_class=6)


def test_library_rejects_non_config():
    with pytest.raises(UserError, match="must be a GenerationConfig"):
        generate("/tmp/never", {"classes": 3})


def test_pytorch3d_and_splat_write_the_same_files(tmp_path):
    pytest.importorskip("pytorch3d.renderer")
    config = GenerationConfig(classes=1, images_per_class=3, image_size=32, workers=1, fractal=FractalConfig(points=1500))
    splat = generate(tmp_path / "splat", config.replace(backend="splat"), progress=False)
    reference = generate(tmp_path / "p3d", config.replace(backend="pytorch3d"), progress=False)
    assert tree_digest(splat) == tree_digest(reference)


def test_a_bank_of_another_seed_is_refused(tmp_path):
    from submission.families.fractal.bank import build_bank

    bank_file = build_bank(4, seed=5, points=2000).save(tmp_path / "bank.npz")
    assert_clean_error(run_cli("generate", tmp_path / "out", *SMALL, "--bank", bank_file), "does not fit the config")
    assert not (tmp_path / "out").exists()


def test_overwrite_refuses_home_before_touching_it(tmp_path):
    from submission.tools.pack import build_zip_bytes

    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    packed = tmp_path / "submission.zip"
    packed.write_bytes(build_zip_bytes(GenerationConfig(classes=1, images_per_class=1, image_size=32, fractal=FractalConfig(points=500))))
    for command in (["generate", home, *SMALL, "--overwrite"], ["rehearse", packed, home, "--overwrite"]):
        result = run_cli(*command, env={"HOME": str(home)})
        assert_clean_error(result, "refusing to --overwrite")
        assert (home / "thesis.tex").read_text() == "years of work"


def test_one_family_object_per_process_and_the_worker_reads_only_the_prepared_bank(tmp_path, monkeypatch):
    from submission.families.fractal.bank import build_bank
    from submission.families.fractal.family import FractalFamily
    from submission.plan import RunPlan

    made = []
    original_init = FractalFamily.__init__
    monkeypatch.setattr(FractalFamily, "__init__", lambda self: (made.append(self), original_init(self))[1])
    config = GenerationConfig(classes=2, images_per_class=2, image_size=32, workers=1, fractal=FractalConfig(points=500))
    run_generation(tmp_path / "out", config, progress=False)
    assert len(made) == 1  # run, finished-tree check and writer share the main process's family
    run_generation(tmp_path / "out", config, progress=False)  # finished: recognised by its images
    assert len(made) == 2

    family = FractalFamily()
    plan = RunPlan.resolve(config.replace(bank_path=str(tmp_path / "not-there.npz")))
    with pytest.raises(ValueError, match="call prepare first"):
        family.worker(plan)  # no fallback to bank_path or to building a bank
    bank_file = build_bank(2, seed=0, points=500).save(tmp_path / "bank.npz")
    worker = family.worker(plan.replace(asset=bank_file))  # the resolved asset alone
    assert worker.bank.n_points == 500 and len(worker.bank) == 2
