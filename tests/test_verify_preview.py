import numpy as np
import pytest
from PIL import Image

from submission.errors import UserError
from submission.preview import contact_sheet
from submission.verify import verify_dataset

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
