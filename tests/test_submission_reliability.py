"""Reliability, round 2 (issue 16), the `python -m submission` side: every bad command line is one
`error:` line with exit code 2 and writes nothing; no false OK from rehearse; glyph inputs checked
before any folder; Ctrl-C is one line; no worker writes after its parent is killed; a second run
is refused before anything is built; rehearse resumes after kill -9 and cleans up after it."""
from __future__ import annotations

import dataclasses
import fcntl
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest
from PIL import Image

from submission import GenerationConfig, GlyphConfig, generate
from submission.errors import UserError
from submission.families.glyphs import family as glyphs
from submission.families.glyphs.family import FontSpec, GlyphTable
from submission.fileio import STATE_DIRNAME
from submission.tools import preview, verify
from submission.worker_process import child_pids, command_line, is_running

from .conftest import REPO
from .test_glyphs import CJK_FONT, TINY_CLASSES, needs_font, tiny, write_table  # noqa: F401  (fixture)
from .test_verify_preview import make_tree

LINUX = sys.platform.startswith("linux")
# Arguments that keep a generate run tiny, so that a bad input the code fails to refuse ends fast (exit 0).
TINY_PACK = ["--classes", "1", "--images-per-class", "1", "--image-size", "32", "--workers", "1"]
TINY = [*TINY_PACK, "--quiet"]
UNASSIGNED = (0x0378, 0x0379, 0x0380, 0x0381, 0x0382, 0x0383)  # code points no font maps


@pytest.fixture(autouse=True)
def own_cache_and_temp(tmp_path, monkeypatch):
    """The glyph coverage cache and rehearse's temp folders live in this test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m submission ARGS` from the repository root, as a user runs it (no PYTHONPATH: rehearse's
    child must import the packed copy)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "submission", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2 and exactly one line of output in all, `error: ...` on stderr."""
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2 and len(output) == 1 and result.stderr.startswith("error: "), \
        f"exit {result.returncode}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
    for fragment in fragments:
        assert fragment in output[0], output[0]
    return output[0]


