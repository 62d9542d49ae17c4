"""--finetune-repeats K: K fine-tunings of one pre-trained backbone, the score their mean.

Deterministic, resumable per repeat (stopped or killed mid-repeat), K = 1 exactly the run
without the flag, bad K refused in one line; compare scores a K-repeat run as one seed.
"""
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
from local_eval.run.report import mean_history
from local_eval.train.loop import PhaseHistory
from local_eval.train.phases import finetune_seed
from tests.local_eval_fixtures import make_cifar100, make_image_folder

REPO = Path(__file__).resolve().parents[1]
SMOKE_PRETRAIN_EPOCHS, SMOKE_FINETUNE_EPOCHS = 2, 3


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("repeats_data")
    return (make_image_folder(root / "generated", classes=4, images_per_class=8),
            make_cifar100(root / "cifar", classes=4, train_per_class=8, test_per_class=4))


def run_args(data, out: Path, *extra: str) -> list:
    generated, cifar = data
    return ["--data", str(generated), "--out", str(out), "--preset", "smoke",
            "--data-root", str(cifar), "--workers", "0", "--no-progress", *extra]


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=False)["model"]


@pytest.fixture(scope="module")
def repeated(data, tmp_path_factory):
    """An uninterrupted run with 3 repeats (and scratch, repeated too)."""
    out = tmp_path_factory.mktemp("repeated") / "run"
    assert main(run_args(data, out, "--finetune-repeats", "3", "--compare-scratch")) == 0
    return out


@pytest.fixture(scope="module")
def plain(data, tmp_path_factory):
    """The same run without the flag (today's run)."""
    out = tmp_path_factory.mktemp("plain") / "run"
    assert main(run_args(data, out, "--compare-scratch")) == 0
    return out


def test_repeat_seeds_keep_the_run_seed_first_and_differ_after():
    assert finetune_seed(7, 1) == 7
    seeds = [finetune_seed(0, repeat) for repeat in range(1, 11)]
    assert len(set(seeds)) == 10 and all(0 <= s < 2**31 for s in seeds)
    assert finetune_seed(0, 2) != finetune_seed(1, 1)  # not seed + repeat: compare pairs by seed
    assert finetune_seed(3, 4) == finetune_seed(3, 4)


def test_mean_history_averages_curves_and_sums_seconds():
    one = PhaseHistory(loss=[2.0, 1.0], top1=[10.0, 50.0], seconds=[1.0, 2.0])
    two = PhaseHistory(loss=[4.0, 3.0], top1=[30.0, 70.0], seconds=[3.0, 5.0])
    assert mean_history([one]) is one
    mean = mean_history([one, two])
    assert (mean.loss, mean.top1, mean.seconds) == ([3.0, 2.0], [20.0, 60.0], [4.0, 7.0])


@pytest.mark.slow
def test_a_repeated_run_records_each_repeat_and_scores_their_mean(repeated):
    report, run = report_of(repeated), json.loads((repeated / "run.json").read_text())
    assert run["finetune_repeats"] == 3 and report["finetune_repeats"] == 3
    entry = report["downstream"]["cifar100"]
    assert len(entry["repeats"]) == 3
    for repeat, scores in zip(entry["repeats"], entry["repeat_scores"]):
        assert len(repeat["top1"]) == SMOKE_FINETUNE_EPOCHS
        assert scores == repeat["score"] == cumulative_error(repeat["top1"])
    assert report["repeat_scores"] == entry["repeat_scores"]  # one downstream set
    assert report["score"] == pytest.approx(sum(entry["repeat_scores"]) / 3)
    assert report["scratch_score"] == pytest.approx(sum(entry["scratch_repeat_scores"]) / 3)
    # The summed per-epoch seconds are the cost of all three fine-tunings.
    assert report["wall_seconds"]["finetune"] == pytest.approx(
        sum(sum(r["epoch_seconds"]) for r in entry["repeats"]))
    for phase in ("finetune", "scratch"):
        paths = [repeated / f"{phase}.pt"] + [repeated / f"{phase}-repeat{k}.pt" for k in (2, 3)]
        for path in paths:
            assert torch.load(path, weights_only=False)["epoch"] == SMOKE_FINETUNE_EPOCHS
        first, second = weights(paths[0]), weights(paths[1])
        assert any(not torch.equal(first[k], second[k]) for k in first), phase  # other seeds


