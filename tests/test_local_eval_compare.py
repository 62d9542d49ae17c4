"""`python -m local_eval compare`: statistics, resuming, refusals."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_eval.cli import main
from local_eval.compare.datasets import FolderDataset, NoiseDataset, parse_dataset
from local_eval.compare.report import markdown
from local_eval.compare.stats import (
    BETTER,
    CANT_TELL,
    WORSE,
    paired_difference,
    t_cdf,
    t_quantile,
)
from local_eval.core.presets import preset_config
from submission.errors import UserError
from tests.local_eval_fixtures import make_cifar100, make_image_folder

REPO = Path(__file__).resolve().parents[1]


# --- statistics ---------------------------------------------------------------------------------

@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776),
                                          (9, 2.262), (30, 2.042)])
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=5e-4)
    assert t_cdf(t_quantile(0.9, df), df) == pytest.approx(0.9, abs=1e-9)


def test_paired_difference_by_hand():
    # Differences 3, 1, 2: mean 2, sample std 1, half-width t(0.975, 2) * 1 / sqrt(3).
    result = paired_difference([13.0, 11.0, 12.0], [10.0, 10.0, 10.0])
    half = 4.302653 / math.sqrt(3)
    assert (result.n, result.mean, result.std) == (3, pytest.approx(2.0), pytest.approx(1.0))
    assert (result.low, result.high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert result.verdict == CANT_TELL  # [-0.484, 4.484] holds 0
    # Differences -4, -5, -6, -5, -5: mean -5, std sqrt(0.5), t(0.975, 4) = 2.776.
    better = paired_difference([96, 95, 94, 95, 95], [100] * 5)
    assert better.high == pytest.approx(-5 + 2.776445 * math.sqrt(0.5) / math.sqrt(5))
    assert better.verdict == BETTER
    assert paired_difference([3.0, 4.0, 5.0], [1.0, 1.5, 2.0]).verdict == WORSE
    single = paired_difference([5.0], [1.0])
    assert single.low is None and single.verdict == CANT_TELL


# --- datasets -----------------------------------------------------------------------------------

def test_dataset_specs(tmp_path):
    assert parse_dataset("scratch").identity() == {"name": "scratch", "kind": "scratch"}
    for text, words in [("mine", "NAME=PATH"), ("a b=/x", "letters, digits"),
                        ("noise=/x", "built-in")]:
        with pytest.raises(UserError, match=words):
            parse_dataset(text)
    folder = FolderDataset("a", make_image_folder(tmp_path / "a", classes=5, images_per_class=6,
                                                  size=20))
    noise = NoiseDataset().matched(folder, [preset_config("smoke")])  # smoke: 4 x 8 images
    assert (noise.classes, noise.images_per_class, noise.image_size) == (4, 6, 20)
    path = noise.materialize(tmp_path / "cache")
    assert len(list(path.rglob("*.png"))) == 24 and noise.materialize(tmp_path / "cache") == path


# --- end to end ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare_data")
    return (make_image_folder(root / "gen", classes=4, images_per_class=8),
            make_cifar100(root / "cifar", classes=4, train_per_class=8, test_per_class=4))


def compare_args(inputs, out, *extra):
    generated, cifar = inputs
    return ["compare", f"mine={generated}", "noise", "scratch", "--out", str(out),
            "--presets", "smoke", "--seeds", "2", "--data-root", str(cifar), "--workers", "0",
            "--no-progress", "--epochs", "2", *extra]


@pytest.fixture(scope="module")
def finished(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "cmp"
    assert main(compare_args(inputs, out)) == 0
    return out


@pytest.mark.slow
def test_compare_writes_paired_statistics(finished):
    summary = json.loads((finished / "compare.json").read_text())
    assert summary["complete"] and summary["baseline"] == "mine"
    assert [(r["dataset"], r["seed"]) for r in summary["runs"]] == [
        ("mine", 0), ("noise", 0), ("scratch", 0), ("mine", 1), ("noise", 1), ("scratch", 1)]
    scores = {(r["dataset"], r["seed"]): r["score"] for r in summary["runs"]}
    for row in summary["summary"]:
        mine = [scores[("mine", s)] for s in (0, 1)]
        own = [scores[(row["dataset"], s)] for s in (0, 1)]
        assert row["scores"] == own and row["mean"] == pytest.approx(sum(own) / 2)
        if row["dataset"] == "mine":
            assert row["vs_baseline"] is None
            continue
        # smoke fine-tunes on 4 classes x 4 test images: one image in one epoch is 100 / 16.
        assert row["vs_baseline"]["score_resolution"] == 100 / 16
        expected = paired_difference(own, mine, std_floor=100 / 16)
        assert row["vs_baseline"]["mean_difference"] == pytest.approx(expected.mean)
        assert row["vs_baseline"]["paired_std"] == pytest.approx(expected.std)
        assert row["vs_baseline"]["verdict"] == expected.verdict
    report = json.loads((finished / "runs" / "scratch" / "smoke" / "seed1" / "report.json")
                        .read_text())
    assert report["pretrain"] is None and report["config"]["seed"] == 1
    assert (finished / "cache" / "noise-4x8-16px-seed0").is_dir()
    # Data diagnostics of every pre-training dataset (not scratch), at smoke's 16 px crop.
    assert list(summary["data_stats"]) == ["mine", "noise"]
    assert summary["data_stats"]["noise"]["blank_fraction"] == {"16": 0.0}
    assert (finished / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert (finished / "compare.md").read_text() == markdown(summary)


@pytest.mark.slow
def test_report_against_another_baseline_is_printed_and_leaves_the_folder(finished, capsys):
    """--report --baseline noise: the paired differences to noise (the sign of mine's turned
    round), printed; compare.* stay against the plan's baseline. An unknown one is one line."""
    files = {name: (finished / name).read_bytes() for name in ("compare.json", "compare.md", "compare.png")}
    summary = json.loads(files["compare.json"])
    capsys.readouterr()
    assert main(["compare", str(finished), "--report", "--baseline", "noise"]) == 0
    printed = capsys.readouterr().out
    assert "Δ vs noise" in printed and "stays against mine" in printed and "Pre-training data" in printed
    scores = {(r["dataset"], r["seed"]): r["score"] for r in summary["runs"]}
    expected = paired_difference([scores[("mine", s)] for s in (0, 1)], [scores[("noise", s)] for s in (0, 1)],
                                 std_floor=100 / 16)
    mine_row = next(line for line in printed.splitlines() if line.startswith("| smoke | mine |"))
    assert f"{expected.mean:+.2f}" in mine_row and "| noise |" in printed
    assert {name: (finished / name).read_bytes() for name in files} == files
    for argv, words in [(["--baseline", "nosuch"], "error: --baseline nosuch is not one of the datasets"),
                        (["--target-diff", "-1"], "error: --target-diff must be a positive score difference"),
                        (["--target-diff", "1e9"], "error: --target-diff must be at most 50100")]:
        assert main(["compare", str(finished), "--report", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(words) and "\n" not in err, err
    assert {name: (finished / name).read_bytes() for name in files} == files


@pytest.mark.slow
def test_compare_resumes_after_a_stop_to_the_same_table(inputs, finished, tmp_path, capsys):
    out = tmp_path / "cmp"
    # 4 epochs per pre-trained run: stop inside the second run (noise, seed 0).
    assert main(compare_args(inputs, out, "--stop-after-epochs", "6")) == 0
    assert "rerun the same command" in capsys.readouterr().out
    partial = json.loads((out / "compare.json").read_text())
    assert not partial["complete"] and partial["finished_runs"] == 1
    assert main(compare_args(inputs, out)) == 0
    assert "1 already finished" in capsys.readouterr().out
    resumed, reference = (json.loads((d / "compare.json").read_text()) for d in (out, finished))
    assert [r["score"] for r in resumed["runs"]] == pytest.approx(
        [r["score"] for r in reference["runs"]])
    assert (out / "compare.md").read_text() == (finished / "compare.md").read_text()


@pytest.mark.slow
def test_compare_refuses_a_folder_of_another_plan(inputs, finished, capsys):
    before = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    for extra, words in [(["--seeds", "3"], "seeds 0, 1 -> 0, 1, 2"),
                         (["--finetune-epochs", "3"], "preset smoke: config.finetune_epochs"),
                         (["--loader", "pil"], "--loader store -> pil")]:
        argv = compare_args(inputs, finished, *extra)
        if "--seeds" in extra:
            argv.remove("2")
            argv.remove("--seeds")
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "different plan" in err and words in err and "\n" not in err, err
    argv = compare_args(inputs, finished)
    argv[1:4] = [f"other={inputs[0]}", "scratch"]
    assert main(argv) == 2
    assert "datasets mine, noise, scratch -> other, scratch" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_compare_under_torchrun(inputs, tmp_path):
    generated, cifar = inputs
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "local_eval", "compare", f"mine={generated}", "scratch", "--out", str(out),
               "--presets", "smoke", "--seeds", "1", "--data-root", str(cifar), "--workers", "0",
               "--no-progress", "--epochs", "1"]
    result = subprocess.run(command, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "compare.json").read_text())
    assert summary["complete"] and result.stdout.count("| smoke | mine |") == 1
    report = json.loads((out / "runs" / "mine" / "smoke" / "seed0" / "report.json").read_text())
    assert report["runtime"]["world_size"] == 2


