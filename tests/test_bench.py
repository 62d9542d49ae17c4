"""`python -m submission bench`: JSON schema, parity figures, the end-to-end run, clear errors."""
from __future__ import annotations

import json
import tempfile

import pytest

from submission.tools.cli import main

SMALL = ["bench", "--images", "3", "--points", "600", "--image-size", "32", "--batch-size", "2", "--device", "cpu",
         "--min-seconds", "0"]


def run_json(capsys, *extra: str) -> dict:
    assert main([*SMALL, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_reports_both_backends_and_their_parity(capsys):
    pytest.importorskip("pytorch3d.renderer")
    result = run_json(capsys)
    assert result["device"] == "cpu" and result["images"] == 3 and result["end_to_end"] is None
    assert set(result["backends"]) == {"splat", "pytorch3d"}
    for row in result["backends"].values():
        assert row["images_per_s"] > 0 and row["ms_per_image"] == pytest.approx(1e3 / row["images_per_s"])
    parity = result["parity"]
    assert parity["between"] == ["splat", "pytorch3d"]
    assert 0.0 <= parity["mean_abs_diff"] < 1e-3 and parity["max_abs_diff"] <= 1e-5
    assert parity["values"] == 3 * 32 * 32 * 3
    assert result["speedup"] > 0


def test_single_backend_has_no_parity_and_table_is_readable(capsys):
    assert main([*SMALL, "--backends", "splat"]) == 0
    out = capsys.readouterr().out
    assert "images/s" in out and "ms/image" in out and "splat" in out and "pytorch3d" not in out
    result = run_json(capsys, "--backends", "splat")
    assert result["parity"] is None and list(result["backends"]) == ["splat"]


def test_bank_build_is_timed(capsys):
    result = run_json(capsys, "--backends", "splat", "--bank", "2")
    assert result["bank"]["categories"] == 2 and result["bank"]["points"] == 600 and result["bank"]["seconds"] > 0
    assert main([*SMALL, "--backends", "splat", "--bank", "2"]) == 0
    assert "category bank: 2 categories of 600 points built in" in capsys.readouterr().out


@pytest.mark.slow
def test_end_to_end_runs_a_real_generate_and_cleans_up(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_json(capsys, "--backends", "splat", "--end-to-end", "--e2e-classes", "2", "--e2e-images-per-class", "3")
    e2e = result["end_to_end"]
    assert e2e["images"] == 6 and e2e["images_per_s"] > 0 and e2e["backend"] == "splat"
    assert set(e2e["stages"]) == {"sampling", "rendering", "augmentation", "encoding"}
    assert all(stage["seconds"] >= 0 for stage in e2e["stages"].values())
    assert e2e["stages"]["rendering"]["seconds"] > 0 and e2e["stages"]["encoding"]["seconds"] > 0
    assert list(tmp_path.iterdir()) == []  # the temporary dataset is gone


@pytest.mark.parametrize("args, message", [
    (["--images", "0"], "--images must be at least 1"),
    (["--image-size", "8"], "--image-size must be at least"),
    (["--radius", "1.5"], "--radius must be in (0, 1)"),
    (["--backends", "splat,splat"], "distinct backends"),
    (["--backends", "nope"], "unknown renderer backend 'nope'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--e2e-classes", "0"], "--e2e-classes must be at least 1"),
    (["--bank", "0"], "--bank must be at least 1"),
])
def test_bad_arguments_fail_with_one_line_and_exit_2(capsys, args, message):
    assert main([*SMALL, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


@pytest.mark.parametrize("args, message", [
    (["--image-size", "100000"], "--image-size must be at most 4096"),
    (["--points", "1000000000"], "--points must be at most 1000000"),
    (["--seed", str(2**56)], "--seed must be at most 72057594037927935"),
    (["--images", "1000000000"], "use --images"),
    (["--images", "64", "--image-size", "4096"], "use --images 21 or less"),
    (["--bank", "1000000000"], "--bank must be at most 100000"),
    (["--threads", "1000000"], "--threads must be at most 1024"),
    (["--min-seconds", "inf"], "--min-seconds must be in [0, 3600]"),
    (["--min-seconds", "nan"], "--min-seconds must be in [0, 3600]"),
    (["--end-to-end", "--e2e-classes", "1000000000"], "--e2e-classes must be at most 100000"),
    (["--end-to-end", "--e2e-images-per-class", "1000000000"], "--e2e-images-per-class must be at most 100000"),
    (["--end-to-end", "--e2e-classes", "2000", "--e2e-images-per-class", "100000"], "at most 100000000 images"),
])
def test_bench_has_generates_limits_and_checks_them_before_any_work(capsys, monkeypatch, args, message):
    import submission.tools.bench

    def refuse(*args, **kwargs):
        raise AssertionError("bench started working: the input was not refused")

    monkeypatch.setattr(submission.tools.bench, "bench_clouds", refuse)  # never render, even on code that lets input through
    assert main([*SMALL, "--backends", "splat", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