@pytest.mark.slow
def test_one_repeat_is_exactly_the_run_without_the_flag(data, plain, repeated, tmp_path):
    out = tmp_path / "one"
    assert main(run_args(data, out, "--finetune-repeats", "1", "--compare-scratch")) == 0
    assert (out / "run.json").read_bytes() == (plain / "run.json").read_bytes()
    one, reference = report_of(out), report_of(plain)
    assert set(one) == set(reference) and "finetune_repeats" not in one
    assert set(one["downstream"]["cifar100"]) == set(reference["downstream"]["cifar100"])
    assert one["score"] == reference["score"]
    for phase in ("finetune", "scratch"):
        assert (one[phase]["top1"], one[phase]["loss"]) == (reference[phase]["top1"],
                                                            reference[phase]["loss"])
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in plain.iterdir())
    # Repeat 1 of a repeated run is today's fine-tuning, weight for weight.
    assert report_of(repeated)["repeat_scores"][0] == reference["score"]
    today, first = weights(plain / "finetune.pt"), weights(repeated / "finetune.pt")
    assert all(torch.equal(today[k], first[k]) for k in today)


@pytest.mark.slow
def test_the_same_command_twice_gives_the_same_scores(data, repeated, tmp_path):
    out = tmp_path / "again"
    assert main(run_args(data, out, "--finetune-repeats", "3", "--compare-scratch")) == 0
    again, reference = report_of(out), report_of(repeated)
    assert again["repeat_scores"] == reference["repeat_scores"]
    assert again["score"] == reference["score"]
    for repeat, expected in zip(again["downstream"]["cifar100"]["repeats"],
                                reference["downstream"]["cifar100"]["repeats"]):
        assert (repeat["top1"], repeat["loss"]) == (expected["top1"], expected["loss"])
    for name in ("finetune-repeat2.pt", "scratch-repeat3.pt"):
        mine, theirs = weights(out / name), weights(repeated / name)
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), name


def _same_numbers(out: Path, reference: Path) -> None:
    resumed, expected = report_of(out), report_of(reference)
    assert resumed["repeat_scores"] == expected["repeat_scores"]
    assert resumed["scratch_score"] == expected["scratch_score"]
    for repeat, wanted in zip(resumed["downstream"]["cifar100"]["repeats"],
                              expected["downstream"]["cifar100"]["repeats"]):
        assert repeat["top1"] == wanted["top1"]
        assert repeat["loss"] == pytest.approx(wanted["loss"], rel=1e-6)


@pytest.mark.slow
def test_a_run_stopped_mid_repeat_resumes_to_the_same_numbers(data, repeated, tmp_path, capsys):
    out = tmp_path / "stopped"
    argv = run_args(data, out, "--finetune-repeats", "3", "--compare-scratch")
    # 2 pre-training epochs, 3 of repeat 1, then 1 of repeat 2: stopped inside repeat 2.
    assert main(argv + ["--stop-after-epochs", "6"]) == 0
    assert "rerun the same command" in capsys.readouterr().out
    assert torch.load(out / "finetune.pt", weights_only=False)["epoch"] == 3
    assert torch.load(out / "finetune-repeat2.pt", weights_only=False)["epoch"] == 1
    assert not (out / "finetune-repeat3.pt").exists() and not (out / "report.json").exists()
    assert main(argv) == 0
    scores = report_of(out)["repeat_scores"]
    assert "the mean of 3 fine-tunings scoring " + ", ".join(f"{s:.2f}" for s in scores) \
        in capsys.readouterr().out
    _same_numbers(out, repeated)


@pytest.mark.slow
def test_a_run_killed_mid_repeat_resumes_to_the_same_numbers(data, repeated, tmp_path):
    out = tmp_path / "killed"
    argv = run_args(data, out, "--finetune-repeats", "3", "--compare-scratch")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-m", "local_eval", *argv], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # SIGKILL once repeat 2 has checkpointed an epoch: repeat 3 and scratch still to run
        while process.poll() is None and not (out / "finetune-repeat2.pt").exists():
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL and not (out / "report.json").exists()
    assert main(argv) == 0
    _same_numbers(out, repeated)