# --- bad input: one line, exit code 2, nothing written ------------------------------------------

def test_compare_bad_inputs(inputs, tmp_path, capsys):
    out = tmp_path / "cmp"
    cases = [
        (["--presets", "smoke,huge"], "unknown preset 'huge' in --presets; known presets: smoke"),
        (["--baseline", "other"], "--baseline other is not one of"),
        (["--seed", "3"], "drop --seed"),
        (["--seeds", "0"], "--seeds must be from 1 to 1000"),
        (["--seeds", "100000000000"], "--seeds must be from 1 to 1000"),  # was a MemoryError
        (["--seed", "-1"], "drop --seed"),
        (["--downstream", "cifar10"], "CIFAR-10 not found"),
        (["--pretrain-classes", "9"], "has 4 classes but preset smoke takes 9"),
    ]
    for extra, words in cases:
        assert main(compare_args(inputs, out, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and words in err and "\n" not in err, err
    argv = compare_args(inputs, out)
    argv[1] = f"mine={tmp_path / 'missing'}"
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err
    argv = compare_args(inputs, out)
    argv[1:2] = []
    assert main(argv) == 2  # noise and scratch alone: nothing to size the noise like
    assert "folder dataset" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(compare_args(inputs, out)) == 2
    assert "holds no comparison" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_compare_out_under_a_file_is_one_line(inputs, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(compare_args(inputs, blocker / "cmp")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--out" in err and "\n" not in err, err


# --- generation configs as datasets, calibration -------------------------------------------------

def test_spearman_by_hand():
    from local_eval.compare.stats import ranks, spearman

    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert ranks([1, 1, 2]) == [1.5, 1.5, 3.0]
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(1.5 * 2))
    assert spearman([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_calibration_is_oriented_so_plus_one_means_the_published_order():
    from types import SimpleNamespace

    from local_eval.compare.calibration import published
    from local_eval.compare.report import calibration

    plan = SimpleNamespace(calibrate=("image_augment", "point_cloud"), presets=("p",), seeds=(0,))
    board, accuracy = published("image_augment"), published("point_cloud")
    # Our score is lower-is-better: the same as the leaderboard, the opposite of an accuracy.
    rows = [{"dataset": r, "preset": "p", "mean": v, "n": 1} for r, v in board.items()]
    rows += [{"dataset": r, "preset": "p", "mean": -v, "n": 1} for r, v in accuracy.items()
             if r != "fractal-4th"]
    result = calibration(plan, rows)
    assert result["image_augment"]["p"]["spearman"] == pytest.approx(1.0)
    assert result["image_augment"]["p"]["n"] == len(board)
    # fractal-4th's row holds its leaderboard score here, so the point-cloud order is not perfect.
    assert result["point_cloud"]["p"]["n"] == len(accuracy)
    assert -1.0 <= result["point_cloud"]["p"]["spearman"] < 1.0


def test_a_generation_config_is_generated_once_sized_to_the_presets(tmp_path):
    from local_eval.compare.datasets import GeneratedDataset, resolve_datasets
    from submission import FractalConfig, GenerationConfig

    config_file = tmp_path / "small.json"
    config_file.write_text(GenerationConfig(image_size=32, workers=1, fractal=FractalConfig(points=1000)).to_json())
    spec = parse_dataset(f"mine={config_file}")
    assert isinstance(spec, GeneratedDataset)
    (sized,) = resolve_datasets([spec], [preset_config("smoke")])  # smoke: 4 classes x 8 images
    assert sized.identity()["classes"] == 4 and sized.identity()["images_per_class"] == 8
    path = sized.materialize(tmp_path / "cache")
    assert path.name == f"gen-mine-{sized.digest()}"
    files = sorted(path.rglob("*.png"))
    assert len(files) == 32
    stamp = files[0].stat().st_mtime_ns
    assert sized.materialize(tmp_path / "cache") == path and files[0].stat().st_mtime_ns == stamp
    noise = NoiseDataset().matched(sized, [preset_config("smoke")])
    assert (noise.classes, noise.images_per_class, noise.image_size) == (4, 8, 32)
    assert parse_dataset("recipe:visualatom").name == "visualatom"
    with pytest.raises(UserError, match="unknown recipe"):
        parse_dataset("recipe:nope")


def test_calibrate_adds_the_tables_recipes_with_fractal_4th_as_baseline(tmp_path):
    from local_eval.compare.calibration import published
    from local_eval.compare.cli import build_parser, plan_from_args

    args = build_parser().parse_args(["scratch", "--calibrate", "image_augment", "--out",
                                      str(tmp_path / "cmp"), "--presets", "smoke", "--seeds", "2"])
    plan = plan_from_args(args)
    names = [d.name for d in plan.datasets]
    assert names[0] == "fractal-4th" and plan.baseline == "fractal-4th" and names[-1] == "scratch"
    assert set(names[:-1]) == set(published("image_augment")) and plan.calibrate == ("image_augment",)
    with pytest.raises(UserError, match="unknown calibration table 'nope'"):
        plan_from_args(build_parser().parse_args(["--calibrate", "nope", "--out", str(tmp_path / "x")]))
    with pytest.raises(UserError, match="at least one DATASET"):
        plan_from_args(build_parser().parse_args(["--out", str(tmp_path / "x")]))


# --- data changed under the same path: the runs are redone, the old score never reported ---------

def _mine(out: Path) -> tuple:
    """(score in compare.json, pre-training losses of the run) of dataset mine."""
    summary = json.loads((out / "compare.json").read_text())
    (score,) = [r["score"] for r in summary["runs"] if r["dataset"] == "mine"]
    report = json.loads((out / "runs" / "mine" / "smoke" / "seed0" / "report.json").read_text())
    return score, report["pretrain"]["loss"]


@pytest.mark.slow
@pytest.mark.parametrize("change", ["regenerate", "replace_one_image"])
def test_compare_redoes_the_runs_of_a_dataset_changed_in_place(tmp_path, capsys, change):
    import shutil

    import numpy as np
    from PIL import Image

    folder = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8)
    cifar = make_cifar100(tmp_path / "cifar", classes=4, train_per_class=8, test_per_class=4)
    out = tmp_path / "cmp"
    argv = ["compare", f"mine={folder}", "scratch", "--out", str(out), "--presets", "smoke",
            "--seeds", "1", "--data-root", str(cifar), "--workers", "0", "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    old_score, old_loss = _mine(out)
    if change == "regenerate":  # the same command with another seed, --overwrite
        shutil.rmtree(folder)
        make_image_folder(folder, classes=4, images_per_class=8, seed=1)
    else:  # one image replaced by another of the same size
        image = folder / "00000" / "00000.png"
        pixels = np.full((16, 16, 3), 255, dtype=np.uint8)
        Image.fromarray(pixels).save(image)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 already finished" in printed  # scratch, which reads no generated data
    assert "the data of mine changed since 1 of its runs were made" in printed
    assert "[1/2] mine / smoke / seed 0 ..." in printed  # trained again
    new_score, new_loss = _mine(out)
    assert new_loss != old_loss  # on the new data (the smoke scores may tie at 100.0)
    if new_score != old_score:
        assert f"{old_score:.2f}" not in printed
    aside = list((out / "stale-runs").glob("*/mine/smoke/seed0/report.json"))
    assert len(aside) == 1 and json.loads(aside[0].read_text())["pretrain"]["loss"] == old_loss
    # Unchanged since: the third time resumes everything.
    assert main(argv) == 0
    assert "2 already finished" in capsys.readouterr().out and _mine(out) == (new_score, new_loss)


def test_the_eta_is_known_after_the_first_run(tmp_path):
    """Scratch runs are estimated by the pre-trained runs' fine-tuning part, so the ETA does
    not wait for a whole seed round; a preset not run yet is named as what it waits for."""
    from local_eval.compare.datasets import ScratchDataset
    from local_eval.compare.plan import ComparePlan, Progress

    smoke = preset_config("smoke")
    plan = ComparePlan(out=tmp_path, datasets=(FolderDataset("mine", tmp_path), ScratchDataset()),
                       configs={"smoke": smoke, "quick": preset_config("quick")},
                       downstream={"smoke": "cifar100", "quick": "cifar100"}, seeds=(0, 1),
                       baseline="mine")
    progress = Progress(plan)
    assert progress.line() == "0/8 runs done; ETA unknown until the first run of preset smoke finishes"
    wall = {"pretrain": 30.0, "finetune": 10.0, "scratch": None, "this_invocation": 41.0}
    progress.record(("mine", "smoke", 0), {"wall_seconds": wall})
    assert progress.line() == "1/8 runs done; ETA unknown until the first run of preset quick finishes"
    progress.record(("mine", "quick", 0), {"wall_seconds": dict(wall, pretrain=60.0)})
    # smoke: scratch 0 and 1 at 10 s, mine 1 at 40 s; quick: 10 + 10 + 70 s.
    assert progress.eta() == pytest.approx(60.0 + 90.0)
    progress.record(("scratch", "smoke", 0), {"wall_seconds": {"pretrain": 0.0, "finetune": 14.0,
                                                               "scratch": None}})
    assert progress.eta() == pytest.approx(40.0 + 14.0 + 90.0)
    assert progress.line() == "3/8 runs done; ETA 00:02:24"
