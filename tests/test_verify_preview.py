import numpy as np
import pytest
from PIL import Image

from submission.errors import UserError
from submission.tools.preview import contact_sheet
from submission.tools.verify import verify_dataset

from .conftest import run_cli


def make_tree(root, classes=3, images=4, size=(20, 20), mode="RGB"):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"{c:05d}").mkdir(parents=True)
        for j in range(images):
            pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).convert(mode).save(root / f"{c:05d}" / f"{c:05d}_{j:05d}.png")
    return root


def test_a_good_tree_passes(tmp_path):
    report = verify_dataset(make_tree(tmp_path / "d"), classes=3, images_per_class=4)
    assert (report.classes, report.images, report.image_size, report.mode) == (3, 12, (20, 20), "RGB")


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: (d / "stray.txt").write_text("x"), "is not a class folder"),
    (lambda d: (d / "00001" / "00001_00000.png").unlink(), "holds 3 files, expected 4"),
    (lambda d: (d / "00002" / "00002_00001.png").write_bytes(b"\x89PNG truncated"), "is not a readable image"),
    (lambda d: Image.new("RGB", (20, 20)).save(d / "00000" / "00000_00002.png"), "is blank"),
    (lambda d: Image.fromarray(np.arange(1260, dtype=np.uint8).reshape(20, 21, 3)).save(d / "00000" / "00000_00003.png"), "is 21x20 RGB, but the first image is 20x20 RGB"),
    (lambda d: Image.fromarray(np.arange(400, dtype=np.uint8).reshape(20, 20)).save(d / "00001" / "00001_00003.png"), "20x20 L"),
])
def test_each_contest_rule_is_checked(tmp_path, damage, fragment):
    root = make_tree(tmp_path / "d")
    damage(root)
    with pytest.raises(UserError, match="dataset check failed") as info:
        verify_dataset(root, classes=3, images_per_class=4)
    assert fragment in str(info.value)


def test_wrong_class_count_via_cli(tmp_path):
    result = run_cli("verify", make_tree(tmp_path / "d"), "--classes", "1000", "--images-per-class", "4", "--quiet")
    assert result.returncode == 2 and "3 class folders, expected 1000" in result.stderr
    ok = run_cli("verify", tmp_path / "d", "--classes", "3", "--quiet")
    assert ok.returncode == 0 and ok.stdout.startswith("OK: 3 classes, 12 images")
    missing = run_cli("verify", tmp_path / "nope")
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


def test_preview_grid(tmp_path):
    root = make_tree(tmp_path / "d", classes=5, images=3)
    out = contact_sheet(root, tmp_path / "sheet.png", rows=4, samples=2, tile=16)
    with Image.open(out) as sheet:
        assert sheet.size == (56 + 2 * 18, 4 * 18)
    result = run_cli("preview", tmp_path / "empty", "--out", tmp_path / "x.png")
    assert result.returncode == 2 and "is not a directory" in result.stderr


BACKGROUND = (40, 40, 40)  # the contact sheet's empty colour


def tile_colours(sheet: Image.Image, row: int, col: int, tile: int) -> set:
    x, y = 56 + col * (tile + 2), row * (tile + 2)
    return set(sheet.crop((x, y, x + tile, y + tile)).getdata())


@pytest.mark.parametrize("via_cli", [False, True])
def test_preview_skips_unreadable_images_and_says_so(tmp_path, capsys, via_cli):
    root = make_tree(tmp_path / "d", classes=2, images=3)
    text_file = root / "00000" / "00000_00001.png"
    text_file.write_text("not an image, just named like one")
    whole = (root / "00001" / "00001_00002.png").read_bytes()
    (root / "00001" / "00001_00002.png").write_bytes(whole[: len(whole) // 2])  # truncated mid-pixels
    out = tmp_path / "sheet.png"
    if via_cli:
        result = run_cli("preview", root, "--out", out, "--rows", "2", "--samples", "3", "--tile", "16")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"preview written to {out}"
        stderr = result.stderr
    else:
        assert contact_sheet(root, out, rows=2, samples=3, tile=16) == out
        stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: preview skipped 2 unreadable image file(s)"), stderr
    assert f"first {text_file}" in lines[0]
    with Image.open(out) as sheet:
        sheet = sheet.convert("RGB")
        assert tile_colours(sheet, 0, 1, 16) == {BACKGROUND} and tile_colours(sheet, 1, 2, 16) == {BACKGROUND}
        for row, col in ((0, 0), (0, 2), (1, 0), (1, 1)):
            assert tile_colours(sheet, row, col, 16) != {BACKGROUND}, (row, col)


def test_preview_of_a_readable_tree_warns_about_nothing(tmp_path, capsys):
    contact_sheet(make_tree(tmp_path / "d", classes=2, images=2), tmp_path / "sheet.png", rows=2, samples=2, tile=16)
    assert capsys.readouterr().err == ""


def test_preview_out_under_a_file_is_one_line(tmp_path):
    root = make_tree(tmp_path / "d", classes=1, images=1)
    blocker = tmp_path / "somefile"
    blocker.write_text("mine")
    result = run_cli("preview", root, "--out", blocker / "sheet.png")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {blocker} is a file, not a folder")
    assert blocker.read_text() == "mine"