# --- item 8 and every bad input: the table -------------------------------------------------------
# Placeholders: {out} a path that must stay absent, {tree} a small valid dataset, {dup} a config JSON
# naming a key twice, {file} a plain file, {dir} an empty folder.
BAD_COMMAND_LINES = [
    # argparse (item 8)
    ([], "the following arguments are required"),
    (["nope"], "invalid choice"),
    (["generate"], "the following arguments are required: OUT"),
    (["generate", "{out}", "extra"], "unrecognized arguments: extra"),
    (["generate", "{out}", "--nope"], "unrecognized arguments: --nope"),
    (["generate", "{out}", "--recipe", "fractal", "--config", "{dup}"], "not allowed with argument"),
    (["generate", "{out}", "--classes", "abc"], "invalid int value: 'abc'"),
    (["generate", "{out}", "--shard", "abc"], "expected I/N such as 0/4"),
    (["generate", "{out}", "--format", "gif"], "invalid choice: 'gif'"),
    (["verify"], "the following arguments are required: DIR"),
    (["verify", "{tree}", "--classes", "x"], "invalid int value"),
    (["preview", "{tree}"], "the following arguments are required: --out"),
    (["pack"], "the following arguments are required: OUT.zip"),
    (["pack", "{out}.zip", "--nope"], "unrecognized arguments: --nope"),
    (["rehearse"], "the following arguments are required"),
    (["rehearse", "{file}", "{out}", "--classes", "two"], "invalid int value"),
    (["recipes", "extra"], "unrecognized arguments: extra"),
    (["bench", "--nope"], "unrecognized arguments: --nope"),
    # values (item 4 and the first round's)
    (["generate", "{out}", "--recipe", "", *TINY, "--points", "100"], "unknown recipe ''"),
    (["generate", "{out}", "--config", "", *TINY], "--config is empty"),
    (["generate", "{out}", "--config", "{dup}", "--quiet"], "duplicate key 'classes'"),
    (["generate", "{out}", "--recipe", "visualatom", "--points", "5", *TINY], "--points only applies to the fractal"),
    (["generate", "{out}", "--recipe", "visualatom", "--backend", "splat", *TINY], "--backend only applies"),
    (["generate", "{out}", "--recipe", "glyphs", "--radius", "0.1", *TINY], "--radius only applies"),
    (["generate", "{out}", "--recipe", "nope"], "unknown recipe 'nope'"),
    (["generate", "{out}", "--classes", "-1"], "classes must be a positive integer"),
    (["generate", "{out}", "--seed", "-1"], "seed must be a non-negative integer"),
    (["generate", "{out}", "--workers", "0"], "workers must be at least 1"),
    (["generate", "{out}", "--shard", "2/2"], "0 <= I < N"),
    (["generate", "{file}", *TINY], "is a file, not a directory"),
    (["verify", "{tree}", "--classes", "-1"], "classes (--classes) must be a positive integer, got -1"),
    (["verify", "{tree}", "--images-per-class", "0"], "images_per_class (--images-per-class) must be a positive"),
    (["verify", "{tree}", "--workers", "0"], "workers (--workers) must be a positive integer"),
    (["verify", "{out}"], "is not a directory"),
    (["preview", "{tree}", "--out", "{out}.gif"], "must end in .png, .jpg, .jpeg"),
    (["preview", "{tree}", "--out", "{out}"], "must end in .png"),
    (["preview", "{tree}", "--out", "{out}.png", "--tile", "100000"], "tile in [8, 1024]"),
    (["preview", "{tree}", "--out", "{out}.png", "--samples", "1000000"], "over the 64 Mpx limit"),
    (["preview", "{tree}", "--out", "{out}.png", "--rows", "0"], "rows and samples must be >= 1"),
    (["preview", "{tree}", "--recipe", "fractal", "--out", "{out}.png"], "(one of them)"),
    (["preview", "--recipe", "", "--out", "{out}.png"], "unknown recipe ''"),
    (["preview", "{tree}", "--recipes", "", "--out", "{out}.png"], "--recipes takes recipe names"),
    (["preview", "--recipes", "fractal,,glyphs", "--out", "{out}.png"], "--recipes takes recipe names"),
    (["preview", "--recipe", "fractal", "--out", "{out}.png", "--rows", "1001", "--samples", "1", "--tile", "8"],
     "ask for at most that many"),
    (["pack", "{out}.txt", *TINY_PACK], "does not end in .zip"),
    (["pack", "{out}.zip", "--shard", "0/2", *TINY_PACK], "drop --shard"),
    (["pack", "{out}.zip", "--recipe", "visualatom", "--points", "5", *TINY_PACK], "--points only applies"),
    (["pack", "{out}.zip", "--config", "{dup}"], "duplicate key 'classes'"),
    (["rehearse", "{out}.zip", "{out}"], "does not exist"),
    (["rehearse", "{dir}", "{out}"], "is a folder, not a zip"),
    (["rehearse", "{file}", "{out}"], "is not a readable zip"),
    # round 3 (issue 26), item 1: no output inside an input or an existing dataset
    (["preview", "{tree}", "--out", "{tree}/00000/00000_00000.png"], "lies inside the dataset"),
    (["preview", "{tree}", "--out", "{tree}/00001/sheet.png"], "lies inside the dataset"),
    (["preview", "--recipe", "visualatom", "--out", "{tree}/sheet.png", "--rows", "1", "--samples", "1"],
     "lies inside the dataset"),
    (["generate", "{tree}/new", *TINY], "OUT {tree}/new lies inside the dataset {tree}"),
    (["generate", "{tree}/00000/new", *TINY], "lies inside the dataset {tree}"),
    (["pack", "{tree}/00000/x.zip", *TINY_PACK], "OUT.zip {tree}/00000/x.zip lies inside the dataset"),
    (["rehearse", "{zip}", "{tree}/new"], "OUTDIR {tree}/new lies inside the dataset"),
    (["rehearse", "{held}/sub.zip", "{held}", "--overwrite-all"], "OUTDIR {held} contains OUT.zip {held}/sub.zip"),
    # item 8: inputs that are not regular files, outputs that are dangling links
    (["generate", "{out}", "--config", "{fifo}", *TINY], "--config {fifo} is a FIFO (named pipe), not a regular file"),
    (["pack", "{out}.zip", "--config", "{fifo}"], "is a FIFO (named pipe)"),
    (["generate", "{out}", "--bank", "{fifo}", *TINY], "--bank {fifo} is a FIFO (named pipe)"),
    (["rehearse", "/dev/null", "{out}"], "/dev/null is a character device, not a zip file"),
    (["rehearse", "{fifo}", "{out}"], "is a FIFO (named pipe), not a zip file"),
    (["rehearse", "{zip}", "{dangling}"], "{dangling} is a dangling symbolic link to {out}"),
    (["generate", "{dangling}", *TINY], "is a dangling symbolic link to"),
    (["generate", "{fifo}", *TINY], "is a FIFO (named pipe), not a directory"),
    # item 9: a rehearsal that would fail on the server
    (["rehearse", "{albzip}", "{out}"], "imports albumentations (src/generator.py:1)"),
    (["rehearse", "{zip}", "{out}", "--python", "/bin/echo"], "--python /bin/echo is not a Python interpreter"),
    (["rehearse", "{zip}", "{out}", "--python", "{notpy}"], "is not a Python interpreter"),
    (["rehearse", "{zip}", "{out}", "--python", "{py2}"], "is Python 2.7.18, and the server runs Python 3.10"),
    # item 7: rehearse's numbers before any work
    (["rehearse", "{file}", "{out}", "--classes", "1000000000"], "--classes must be at most 100000, got 1000000000"),
    (["rehearse", "{zip}", "{out}", "--images-per-class", "0"], "--images-per-class must be a positive integer"),
    (["rehearse", "{zip}", "{out}", "--classes", "100000", "--images-per-class", "100000"],
     "must be at most 100000000 images"),
    (["rehearse", "{zip}", "{out}", "--classes", "100000"], "100000 x 1001 = 100100000"),
]