@pytest.mark.slow
def test_a_run_folder_of_another_k_is_refused_and_kept(data, repeated, plain, capsys):
    for out, value, words in [(repeated, "1", "finetune_repeats 3 -> 1"),
                              (repeated, "2", "finetune_repeats 3 -> 2"),
                              (plain, "2", "finetune_repeats 1 -> 2")]:
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert main(run_args(data, out, "--finetune-repeats", value, "--compare-scratch")) == 2
        err = capsys.readouterr().err.strip()
        assert "different config" in err and words in err and "\n" not in err, err
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("value, words", [("0", "--finetune-repeats must be at least 1, got 0"),
                                          ("-2", "at least 1"), ("two", "invalid int")])
def test_repeats_below_one_are_refused_in_one_line(data, tmp_path, capsys, value, words):
    generated, cifar = data
    for argv in (run_args(data, tmp_path / "run", "--finetune-repeats", value),
                 ["compare", f"mine={generated}", "--out", str(tmp_path / "cmp"), "--presets",
                  "smoke", "--data-root", str(cifar), "--finetune-repeats", value]):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse refuses a non-number itself
            code = stop.code
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and words in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cmp").exists()


def compare_args(data, out: Path, *extra: str) -> list:
    generated, cifar = data
    return ["compare", f"mine={generated}", "--out", str(out), "--presets", "smoke",
            "--seeds", "2", "--data-root", str(cifar), "--workers", "0", "--no-progress",
            *extra]


@pytest.mark.slow
def test_compare_scores_a_repeated_run_as_one_seed_and_keeps_k_in_its_plan(data, tmp_path,
                                                                         capsys):
    out = tmp_path / "cmp"
    assert main(compare_args(data, out, "--finetune-repeats", "2")) == 0
    summary = json.loads((out / "compare.json").read_text())
    assert json.loads((out / "plan.json").read_text())["finetune_repeats"] == 2
    for row in summary["runs"]:
        report = report_of(out / "runs" / "mine" / "smoke" / f"seed{row['seed']}")
        assert len(report["repeat_scores"]) == 2
        assert row["score"] == report["score"] == pytest.approx(sum(report["repeat_scores"]) / 2)
    assert summary["summary"][0]["n"] == 2  # two seeds, not four
    capsys.readouterr()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for extra, words in [(["--finetune-repeats", "3"], "--finetune-repeats 2 -> 3"),
                         ([], "--finetune-repeats 2 -> 1")]:
        assert main(compare_args(data, out, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert "different plan" in err and words in err and "\n" not in err, err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_a_compare_without_the_flag_keeps_its_plan_as_before(data, tmp_path):
    out = tmp_path / "cmp"
    assert main(compare_args(data, out, "--seeds", "1", "--epochs", "1")) == 0
    # K = 1 adds nothing to the plan (the loader key came with the image store, issue 20; the
    # numbered units with the cluster work, issue 28).
    assert set(json.loads((out / "plan.json").read_text())) == {"datasets", "presets", "seeds", "loader",
                                                                 "units"}


@pytest.mark.slow
def test_repeats_over_two_downstream_sets_score_the_mean_per_repeat(data, tmp_path):
    folder = tmp_path / "folder"
    make_image_folder(folder / "train", classes=3, images_per_class=8, size=24, seed=1)
    make_image_folder(folder / "val", classes=3, images_per_class=4, size=24, seed=2)
    out = tmp_path / "two"
    assert main(run_args(data, out, "--finetune-repeats", "2", "--downstream", "cifar100,folder",
                         "--downstream-dir", str(folder), "--finetune-classes", "3")) == 0
    report = report_of(out)
    sets = report["downstream"]
    assert set(sets) == {"cifar100", "folder"}
    for repeat in range(2):
        assert report["repeat_scores"][repeat] == pytest.approx(
            (sets["cifar100"]["repeat_scores"][repeat] + sets["folder"]["repeat_scores"][repeat]) / 2)
    assert report["score"] == pytest.approx(sum(report["repeat_scores"]) / 2)
    for name in ("finetune-cifar100.pt", "finetune-cifar100-repeat2.pt", "finetune-folder.pt",
                 "finetune-folder-repeat2.pt"):
        assert torch.load(out / name, weights_only=False)["epoch"] == SMOKE_FINETUNE_EPOCHS, name
