"""End-to-end tests of `python -m local_eval` with the smoke preset, and its bad-input errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from local_eval.cli import main
from local_eval.core.metric import cumulative_error
from local_eval.core.presets import preset_config
from tests.local_eval_fixtures import make_cifar100, make_image_folder

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, torchrun: int = 0) -> subprocess.CompletedProcess:
    """The real command in a fresh interpreter (as a user runs it)."""
    launcher = [sys.executable, "-m", "local_eval"]
    if torchrun:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={torchrun}", "-m", "local_eval"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(launcher + list(args), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("local_eval_data")
    generated = make_image_folder(root / "generated", classes=4, images_per_class=8)
    cifar = make_cifar100(root / "cifar", classes=4, train_per_class=8, test_per_class=4)
    return generated, cifar


def smoke_args(generated: Path, cifar: Path, out: Path, *extra: str) -> list:
    return ["--data", str(generated), "--out", str(out), "--preset", "smoke",
            "--data-root", str(cifar), "--workers", "1", "--no-progress", *extra]


@pytest.fixture(scope="module")
def finished_run(datasets, tmp_path_factory):
    generated, cifar = datasets
    out = tmp_path_factory.mktemp("local_eval_run") / "run"
    result = run_cli(*smoke_args(generated, cifar, out, "--compare-scratch"))
    assert result.returncode == 0, result.stderr[-2000:]
    return out, result


@pytest.mark.slow
def test_smoke_run_writes_report_curves_and_checkpoints(finished_run, datasets):
    out, result = finished_run
    report = json.loads((out / "report.json").read_text())
    smoke = preset_config("smoke")
    assert report["config"] == smoke.to_dict()
    assert report["preset"] == "smoke" and report["seed"] == smoke.seed
    assert len(report["pretrain"]["loss"]) == smoke.pretrain_epochs
    assert len(report["finetune"]["top1"]) == smoke.finetune_epochs
    assert len(report["scratch"]["top1"]) == smoke.finetune_epochs
    assert report["scored_epochs"] == [2, 3]
    assert report["score"] == pytest.approx(cumulative_error(report["finetune"]["top1"]))
    assert report["scratch_score"] == pytest.approx(cumulative_error(report["scratch"]["top1"]))
    assert report["score_gain_over_scratch"] == pytest.approx(
        report["scratch_score"] - report["score"])
    assert all(0.0 <= acc <= 100.0 for acc in report["finetune"]["top1"])
    # 4 test images per class, 4 classes: every accuracy is a multiple of 1/16.
    assert all((acc * 16 / 100) == pytest.approx(round(acc * 16 / 100))
               for acc in report["finetune"]["top1"])
    assert report["data"]["pretrain_images"] == 4 * 8
    assert report["data"]["downstream_train_images"] == 4 * 8
    assert report["data"]["downstream_test_images"] == 4 * 4
    assert set(report["versions"]) >= {"python", "torch", "timm", "torchvision", "numpy"}
    assert report["wall_seconds"]["pretrain"] > 0 and report["runtime"]["world_size"] == 1
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("pretrain.pt", "finetune.pt", "scratch.pt", "run.json"):
        assert (out / name).is_file(), name
    assert torch.load(out / "finetune.pt", weights_only=False)["epoch"] == smoke.finetune_epochs
    assert f"score {report['score']:.2f}" in result.stdout


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_result(finished_run, datasets, tmp_path):
    generated, cifar = datasets
    out = tmp_path / "run"
    # Stop after 2 pre-training epochs + 1 fine-tuning epoch, as a killed run would.
    stopped = run_cli(*smoke_args(generated, cifar, out, "--compare-scratch",
                                  "--stop-after-epochs", "3"))
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert "rerun the same command" in stopped.stdout
    assert not (out / "report.json").exists()
    assert torch.load(out / "pretrain.pt", weights_only=False)["epoch"] == 2
    assert torch.load(out / "finetune.pt", weights_only=False)["epoch"] == 1
    resumed = run_cli(*smoke_args(generated, cifar, out, "--compare-scratch"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    reference = json.loads((finished_run[0] / "report.json").read_text())
    for phase, key in (("pretrain", "loss"), ("finetune", "top1"), ("finetune", "loss"),
                       ("scratch", "top1")):
        assert report[phase][key] == pytest.approx(reference[phase][key], rel=1e-5), (phase, key)
    assert report["score"] == pytest.approx(reference["score"])


@pytest.mark.slow
def test_rerun_of_a_finished_run_keeps_its_report(finished_run, datasets):
    out, _ = finished_run
    generated, cifar = datasets
    before = json.loads((out / "report.json").read_text())
    again = run_cli(*smoke_args(generated, cifar, out, "--compare-scratch"))
    assert again.returncode == 0, again.stderr[-2000:]
    after = json.loads((out / "report.json").read_text())
    assert after["finetune"] == before["finetune"] and after["score"] == before["score"]


@pytest.mark.slow
def test_torchrun_two_cpu_processes_with_downstream_dir(datasets, tmp_path):
    generated, _ = datasets
    downstream = tmp_path / "downstream"
    make_image_folder(downstream / "train", classes=3, images_per_class=8, seed=1)
    make_image_folder(downstream / "val", classes=3, images_per_class=5, seed=2)
    out = tmp_path / "ddp"
    result = run_cli("--data", str(generated), "--out", str(out), "--preset", "smoke",
                     "--downstream-dir", str(downstream), "--finetune-classes", "none",
                     "--finetune-test-per-class", "none",
                     "--workers", "1", "--no-progress", torchrun=2)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["runtime"]["world_size"] == 2
    assert report["data"]["downstream_classes"] == 3
    assert report["data"]["downstream_test_images"] == 15
    # Every accuracy is over all 15 val images (counts summed over both ranks, none doubled).
    assert all((acc * 15 / 100) == pytest.approx(round(acc * 15 / 100))
               for acc in report["finetune"]["top1"])
    assert report["score"] == pytest.approx(cumulative_error(report["finetune"]["top1"]))
    assert result.stdout.count("score ") == 1  # the summary comes from rank 0 only


@pytest.mark.slow
def test_ctrl_c_prints_one_line_exits_130_and_resumes(datasets, tmp_path):
    generated, cifar = datasets
    out = tmp_path / "run"
    # Enough epochs that the run is still training when the signal comes.
    argv = smoke_args(generated, cifar, out, "--pretrain-epochs", "500")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # Ctrl-C in a terminal reaches a process whose SIGINT is at its default. A suite started as a
    # background job (nohup, CI) may hand its children SIGINT ignored, which Python then keeps:
    # restore the default so the test sees what a user sees.
    process = subprocess.Popen([sys.executable, "-m", "local_eval", *argv], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (out / "pretrain.pt").is_file():  # an epoch is done: mid-training
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"still running 60 s after SIGINT: {process.communicate()[1][-3000:]}")
    finally:
        process.kill()
    assert process.returncode == 130, err[-2000:]
    assert err.strip() == f"interrupted; rerun the same command to resume from {out}", err
    done = torch.load(out / "pretrain.pt", weights_only=False)["epoch"]
    assert 1 <= done < 500
    resumed = run_cli(*argv, "--stop-after-epochs", "1")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(out / "pretrain.pt", weights_only=False)["epoch"] == done + 1


def test_ctrl_c_message_says_whether_there_is_a_run_to_resume(capsys, datasets, tmp_path,
                                                              monkeypatch):
    import local_eval.run.runner

    generated, cifar = datasets
    out = tmp_path / "run"

    def interrupted(spec, runtime, stop_after_epochs):
        raise KeyboardInterrupt

    monkeypatch.setattr(local_eval.run.runner, "run", interrupted)  # cli imports it when it runs
    assert main(smoke_args(generated, cifar, out)) == 130
    assert capsys.readouterr().err == (f"interrupted before anything was written to {out}; "
                                       f"rerun the same command\n")


# --- bad input: one line on stderr, exit code 2, nothing written --------------------------------

def expect_error(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert words in err, err


def test_missing_and_empty_data(capsys, datasets, tmp_path):
    _, cifar = datasets
    out = tmp_path / "out"
    expect_error(capsys, smoke_args(tmp_path / "nope", cifar, out), "does not exist")
    (tmp_path / "empty").mkdir()
    expect_error(capsys, smoke_args(tmp_path / "empty", cifar, out), "is empty")
    assert not out.exists()


def test_not_an_image_folder_and_one_class(capsys, datasets, tmp_path):
    _, cifar = datasets
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "image.png").write_bytes(b"not really")
    expect_error(capsys, smoke_args(flat, cifar, tmp_path / "o"), "not an ImageFolder")
    single = make_image_folder(tmp_path / "single", classes=1, images_per_class=3)
    expect_error(capsys, smoke_args(single, cifar, tmp_path / "o"), "at least 2")
    assert not (tmp_path / "o").exists()


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] if how == "truncate" else b"not a png at all")


def test_unreadable_images_are_refused_up_front(capsys, datasets, tmp_path):
    _, cifar = datasets
    data = make_image_folder(tmp_path / "gen", classes=4, images_per_class=9)
    _damage(data / "00001" / "00003.png", "truncate")
    _damage(data / "00002" / "00000.png", "garbage")
    _damage(data / "00003" / "00008.png", "garbage")  # not among the first 8: never read
    # A truncated PNG used to crash a DataLoader worker mid-run with a PIL traceback. (The
    # store path refuses the first unreadable file it meets: tests/test_local_eval_store.py.)
    expect_error(capsys, smoke_args(data, cifar, tmp_path / "o", "--loader", "pil"),
                 f"--data: 2 of the 32 selected images cannot be read: "
                 f"{data / '00001' / '00003.png'} (image file is truncated) and 1 more")
    assert not (tmp_path / "o").exists()
    downstream = tmp_path / "downstream"
    make_image_folder(downstream / "train", classes=3, images_per_class=8, seed=1)
    make_image_folder(downstream / "val", classes=3, images_per_class=2, seed=2)
    _damage(downstream / "val" / "00002" / "00001.png", "garbage")
    good = make_image_folder(tmp_path / "good", classes=4, images_per_class=8)
    expect_error(capsys, smoke_args(good, cifar, tmp_path / "o", "--downstream-dir",
                                    str(downstream), "--finetune-classes", "none"),
                 f"--downstream-dir: 1 of the 6 selected images cannot be read: "
                 f"{downstream / 'val' / '00002' / '00001.png'} (not an image file PIL can read)")
    assert not (tmp_path / "o").exists()


def test_unreadable_image_in_a_large_set_is_skipped_with_a_warning(capfd, datasets, tmp_path,
                                                                   monkeypatch):
    import local_eval.datasets.common

    monkeypatch.setattr(local_eval.datasets.common, "CHECK_LIMIT", 0, raising=False)  # as for 1M images
    _, cifar = datasets
    data = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8)
    bad = data / "00001" / "00003.png"
    _damage(bad, "truncate")
    assert main(smoke_args(data, cifar, tmp_path / "o", "--loader", "pil")) == 0
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if line.strip()]
    assert warnings, err
    assert all(line == f"warning: skipping unreadable --data image {bad} (image file is "
                       f"truncated); using the next image instead (regenerate or delete it)"
               for line in warnings), err
    assert (tmp_path / "o" / "report.json").is_file()


def test_too_few_generated_classes_leaves_no_run_folder(capsys, datasets, tmp_path):
    _, cifar = datasets
    two = make_image_folder(tmp_path / "two", classes=2, images_per_class=8)
    expect_error(capsys, smoke_args(two, cifar, tmp_path / "o"), "--pretrain-classes 2")
    assert not (tmp_path / "o").exists()


def test_data_root_without_files(capsys, datasets, tmp_path, monkeypatch):
    generated, _ = datasets
    expect_error(capsys, smoke_args(generated, tmp_path, tmp_path / "o"), "--download")
    argv = smoke_args(generated, tmp_path, tmp_path / "o")
    argv.remove("--data-root")
    argv.remove(str(tmp_path))
    # Without --data-root the sets are looked for in the default root (data/ in the repository).
    monkeypatch.setattr("local_eval.run.arguments.DEFAULT_DATA_ROOT", tmp_path / "default")
    expect_error(capsys, argv, f"CIFAR-100 not found under --data-root {tmp_path / 'default'}")


def test_unknown_preset_and_model(capsys, datasets, tmp_path):
    generated, cifar = datasets
    argv = smoke_args(generated, cifar, tmp_path / "o")
    argv[argv.index("smoke")] = "huge"
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "huge" in err and "\n" not in err
    expect_error(capsys, smoke_args(generated, cifar, tmp_path / "o", "--model", "vit_bogus"),
                 "unknown model")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_but_absent(capsys, datasets, tmp_path):
    generated, cifar = datasets
    expect_error(capsys, smoke_args(generated, cifar, tmp_path / "o", "--device", "cuda"),
                 "no CUDA device")


@pytest.mark.slow
def test_existing_out_with_other_config_is_refused(capsys, finished_run, datasets):
    out, _ = finished_run
    generated, cifar = datasets
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    expect_error(capsys, smoke_args(generated, cifar, out, "--finetune-epochs", "4"),
                 "different config")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_negative_or_too_large_seed_is_refused(capsys, datasets, tmp_path):
    generated, cifar = datasets
    out = tmp_path / "o"
    expect_error(capsys, smoke_args(generated, cifar, out, "--seed", "-1"),
                 "seed must be a non-negative integer of at most 2147483647 (2**31 - 1), got -1")
    expect_error(capsys, smoke_args(generated, cifar, out, "--seed", str(2**31)),
                 "got 2147483648")
    assert not out.exists()


def test_non_finite_learning_rates_are_refused_before_writing(capsys, datasets, tmp_path):
    generated, cifar = datasets
    out = tmp_path / "o"
    # inf used to train to a NaN loss and report score 150; nan crashed after writing run.json.
    expect_error(capsys, smoke_args(generated, cifar, out, "--finetune-lr", "inf"),
                 "finetune_lr must be a finite number, got inf")
    expect_error(capsys, smoke_args(generated, cifar, out, "--pretrain-lr", "nan"),
                 "pretrain_lr must be a finite number, got nan")
    expect_error(capsys, smoke_args(generated, cifar, out, "--finetune-momentum", "1"),
                 "finetune_momentum must be in [0, 1)")
    assert not out.exists()


@pytest.mark.parametrize("phase, flag", [("pretrain", "--pretrain-lr"),
                                         ("finetune", "--finetune-lr")])
def test_diverging_phase_stops_with_one_line(capsys, datasets, tmp_path, phase, flag):
    generated, cifar = datasets
    out = tmp_path / "o"
    expect_error(capsys, smoke_args(generated, cifar, out, flag, "1e30", "--workers", "0"),
                 f"{phase} diverged in epoch 1/")
    capsys.readouterr()
    assert main(smoke_args(generated, cifar, out, flag, "1e30", "--workers", "0")) == 2
    err = capsys.readouterr().err
    assert f"rerun with a lower {flag} (now 1e+30)" in err and "\n" not in err.strip()
    assert not (out / "report.json").exists()
    assert (out / "pretrain.pt").exists() == (phase == "finetune")


def test_resume_refuses_a_checkpoint_that_recorded_a_nan_loss(capsys, datasets, tmp_path):
    generated, cifar = datasets
    out = tmp_path / "o"
    argv = smoke_args(generated, cifar, out, "--workers", "0")
    assert main(argv + ["--stop-after-epochs", "1"]) == 0
    state = torch.load(out / "pretrain.pt", weights_only=False)
    state["history"]["loss"][0] = float("nan")  # as a run before the divergence check left it
    torch.save(state, out / "pretrain.pt")
    capsys.readouterr()
    expect_error(capsys, argv, "pretrain.pt records a training loss of nan")
    assert not (out / "report.json").exists()


def test_out_folder_of_something_else_is_refused(capsys, datasets, tmp_path):
    generated, cifar = datasets
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    expect_error(capsys, smoke_args(generated, cifar, out), "holds no local_eval run")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_out_under_a_regular_file_is_refused(capsys, datasets, tmp_path):
    generated, cifar = datasets
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    # mkdir used to raise NotADirectoryError with a traceback, after the data was loaded.
    expect_error(capsys, smoke_args(generated, cifar, blocker / "run"),
                 f"{blocker} is a file, not a folder")
    expect_error(capsys, smoke_args(generated, cifar, blocker / "deeper" / "run"),
                 f"{blocker} is a file, not a folder")
    expect_error(capsys, smoke_args(generated, cifar, blocker), "is a file, not a directory")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert blocker.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_out_in_a_read_only_folder_is_refused(capsys, datasets, tmp_path):
    generated, cifar = datasets
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        expect_error(capsys, smoke_args(generated, cifar, locked / "run"), "permission denied")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_out_refused_as_not_writable_before_loading(capsys, datasets, tmp_path, monkeypatch):
    # The up-front check, as a non-root user meets it (these tests may run as root).
    import submission.fileio

    monkeypatch.setattr(submission.fileio.os, "access", lambda folder, mode: False)
    generated, cifar = datasets
    expect_error(capsys, smoke_args(generated, cifar, tmp_path / "a" / "run"),
                 f"cannot write to {tmp_path}: permission denied, so --out {tmp_path / 'a' / 'run'} cannot be written")
    assert not (tmp_path / "a").exists()


def test_out_on_a_read_only_file_system_is_one_line(capsys, datasets, tmp_path, monkeypatch):
    # What a read-only mount (EROFS) does to the mkdir that claims the run folder.
    import errno
    from pathlib import Path

    from local_eval.store.build import open_store
    from local_eval.store.layout import default_store_dir

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    generated, cifar = datasets
    # The image store of --data is built on a writable disk (its own error: test_local_eval_store).
    open_store(generated, default_store_dir(generated), workers=1, progress=False)
    monkeypatch.setattr(Path, "mkdir", read_only)
    expect_error(capsys, smoke_args(generated, cifar, tmp_path / "run", "--workers", "0"),
                 f"cannot create --out {tmp_path / 'run'}: read-only file system")
    assert not (tmp_path / "run").exists()


def test_print_config_shows_overrides(capsys, datasets, tmp_path):
    generated, cifar = datasets
    argv = smoke_args(generated, cifar, tmp_path / "o", "--epochs", "5", "--rand-augment",
                      "rand-m9-mstd0.5", "--print-config")
    assert main(argv) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["pretrain_epochs"] == config["finetune_epochs"] == 5
    assert config["rand_augment"] == "rand-m9-mstd0.5"
    assert config["img_size"] == preset_config("smoke").img_size
    assert not (tmp_path / "o").exists()


def test_default_loader_workers_share_the_cores():
    from local_eval.run.arguments import loader_workers_per_process
    from submission.system import available_cores

    assert loader_workers_per_process(1) == available_cores()
    assert loader_workers_per_process(10**6) == 1


def test_a_run_on_data_changed_under_the_same_path_is_refused(tmp_path, capsys):
    """run.json records the data's fingerprint: a rerun on other files under the same --data
    (or the same downstream folder) is one line, exit code 2, never the old report."""
    from local_eval.run.record import RUN_FILE
    from local_eval.run.spec import DataChanged, RunSpec, check_out_dir
    from tests.local_eval_fixtures import make_image_folder as folder_of

    generated = folder_of(tmp_path / "gen", classes=4, images_per_class=8)
    pair = tmp_path / "pair"
    folder_of(pair / "train", classes=2, images_per_class=3)
    folder_of(pair / "val", classes=2, images_per_class=2)
    spec = RunSpec(config=preset_config("smoke"), data=generated, out=tmp_path / "run",
                   downstream="folder", downstream_dir=pair)
    spec.out.mkdir()
    (spec.out / RUN_FILE).write_text(json.dumps(spec.identity()))
    check_out_dir(spec)  # the same data: resumes
    from local_eval.datasets.fingerprint import forget

    (generated / "00001" / "00003.png").write_bytes((generated / "00002" / "00003.png").read_bytes())
    forget()
    with pytest.raises(DataChanged, match="^--data changed since the run in --out"):
        check_out_dir(spec)
    (spec.out / RUN_FILE).write_text(json.dumps(spec.identity()))
    (pair / "val" / "00000" / "00001.png").unlink()
    forget()
    with pytest.raises(DataChanged, match="^the downstream set's files changed"):
        check_out_dir(spec)
    # The command line: one line, exit code 2.
    (spec.out / RUN_FILE).write_text(json.dumps({**spec.identity(), "data_content": "0:old"}))
    assert main(["--data", str(generated), "--out", str(spec.out), "--preset", "smoke",
                 "--downstream-dir", str(pair), "--workers", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --data changed since the run") and err.count("\n") == 1, err


def test_bad_flags_are_refused_before_torch_is_imported():
    """A bad flag or value costs no torch/timm import (seconds on a loaded machine)."""
    probe = (
        "import sys\n"
        "from local_eval.cli import main\n"
        "for argv in (['--bogus'], ['--data', 'd', '--out', 'o', '--seed', '-1'],\n"
        "             ['compare', '--bogus'], ['compare', 'a=b', '--out', 'o', '--seeds', '0'],\n"
        "             ['--data', 'd', '--out', 'o', '--print-config']):\n"
        "    try:\n"
        "        code = main(argv)\n"
        "    except SystemExit as stop:\n"
        "        code = stop.code\n"
        "    print(code, sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    lines = result.stdout.splitlines()
    assert lines[:4] == ["2 []"] * 4 and lines[-1] == "0 []", result.stderr
    assert result.stderr.count("error: ") == 4 and result.stderr.count("\n") == 4, result.stderr


@pytest.mark.slow
def test_a_run_leaves_nothing_in_tmpdir(datasets, tmp_path):
    """Importing torch._dynamo (torchvision, timm) used to leave $TMPDIR/torchinductor_<user>/."""
    generated, cifar = datasets
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp))
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    result = subprocess.run([sys.executable, "-m", "local_eval",
                             *smoke_args(generated, cifar, tmp_path / "o", "--epochs", "1")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(tmp)) == []


def test_one_command_shell(capsys):
    """python -m local_eval COMMAND: every command's --help, `--data ...` as `run`, and one line
    with exit code 2 for no or an unknown command."""
    from local_eval.cli import COMMANDS

    assert list(COMMANDS) == ["run", "compare", "noise", "digits", "timing", "throughput",
                             "stats", "store", "gpu-campaign"]
    for command in COMMANDS:
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: python -m local_eval {command} ")
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert all(f"\n  {command} " in listed for command in COMMANDS)
    for argv, words in ([], "error: no command; pick one of run, compare, noise"),\
            (["bogus"], "error: unknown command 'bogus'; pick one of run, compare"):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(words) and err.count("\n") == 1, err
    with pytest.raises(SystemExit):
        main(["--data", "d"])  # the alias of run: run's own usage error
    assert capsys.readouterr().err == ("error: the following arguments are required: --out "
                                       "(see python -m local_eval run --help)\n")