@pytest.mark.parametrize("argv, fragment", BAD_COMMAND_LINES, ids=[" ".join(a) or "(none)" for a, _ in BAD_COMMAND_LINES])
def test_a_bad_command_line_is_one_error_line_and_writes_nothing(tmp_path, argv, fragment):
    tree = make_tree(tmp_path / "tree", classes=2, images=2)
    dup = tmp_path / "dup.json"
    dup.write_text('{"classes": 1, "images_per_class": 1, "image_size": 32, "points": 100, "workers": 1, '
                   '"classes": 2}\n')
    plain = tmp_path / "plain.zip"
    plain.write_text("not a zip\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    values = {"out": str(out), "tree": str(tree), "dup": str(dup), "file": str(plain), "dir": str(empty),
              **special_inputs(tmp_path, out)}
    before = snapshot(tmp_path)
    assert_one_error_line(cli(*[arg.format(**values) for arg in argv]), fragment.format(**values))
    assert snapshot(tmp_path) == before  # no OUT, no OUT.zip, no picture, no file changed: nothing


def special_inputs(tmp_path: Path, out: Path) -> Dict[str, str]:
    """The round-3 placeholders: {zip} a zip that passes every check of rehearse's (its generator imports
    only the standard library and numpy), {albzip} one that imports albumentations without a
    requirements.txt, {held} a folder holding sub.zip, {fifo} a FIFO, {dangling} a symbolic link to the
    absent {out}, {notpy} a program that is no Python, {py2} one that answers as Python 2.7 does."""
    config = json.dumps({"classes": 1, "images_per_class": 1001}).encode()
    tiny_zip = make_zip(tmp_path / "tiny.zip", {"params/config.json": config, "src/generator.py": b"import numpy\n"})
    alb_zip = make_zip(tmp_path / "alb.zip", {"params/config.json": config,
                                              "src/generator.py": b"import albumentations\nimport json\n"})
    held = tmp_path / "held"
    held.mkdir()
    make_zip(held / "sub.zip", {"params/config.json": config, "src/generator.py": b""})
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(out)
    return {"zip": str(tiny_zip), "albzip": str(alb_zip), "held": str(held), "fifo": str(tmp_path / "fifo"),
            "dangling": str(tmp_path / "dangling"),
            "notpy": str(fake_program(tmp_path / "notpy", 'echo "Python 2.7.18"')),
            "py2": str(fake_program(tmp_path / "py2", 'echo "2.7.18 (default, Mar  9 2023, 10:00:00)"'))}


