"""submission/paths.py: the one rule for outputs and inputs (never inside, equal or around), what
counts as a dataset, and inputs that are not regular files (issue 26, items 1 and 8)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from submission import GenerationConfig, generate
from submission.config import ImageAugmentConfig
from submission.errors import UserError
from submission.fileio import STATE_DIRNAME
from submission.paths import (
    check_not_inside_a_dataset,
    check_output_outside_inputs,
    dataset_holding,
    describe_path,
    open_regular_file,
)
from submission.tools.preview import build_contact_sheet

from .conftest import REPO
from .test_verify_preview import make_tree

LINUX = sys.platform.startswith("linux")


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("output, relation", [("data", "is"), ("data/00000/x.png", "lies inside"),
                                              ("data/new/deeper", "lies inside"), (".", "contains"),
                                              ("link/x.png", "lies inside"), ("data/../data/y", "lies inside")])
def test_an_output_may_not_be_inside_or_around_an_input(tmp_path, monkeypatch, output, relation):
    make_tree(tmp_path / "data", classes=2, images=1)
    (tmp_path / "link").symlink_to(tmp_path / "data" / "00001")  # resolved: the output is inside the data
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as exc:
        check_output_outside_inputs(output, {"--data": "data"}, "--out")
    message = one_line(exc)
    assert message.startswith(f"--out {output} {relation} --data data;") and "choose another --out" in message, message


def test_an_output_through_a_symbolic_link_loop_is_one_line(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(UserError) as exc:
        check_output_outside_inputs(tmp_path / "a" / "x.png", {"--data": tmp_path / "data"}, "--out")
    assert "points (in a loop) back to itself" in one_line(exc)
    with pytest.raises(UserError):
        check_not_inside_a_dataset(tmp_path / "a" / "x.png", "--out")


def test_outputs_apart_from_their_inputs_pass(tmp_path):
    make_tree(tmp_path / "data", classes=2, images=1)
    for output in (tmp_path / "out", tmp_path / "data-2", tmp_path / "dat", tmp_path / "other" / "data"):
        check_output_outside_inputs(output, {"--data": tmp_path / "data", "the downstream set": tmp_path / "ds"}, "--out")


@pytest.mark.skipif(not LINUX, reason="bind mounts: Linux")
def test_a_second_path_to_the_same_folder_is_seen(tmp_path):
    """A bind mount (or any second path to the same folder) is caught by the folder's identity."""
    make_tree(tmp_path / "data", classes=2, images=1)
    (tmp_path / "view").mkdir()
    mounted = subprocess.run(["mount", "--bind", str(tmp_path / "data"), str(tmp_path / "view")], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount --bind refused here: {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(UserError, match="lies inside --data"):
            check_output_outside_inputs(tmp_path / "view" / "00000" / "x.png", {"--data": tmp_path / "data"}, "--out")
    finally:
        subprocess.run(["umount", str(tmp_path / "view")], check=True)


def test_what_counts_as_a_dataset(tmp_path):
    data = make_tree(tmp_path / "data", classes=2, images=1)
    assert dataset_holding(data / "new") == data  # a new class folder would join it
    assert dataset_holding(data / "00000" / "x.png") == data
    assert dataset_holding(data / "00000" / "sub" / "deeper") == data
    assert dataset_holding(data) is None  # the dataset itself is not inside one (generate resumes it)
    single = make_tree(tmp_path / "single", classes=1, images=1)
    assert dataset_holding(single / "00000" / "x.png") == single

    unfinished = tmp_path / "unfinished"
    (unfinished / STATE_DIRNAME).mkdir(parents=True)  # a generate run that has not written a class yet
    assert dataset_holding(unfinished / "00000") == unfinished

    # A project folder: files at its top, a docs folder with pictures. Not a dataset: writing beside it is fine.
    project = tmp_path / "project"
    (project / "docs").mkdir(parents=True)
    (project / "docs" / "figure.png").write_bytes(b"png")
    (project / "README.md").write_text("hi")
    assert dataset_holding(project / "out") is None
    (project / "README.md").unlink()
    (project / "src").mkdir()
    (project / "src" / "main.py").write_text("")
    assert dataset_holding(project / "out") is None  # src/ holds no image: not a tree of class folders
    runs = tmp_path / "runs"  # experiment folders, each with a plot beside its report: no class folders
    for run in ("run1", "run2"):
        (runs / run).mkdir(parents=True)
        (runs / run / "loss.png").write_bytes(b"png")
        (runs / run / "report.json").write_text("{}")
    assert dataset_holding(runs / "run3" / "data") is None
    with pytest.raises(UserError) as exc:
        check_not_inside_a_dataset(data / "00000" / "x.png", "--out")
    assert one_line(exc).startswith(f"--out {data / '00000' / 'x.png'} lies inside the dataset {data}")


def test_preview_through_a_symbolic_link_into_its_dataset_is_refused(tmp_path):
    data = make_tree(tmp_path / "data", classes=2, images=2)
    (tmp_path / "link").symlink_to(data / "00000")
    image = data / "00000" / "00000_00000.png"
    before = image.read_bytes()
    with pytest.raises(UserError) as exc:
        build_contact_sheet(data, tmp_path / "link" / "00000_00000.png", rows=2, samples=2, tile=16)
    assert "lies inside the dataset" in one_line(exc)
    assert image.read_bytes() == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs: POSIX")
def test_what_a_path_is_and_a_fifo_is_never_opened_for_reading(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert describe_path(tmp_path / "fifo") == "a FIFO (named pipe)"
    assert describe_path("/dev/null") == "a character device"
    assert describe_path(tmp_path) == "a directory"
    assert describe_path(tmp_path / "dangling") == f"a dangling symbolic link to {tmp_path / 'nowhere'}"
    assert describe_path(tmp_path / "nowhere") == "missing"
    for path, what in ((tmp_path / "fifo", "a FIFO (named pipe), not a regular file"),
                       ("/dev/null", "a character device, not a regular file"),
                       (tmp_path / "dangling", "a dangling symbolic link to"), (tmp_path, "a directory")):
        with pytest.raises(UserError) as exc:  # returns at once: the FIFO has no writer and is never waited on
            open_regular_file(path, f"--config {path}", "give a file")
        assert f"--config {path} is {what}" in one_line(exc)


def run_with_timeout(*args: str) -> subprocess.CompletedProcess:
    """`python -m submission ARGS`; the old code waited forever on a FIFO, so a timeout fails the test."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "submission", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs: POSIX")
def test_a_fifo_named_like_an_image_blocks_neither_verify_nor_preview(tmp_path):
    data = make_tree(tmp_path / "data", classes=2, images=2)
    fifo = data / "00001" / "00001_00001.png"
    fifo.unlink()
    os.mkfifo(fifo)
    result = run_with_timeout("verify", str(data), "--quiet")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{fifo} is a FIFO (named pipe), not an image file" in result.stderr
    sheet = build_contact_sheet(data, tmp_path / "sheet.png", rows=2, samples=2, tile=16)
    assert sheet.skipped == [fifo] and sheet.path.is_file()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs: POSIX")
def test_a_fifo_named_like_an_image_does_not_block_generate(tmp_path):
    out = tmp_path / "out"
    args = ["--recipe", "visualatom", "--classes", "2", "--images-per-class", "2", "--image-size", "32",
            "--workers", "1", "--quiet"]
    assert run_with_timeout("generate", str(out), *args).returncode == 0
    first = out / "00000" / "00000_00000.png"
    first.unlink()
    os.mkfifo(first)  # the finished-tree check reads this file
    result = run_with_timeout("generate", str(out), *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{first} is a FIFO (named pipe), not a regular file" in result.stderr


def test_a_settings_object_given_as_none_is_its_default():
    assert GenerationConfig(image_augment=None) == GenerationConfig()
    assert GenerationConfig(fractal=None) == GenerationConfig()
    assert GenerationConfig().replace(image_augment=None).image_augment == ImageAugmentConfig()
    with pytest.raises(UserError, match="image_augment must be an ImageAugmentConfig .or None for the default., got dict"):
        GenerationConfig(image_augment={"hflip_p": 0.0})


def test_generate_inside_a_dataset_is_refused_before_anything_is_written(tmp_path):
    data = make_tree(tmp_path / "data", classes=2, images=1)
    before = sorted(str(p) for p in data.rglob("*"))
    config = GenerationConfig(family="visualatom", classes=1, images_per_class=1, image_size=32, workers=1)
    with pytest.raises(UserError) as exc:
        generate(data / "extra", config, progress=False)
    assert f"OUT {data / 'extra'} lies inside the dataset {data}" in one_line(exc)
    assert sorted(str(p) for p in data.rglob("*")) == before
