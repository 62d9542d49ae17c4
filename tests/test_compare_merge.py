"""`compare OUT --merge OTHER_OUT...`: runs made in other folders (other paths and mtimes of the
same bytes, as on another machine) merge into one comparison equal to one that ran everything;
a source that is not a comparison, has another plan or holds another run is refused in one line
and nothing is written; merging again is a no-op. And the content hash behind it
(local_eval.datasets.fingerprint.content_sha256)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from local_eval.cli import main
from local_eval.datasets import fingerprint
from local_eval.datasets.fingerprint import content_sha256, folder_fingerprint, forget
from tests.local_eval_fixtures import make_cifar100


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def one_line_error(capsys, words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err, err


def machine(root: Path, points: int = 1000) -> tuple:
    """What one machine has: a small generation config and a tiny CIFAR-100, written afresh
    (the same bytes as on any other machine, at other paths, with other mtimes)."""
    from submission import FractalConfig, GenerationConfig

    root.mkdir(parents=True)
    config = root / "small.json"
    config.write_text(GenerationConfig(image_size=32, workers=1,
                                       fractal=FractalConfig(points=points)).to_json())
    return config, make_cifar100(root / "data", classes=4, train_per_class=8, test_per_class=4)


def plan_args(inputs: tuple, out: Path, *extra: str) -> list:
    """mine (generated: unit 0), scratch; seeds 0, 1: runs 1, 2 (seed 0) and 3, 4 (seed 1)."""
    config, data_root = inputs
    return ["compare", f"mine={config}", "scratch", "--out", str(out), "--presets", "smoke",
            "--seeds", "2", "--data-root", str(data_root), "--workers", "0", "--no-progress",
            *extra]


def test_content_sha256_is_the_bytes_not_the_place_and_hashes_each_file_once(tmp_path,
                                                                               monkeypatch):
    first = make_cifar100(tmp_path / "a")
    os.utime(first / "cifar-100-python" / "meta", ns=(1, 1))
    second = make_cifar100(tmp_path / "b")  # same bytes, another path, other mtimes
    assert folder_fingerprint(first) != folder_fingerprint(second)
    assert content_sha256(first) == content_sha256(second)
    assert content_sha256(first).startswith("sha256:3:")
    forget()
    hashed = []
    original = fingerprint._file_sha256
    monkeypatch.setattr(fingerprint, "_file_sha256", lambda p: hashed.append(p) or original(p))
    content_sha256(first)  # a new command: every file is known by (path, size, mtime)
    assert hashed == []
    (first / "cifar-100-python" / "meta").write_bytes(b"other")
    forget()
    changed = content_sha256(first)
    assert changed != content_sha256(second) and [Path(p).name for p in hashed] == ["meta"]
    assert content_sha256(tmp_path / "missing") is None


@pytest.mark.slow
def test_merge_refuses_bad_sources_in_one_line_and_writes_nothing(tmp_path, capsys):
    here = machine(tmp_path / "here")
    out = tmp_path / "cmp"
    assert main(plan_args(here, out, "--prepare-only")) == 0
    other = tmp_path / "other"
    assert main(plan_args(machine(tmp_path / "there"), other, "--prepare-only")) == 0
    changed = tmp_path / "changed"
    assert main(plan_args(here, changed, "--prepare-only", "--pretrain-epochs", "3")) == 0
    points = tmp_path / "points"
    assert main(plan_args(machine(tmp_path / "far", points=1200), points,
                          "--prepare-only")) == 0
    capsys.readouterr()
    # A finished run of `other` whose record says it trained on another generation config.
    run = other / "runs" / "mine" / "smoke" / "seed0"
    run.mkdir(parents=True)
    record = json.loads((out / "plan.json").read_text())
    identity = {"config": {"seed": 0}, "data": "/elsewhere", "data_content": "config:0123",
                "loader": "store", **{k: v for k, v in record["presets"]["smoke"].items()
                                      if k != "config"}}
    (run / "run.json").write_text(json.dumps(identity))
    (run / "report.json").write_text("{}")
    before = snapshot(out)
    cases = [([str(tmp_path / "none")], "is not a folder"),
             ([str(tmp_path / "here")], "is not a comparison (no plan.json)"),
             ([str(changed)], "holds another plan than"),
             ([str(points)], "dataset mine: config_sha256"),
             ([str(out)], "is " + str(out) + " itself"),
             ([str(other)], "another run than")]
    for sources, words in cases:
        assert main(["compare", str(out), "--merge", *sources]) == 2
        one_line_error(capsys, words)
    assert main(["compare", str(out), "--merge", str(other), "--status"]) == 2
    one_line_error(capsys, "--merge is a command of its own")
    assert main(["compare", str(tmp_path / "nothing"), "--merge", str(other)]) == 2
    one_line_error(capsys, "holds no comparison (plan.json)")
    assert snapshot(out) == before and not (tmp_path / "nothing").exists()


def without_stats_paths(path: Path) -> dict:
    """compare.json, without the folder each dataset's statistics were measured in (each
    comparison generates its own copy in its cache)."""
    summary = json.loads(path.read_text())
    for stats in summary["data_stats"].values():
        assert stats.pop("path").endswith(f"-{summary['plan']['datasets'][0]['config_sha256']}")
    return summary


@pytest.mark.slow
def test_runs_made_in_two_folders_merge_into_the_comparison_of_one(tmp_path, capsys):
    # Machine A runs seed 0, machine B seed 1, each with its own copy of the config and the
    # downstream set (same bytes, other paths and mtimes); one folder runs everything.
    here, there = machine(tmp_path / "a"), machine(tmp_path / "b")
    first, second, whole = tmp_path / "first", tmp_path / "second", tmp_path / "whole"
    for inputs, out, units in ((here, first, (1, 2)), (there, second, (3, 4))):
        assert main(plan_args(inputs, out, "--prepare-only")) == 0
        for unit in units:
            assert main(["compare", str(out), "--task", str(unit)]) == 0
    assert main(plan_args(here, whole)) == 0
    for checkpoint in second.rglob("*.pt"):  # what travels: no checkpoint is needed
        checkpoint.unlink()
    shutil.rmtree(second / "cache")
    capsys.readouterr()

    assert main(["compare", str(first), "--merge", str(second)]) == 0
    out = capsys.readouterr().out
    assert f"{second}: 2 finished run(s) of this plan" in out
    assert "merged 2 run(s)" in out and "4/4 runs" in out
    merged, reference = (without_stats_paths(d / "compare.json") for d in (first, whole))
    assert merged["plan"]["presets"]["smoke"]["downstream_path"] != \
        json.loads((second / "compare.json").read_text())["plan"]["presets"]["smoke"][
            "downstream_path"]
    assert merged == reference  # scores, losses, intervals, plan (the same data root as whole)
    run = first / "runs" / "mine" / "smoke" / "seed1"
    assert sorted(p.name for p in run.iterdir()) == ["curves.png", "merged-from.json",
                                                     "report.json", "run.json"]
    assert json.loads((run / "report.json").read_text())["pretrain"]["loss"] == json.loads(
        (whole / "runs" / "mine" / "smoke" / "seed1" / "report.json").read_text())[
        "pretrain"]["loss"]
    assert json.loads((run / "merged-from.json").read_text())["source"] == str(
        (second / "runs" / "mine" / "smoke" / "seed1").resolve())

    before = snapshot(first)  # twice: a no-op; the other way round: only what it lacked
    assert main(["compare", str(first), "--merge", str(second)]) == 0
    assert "merged 0 run(s)" in capsys.readouterr().out
    assert {p: b for p, b in snapshot(first).items() if not p.name.startswith("compare.")} == \
        {p: b for p, b in before.items() if not p.name.startswith("compare.")}
    assert without_stats_paths(first / "compare.json") == reference
    assert main(["compare", str(first), "--status"]) == 0
    assert "5 units: 5 done" in capsys.readouterr().out


def test_a_run_made_twice_is_the_same_result_whatever_its_timings_paths_and_device(tmp_path):
    from local_eval.compare.merge import Import

    report = {"score": 112.5, "downstream_scores": {"fashion-mnist": 112.5},
              "pretrain": {"loss": [1.7, 1.2], "epoch_seconds": [8.9, 8.6]},
              "downstream": {"fashion-mnist": {"top1": [50.0], "epoch_seconds": [8.1]}},
              "data": {"pretrain": "/here/gen"}, "wall_seconds": {"pretrain": 28.3},
              "runtime": {"device": "cpu"}, "versions": {"torch": "2.4"}}
    elsewhere = json.loads(json.dumps(report))
    elsewhere["pretrain"]["epoch_seconds"] = [0.4, 0.4]
    elsewhere["downstream"]["fashion-mnist"]["epoch_seconds"] = [0.2]
    elsewhere.update(data={"pretrain": "/there/gen"}, wall_seconds={"pretrain": 1.0},
                     runtime={"device": "cuda"}, versions={"torch": "2.11"})
    other_loss = json.loads(json.dumps(report))
    other_loss["pretrain"]["loss"][1] = 1.3
    folders = {}
    for name, content in (("here", report), ("there", elsewhere), ("other", other_loss)):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "report.json").write_text(json.dumps(content))
    run = Import(("mine", "smoke", 0), folders["here"], {})
    assert run.same_result(folders["there"]) and not run.same_result(folders["other"])