def make_zip(path: Path, files: Dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def fake_program(path: Path, line: str) -> Path:
    path.write_text(f"#!/bin/sh\n{line}\n")
    path.chmod(0o755)
    return path


def snapshot(root: Path) -> List[tuple]:
    """Every entry under `root`: its path, type, and for a file its size and modification time
    (folders' times are left out: Python's tempfile probes $TMPDIR by creating and removing a file)."""
    entries = []
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        kind = stat.S_IFMT(info.st_mode)
        entries.append((str(path), kind, *((info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else ())))
    return entries


# --- item 2: rehearse never says OK for a corrupt packed font ----------------------------------------

@needs_font
def test_rehearse_refuses_a_corrupt_packed_font_instead_of_a_same_named_system_font(tiny, tmp_path):
    from submission.tools.pack import build_zip_bytes

    with zipfile.ZipFile(io.BytesIO(build_zip_bytes(tiny))) as archive:
        files = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    font = f"params/fonts/{CJK_FONT.name}"  # a system font of the same name is installed
    files[font] = b"garbage!"  # 8 bytes
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    result = cli("rehearse", broken, tmp_path / "out", "--classes", "1", "--images-per-class", "1")
    assert result.returncode == 2 and "rehearse: OK" not in result.stdout, result.stdout + result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the packed generator refused to start"), result.stderr
    assert "FreeType cannot open font" in lines[0] and f"params/fonts/{CJK_FONT.name}" in lines[0], lines[0]


def test_glyph_fonts_are_opened_by_their_exact_path_only(tmp_path):
    """The worker and the checks never fall back to another file of the same name (Pillow's truetype does)."""
    if CJK_FONT is None:
        pytest.skip("no CJK font installed (make fonts)")
    broken = tmp_path / CJK_FONT.name
    broken.write_bytes(b"garbage!")
    with pytest.raises(UserError, match="FreeType cannot open font"):
        glyphs.open_font(broken, FontSpec(CJK_FONT.name, 0, "fonts-test"), 64)


# --- item 3: the trial override never hides a bad packed config ---------------------------------------

@pytest.fixture(scope="module")
def packed_fractal(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "submission.zip"
    result = cli("pack", out, "--classes", "3", "--images-per-class", "4", "--image-size", "32", "--points", "500",
                 "--workers", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def rewrite_zip(source: Path, target: Path, edit: Dict[str, object]) -> Path:
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    config = json.loads(files["params/config.json"])
    config.update(edit)
    files["params/config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


@pytest.mark.slow
@pytest.mark.parametrize("edit, fragment", [({"classes": -1}, "classes must be a positive integer"),
                                            ({"classes": 5}, "bank")])
def test_rehearse_checks_the_config_as_packed_before_the_trial_override(packed_fractal, tmp_path, edit, fragment):
    broken = rewrite_zip(packed_fractal, tmp_path / "broken.zip", edit)
    result = cli("rehearse", broken, tmp_path / "out", "--classes", "2", "--images-per-class", "2")
    assert result.returncode == 2 and "rehearse: OK" not in result.stdout, result.stdout + result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the packed generator refused to start"), result.stderr
    assert fragment in lines[0], lines[0]


# --- round 3 (issue 26), item 9: the packed code's imports, checked against the server's stack -------------

def test_the_packed_code_imports_only_what_the_server_and_its_requirements_provide():
    from submission.tools.pack import packed_code
    from submission.tools.server_imports import check_server_imports, missing_on_server

    files = packed_code()
    assert missing_on_server(files) == {}  # pytorch3d is optional: the adapter falls back to splat without it
    del files["requirements.txt"]
    missing = missing_on_server(files)
    assert missing["albumentations"].startswith("src/submission/augment.py:") and "tqdm" in missing, missing
    with pytest.raises(UserError) as exc:
        check_server_imports(files, "sub.zip")
    assert "\n" not in str(exc.value) and "sub.zip's code imports albumentations" in str(exc.value), str(exc.value)
    assert "it has no requirements.txt" in str(exc.value)
    files["requirements.txt"] = b"# only a comment\ntqdm==4.67.1  # progress bars\n--only-binary=:all:\n"
    assert sorted(missing_on_server(files)) == ["albumentations"]


# --- item 4: values that were silently wrong -------------------------------------------------------

def test_preview_writes_the_format_its_out_suffix_names(tmp_path):
    tree = make_tree(tmp_path / "tree", classes=2, images=2)
    for name, magic in (("p.jpg", b"\xff\xd8\xff"), ("p.JPEG", b"\xff\xd8\xff"), ("p.png", b"\x89PNG")):
        out = preview.contact_sheet(tree, tmp_path / name, rows=2, samples=2, tile=16)
        assert out.read_bytes().startswith(magic), name
        with Image.open(out) as image:
            assert image.size == (preview.LABEL_WIDTH + 2 * 18, 2 * 18)


@needs_font
def test_chars_per_class_longer_than_the_table_rows_is_refused_before_any_work(tiny, tmp_path):
    config = tiny.replace(glyphs=dataclasses.replace(tiny.glyphs, chars_per_class=7))  # the rows hold 6
    with pytest.raises(UserError) as exc:
        generate(tmp_path / "out", config, progress=False)
    message = str(exc.value)
    assert "\n" not in message and "glyphs.chars_per_class is 7" in message and "class 0 has 6" in message, message
    assert not (tmp_path / "out").exists()


def test_a_duplicate_key_is_refused_by_every_json_reader(tmp_path):
    with pytest.raises(UserError, match="duplicate key 'classes'"):
        GenerationConfig.from_json('{"classes": 2, "classes": 3}')
    table = GlyphTable(fonts=(FontSpec("a.ttf", 0, "p"),), classes=(tuple(map(ord, TINY_CLASSES[0])),), build={})
    text = table.to_json().replace('"format": ', '"version": 1, "format": ', 1)  # "version" now appears twice
    (tmp_path / "table.json").write_text(text)
    with pytest.raises(UserError, match="duplicate key 'version'"):
        GlyphTable.load(tmp_path / "table.json")


def test_verify_checks_its_counts_before_reading_the_tree(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "tree", classes=2, images=2)
    monkeypatch.setattr(verify, "_inspect", lambda path: pytest.fail("an image was read before the options were checked"))
    monkeypatch.setattr(verify.os, "listdir", lambda path: pytest.fail("the tree was listed before the options were checked"))
    for kwargs, fragment in (({"classes": -1}, "classes (--classes) must be a positive integer, got -1"),
                             ({"images_per_class": 0}, "images_per_class (--images-per-class) must be"),
                             ({"workers": 0}, "workers (--workers) must be")):
        with pytest.raises(UserError) as exc:
            verify.verify_dataset(tree, **kwargs)
        assert fragment in str(exc.value), str(exc.value)


# --- item 5: preview of a folder is bounded before anything is allocated -------------------------------

@pytest.mark.parametrize("kwargs", [{"tile": 100000}, {"samples": 1000000}, {"rows": 3, "samples": 5000, "tile": 500}])
def test_preview_of_a_folder_refuses_a_sheet_too_big_for_memory(tmp_path, monkeypatch, kwargs):
    tree = make_tree(tmp_path / "tree", classes=3, images=2)
    real_new = Image.new

    def bounded_new(mode, size, *args, **kw):  # the old code would ask for hundreds of GB here
        assert size[0] * size[1] <= 10**8, f"preview allocated a {size[0]}x{size[1]} sheet"
        return real_new(mode, size, *args, **kw)

    monkeypatch.setattr(preview.Image, "new", bounded_new)
    with pytest.raises(UserError) as exc:
        preview.contact_sheet(tree, tmp_path / "sheet.png", **{"rows": 8, "samples": 8, "tile": 96, **kwargs})
    assert "\n" not in str(exc.value) and ("over the 64 Mpx limit" in str(exc.value) or "tile in [8, 1024]" in str(exc.value))
    assert not (tmp_path / "sheet.png").exists()


# --- item 7: Ctrl-C is one line, whatever the workers were doing ---------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="/proc and process groups: Linux")
@pytest.mark.parametrize("recipe", ["visualatom", "glyphs"])
def test_ctrl_c_while_workers_start_is_one_line(tmp_path, recipe):
    if recipe == "glyphs" and CJK_FONT is None:
        pytest.skip("no CJK font installed (make fonts)")
    out = tmp_path / "out"
    extra = []
    if recipe == "glyphs":  # the tiny table of one installed font: the full one needs all 24
        fonts = tmp_path / "fonts"
        fonts.mkdir()
        (fonts / CJK_FONT.name).symlink_to(CJK_FONT)
        table = write_table(tmp_path / "table.json", [FontSpec(CJK_FONT.name, 0, "fonts-test")])
        config = GenerationConfig(family="glyphs", classes=3, images_per_class=200, image_size=64, device="cpu",
                                  glyphs=GlyphConfig(font_dir=str(fonts), table_path=str(table)))
        (tmp_path / "config.json").write_text(config.to_json())
        extra = ["--config", str(tmp_path / "config.json")]
    else:
        extra = ["--recipe", "visualatom", "--classes", "8", "--images-per-class", "200"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "submission", "generate", str(out), *extra, "--workers", "2", "--quiet"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(child_pids(proc.pid)) < 2:  # worker processes are starting (importing, as the issue saw)
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]
    assert (stdout + stderr).strip().splitlines() == ["interrupted; rerun the same command to resume"], stderr[-3000:]


# --- item 9: no worker writes after its parent is killed ------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="PR_SET_PDEATHSIG and /proc: Linux")
def test_no_worker_writes_a_file_after_its_parent_is_killed(tmp_path):
    out = tmp_path / "orphans"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # batch 2: a worker writes every couple of images, so one that outlives its parent writes soon
    proc = subprocess.Popen([sys.executable, "-m", "submission", "generate", str(out), "--classes", "8",
                             "--images-per-class", "400", "--image-size", "64", "--points", "2000", "--batch-size", "2",
                             "--workers", "2", "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    workers: List[int] = []
    try:
        deadline = time.monotonic() + 300
        while len(list(out.glob("0000*/*.png"))) < 20:  # both workers are writing
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        workers = [pid for pid in child_pids(proc.pid) if "resource_tracker" not in command_line(pid)]
        assert workers, "no worker processes found"
        os.kill(proc.pid, signal.SIGKILL)  # the main process alone, as kill -9 or the OOM killer does
        proc.wait()  # reaped: it has fully exited
        at_death = sorted(str(p) for p in out.rglob("*"))
        deadline = time.monotonic() + 60
        while any(is_running(pid) for pid in workers):
            assert time.monotonic() < deadline, f"workers {[p for p in workers if is_running(p)]} outlived their parent"
            time.sleep(0.02)
        after = sorted(str(p) for p in out.rglob("*"))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in workers:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
    assert sorted(set(after) - set(at_death)) == [], "files appeared after the main process was gone"


# --- item 10: glyph fonts and coverage are checked before the first folder ---------------------------------

@needs_font
@pytest.mark.parametrize("damage, fragment", [("uncovered", "no font of the glyph table covers U+0378 (class 1)"),
                                              ("corrupt font", "FreeType cannot open font")])
def test_glyph_font_problems_are_found_before_any_folder_is_made(tiny, tmp_path, damage, fragment):
    fonts = Path(tiny.glyphs.font_dir)
    specs = [FontSpec(CJK_FONT.name, 0, "fonts-test")]
    rows = TINY_CLASSES
    if damage == "uncovered":
        rows = (TINY_CLASSES[0], "".join(map(chr, UNASSIGNED)))
    else:
        (fonts / "broken.ttf").write_bytes(b"garbage!")
        specs.append(FontSpec("broken.ttf", 0, "fonts-test"))
    write_table(Path(tiny.glyphs.table_path), specs, classes=rows)
    out = tmp_path / "out"
    with pytest.raises(UserError) as exc:
        generate(out, tiny, progress=False)
    assert "\n" not in str(exc.value) and fragment in str(exc.value), str(exc.value)
    assert not out.exists()  # no state folder, lock, class folder or image


@needs_font
def test_the_coverage_check_is_cached_by_font_content(tiny, tmp_path, monkeypatch):
    font = tmp_path / "copy" / CJK_FONT.name
    font.parent.mkdir()
    font.write_bytes(CJK_FONT.read_bytes())
    table = GlyphTable.load(tiny.glyphs.table_path)
    calls = []
    real = glyphs.rasterise
    monkeypatch.setattr(glyphs, "rasterise", lambda *args: calls.append(1) or real(*args))

    def check() -> int:
        calls.clear()
        glyphs.check_fonts(tiny, table, [font])
        return len(calls)

    assert check() > 0  # first time: every character drawn
    assert check() == 0  # the same fonts and characters: remembered
    with open(font, "ab") as f:
        f.write(b"\0")  # other content (still a working font): checked again
    assert check() > 0
    assert check() == 0
    assert check_other_size(tiny, table, font, calls) > 0  # another master size: checked again


def check_other_size(config, table, font, calls) -> int:
    calls.clear()
    glyphs.check_fonts(config.replace(image_size=config.image_size * 2), table, [font])
    return len(calls)


# --- item 11: a second run is refused before anything is built; rehearse resumes and cleans up ---------

def test_a_second_run_is_refused_before_anything_is_built(tmp_path, small_config, monkeypatch):
    from submission import pipeline
    from submission.families.fractal.family import FractalFamily

    out = tmp_path / "busy"
    generate(out, small_config.replace(shard_index=0, shard_count=2), progress=False)  # unfinished: state kept
    monkeypatch.setattr(pipeline, "_finished_tree_matches", lambda *args: pytest.fail("rendered before taking the lock"))
    monkeypatch.setattr(FractalFamily, "check", lambda self, config: pytest.fail("family checked before taking the lock"))
    with open(out / STATE_DIRNAME / "lock-0-of-1", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running generate holds it
        with pytest.raises(UserError, match="another generate run is writing"):
            generate(out, small_config, progress=False)


@pytest.mark.slow
def test_rehearse_resumes_an_unfinished_run_in_outdir(packed_fractal, tmp_path):
    out = tmp_path / "out"
    # What a rehearse killed after its first class leaves: class 0 done, the state folder, no class 1.
    trial = GenerationConfig(classes=2, images_per_class=2, image_size=32, workers=1, device="cpu").replace(points=500)
    generate(out, trial.replace(shard_index=0, shard_count=2), progress=False)
    assert (out / STATE_DIRNAME).is_dir() and not (out / "00001").exists()
    result = cli("rehearse", packed_fractal, out, "--classes", "2", "--images-per-class", "2")
    assert result.returncode == 0 and "resuming the unfinished run" in result.stdout, result.stdout + result.stderr[-3000:]
    assert "rehearse: OK" in result.stdout
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "00000", "00000/00000_00000.png", "00000/00000_00001.png", "00001", "00001/00001_00000.png",
        "00001/00001_00001.png"]
    generate(tmp_path / "other2", trial.replace(classes=3, shard_index=0, shard_count=2), progress=False)
    mismatch = cli("rehearse", packed_fractal, tmp_path / "other2", "--classes", "2", "--images-per-class", "2")
    lines = mismatch.stderr.strip().splitlines()
    assert mismatch.returncode == 2 and len(lines) == 1, mismatch.stderr[-3000:]
    assert "holds an unfinished run of another config (differs in: classes)" in lines[0] and "--overwrite" in lines[0]


def test_a_refused_rehearse_still_removes_the_temp_folder_of_a_killed_one(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "tmp" / f"rehearse-{dead.pid}-ab_cd123"
    (stale / "unpacked").mkdir(parents=True)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("mine")
    plain = tmp_path / "x.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("params/config.json", "{}")
        archive.writestr("src/generator.py", "")
    result = cli("rehearse", plain, busy)  # refused: OUTDIR holds a file of the user's
    assert result.returncode == 2 and "holds no unfinished run to resume; pass --overwrite" in result.stderr, result.stderr
    assert f"removed {stale}" in result.stdout and not stale.exists()
    assert (busy / "mine.txt").read_text() == "mine"
