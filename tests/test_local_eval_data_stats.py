"""`python -m local_eval stats`: dataset diagnostics without training, on tiny generated sets."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from local_eval.cli import main
from local_eval.stats.images import (
    blank_fraction,
    colourfulness,
    dataset_stats,
    edge_density,
    nearest_centroid_accuracy,
)


def write_folder(root: Path, images: np.ndarray) -> Path:
    """root/<class:02d>/<i:02d>.png from (C, K, H, W, 3) uint8 images."""
    for label, row in enumerate(images):
        (root / f"{label:02d}").mkdir(parents=True)
        for index, image in enumerate(row):
            Image.fromarray(image).save(root / f"{label:02d}" / f"{index:02d}.png")
    return root


def noise(classes: int, per_class: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (classes, per_class, size, size, 3),
                                                dtype=np.uint8)


def constant_colours(classes: int, per_class: int, size: int) -> np.ndarray:
    """Class c: a distinct constant colour, plus faint noise (+-2) so no two images are equal."""
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30]])[:classes]
    jitter = np.random.default_rng(1).integers(-2, 3, (classes, per_class, size, size, 3))
    return (colours[:, None, None, None, :] + jitter).astype(np.uint8)


def test_blank_fraction_black_is_one_noise_is_zero():
    black = np.zeros((3, 40, 40, 3), np.uint8)
    assert blank_fraction(black, 32) == 1.0 and blank_fraction(black, 41) is None
    assert blank_fraction(noise(1, 3, 40)[0], 32) == 0.0
    # Left half black, right half noise, 8 px crops of a 16 px image: 9 x 9 positions, the
    # crops wholly in the black half (left column 0 only: columns 0-7) are blank: 9 of 81.
    half = noise(1, 1, 16)[0].copy()
    half[:, :, :8] = 0
    assert blank_fraction(half, 8) == pytest.approx(9 / 81)


def test_colourfulness_and_edges():
    grey = np.repeat(noise(1, 2, 8)[0][..., :1], 3, axis=3)  # R = G = B
    assert colourfulness(grey).tolist() == [0.0, 0.0]
    # Pure red: rg = 255, yb = 127.5, no spread: 0.3 * hypot(255, 127.5) = 85.53.
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert colourfulness(red)[0] == pytest.approx(0.3 * np.hypot(255, 127.5))
    assert edge_density(np.zeros((2, 10, 10, 3), np.uint8)) == 0.0
    # A vertical step of 255 at column 5 of a 10 x 10 grey image: Sobel sees it at the interior
    # columns 3 and 4 (of the 8 x 8 interior): 2 / 8 of the pixels.
    step = np.zeros((1, 10, 10, 3), np.uint8)
    step[:, :, 5:] = 255
    assert edge_density(step) == pytest.approx(2 / 8)


def test_nearest_centroid_by_hand():
    # Two classes on a line: class 0 at 0, 1, 2; class 1 at 10, 12, 14. Each class alternates
    # between the folds: fold 0 holds 0, 2 and 10, 14 (centroids 1 and 12), fold 1 holds 1 and
    # 12 (centroids 1 and 12): every image is nearest its own class's centroid.
    features = np.array([[0.0], [1.0], [2.0], [10.0], [12.0], [14.0]])
    assert nearest_centroid_accuracy(features, np.array([0, 0, 0, 1, 1, 1])) == 1.0
    # Class 1 at 10, 12, 3: fold 0's class-1 centroid is 6.5 (1 -> class 0 and 12 -> class 1,
    # right); fold 1's centroids 1 and 12 put 0, 2, 10 right and 3 (2 from 1, 9 from 12) wrong.
    features[5] = 3.0
    assert nearest_centroid_accuracy(features, np.array([0, 0, 0, 1, 1, 1])) == \
        pytest.approx(5 / 6)
    assert nearest_centroid_accuracy(features[:4], np.array([0, 0, 0, 1])) is None


def test_stats_of_generated_sets(tmp_path):
    black = dataset_stats(write_folder(tmp_path / "black", np.zeros((3, 4, 40, 40, 3), np.uint8)),
                          crops=(32, 224))
    assert black["blank_fraction"] == {"32": 1.0, "224": None}
    assert (black["classes"], black["images"], black["image_size"]) == (3, 12, [40, 40])
    assert black["mean"] == [0.0, 0.0, 0.0] and black["colourfulness"] == 0.0
    noisy = dataset_stats(write_folder(tmp_path / "noise", noise(4, 10, 40)), crops=(32,))
    assert noisy["blank_fraction"] == {"32": 0.0} and noisy["edge_density"] > 0.8
    assert noisy["mean"] == pytest.approx([127.5] * 3, abs=2)
    # Identical noise classes: chance is 1 / 4; 40 held-out guesses stay near it.
    assert noisy["chance"] == 0.25 and 0.1 <= noisy["nearest_centroid_accuracy"] <= 0.4
    colours = dataset_stats(write_folder(tmp_path / "colours", constant_colours(4, 5, 20)))
    assert colours["nearest_centroid_accuracy"] == 1.0 and colours["colourfulness"] > 50
    # The sample is seeded: 2 of 4 classes x 3 of 5 images, the same every time.
    small = dataset_stats(tmp_path / "colours", classes=2, per_class=3, seed=7)
    assert (small["sampled_classes"], small["sampled_images"]) == (2, 6)
    assert small == dataset_stats(tmp_path / "colours", classes=2, per_class=3, seed=7)


def test_stats_command_writes_table_json_and_plot(tmp_path, capsys):
    black = write_folder(tmp_path / "black", np.zeros((2, 3, 40, 40, 3), np.uint8))
    noisy = write_folder(tmp_path / "noisy", noise(2, 3, 40))
    out = tmp_path / "stats.json"
    assert main(["stats", str(black), f"rand={noisy}", "--json", str(out), "--plot",
                 str(tmp_path / "s.png"), "--crops", "8,32"]) == 0
    table = capsys.readouterr().out
    assert "| black | 40x40 | 2 / 6 (2 / 6) |" in table and "| rand | 40x40 |" in table
    assert "blank 8 px | blank 32 px" in table
    result = json.loads(out.read_text())["datasets"]
    assert result["black"]["blank_fraction"] == {"8": 1.0, "32": 1.0}
    assert result["rand"]["blank_fraction"] == {"8": 0.0, "32": 0.0}
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_stats_bad_inputs(tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(flat / "a.png")
    mixed = write_folder(tmp_path / "mixed", np.zeros((2, 2, 8, 8, 3), np.uint8))
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(mixed / "01" / "02.png")
    good = write_folder(tmp_path / "good", np.zeros((2, 2, 8, 8, 3), np.uint8))
    cases = [([str(tmp_path / "missing")], "does not exist"),
             ([str(flat)], "is not an ImageFolder"),
             ([str(mixed), "--images-per-class", "3"], "stats needs one image size"),
             ([str(good), "--classes", "1"], "--classes and --images-per-class must be at least 2"),
             ([str(good), "--crops", "32,x"], "--crops must be comma-separated"),
             ([str(good), "--crops", "0"], "--crops must be positive"),
             ([str(good), f"good={mixed}"], "given twice"),
             ([str(good), "--json", str(good / "00" / "00.png" / "x.json")], "--json")]
    for argv, words in cases:
        assert main(["stats", *argv]) == 2, argv
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert err.startswith("error: ") and words in err and "\n" not in err, err
        assert captured.out == ""


def test_compare_measures_each_dataset_once_per_content(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from local_eval.compare import diagnostics
    from local_eval.compare.datasets import FolderDataset, ScratchDataset
    from local_eval.compare.report import markdown
    from local_eval.core.presets import preset_config
    from local_eval.datasets.fingerprint import forget

    folder = write_folder(tmp_path / "a", constant_colours(2, 3, 20))
    plan = SimpleNamespace(datasets=[FolderDataset("a", folder), ScratchDataset()],
                           configs={"smoke": preset_config("smoke")}, cache=tmp_path / "cache")
    first = diagnostics.dataset_diagnostics(plan)
    assert list(first) == ["a"] and first["a"]["blank_fraction"] == {"16": 0.0}  # smoke: 16 px
    assert len(list((tmp_path / "cache" / "stats").iterdir())) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("measured again although the data did not change")

    monkeypatch.setattr(diagnostics, "dataset_stats", refuse)
    assert diagnostics.dataset_diagnostics(plan) == json.loads(json.dumps(first))
    monkeypatch.undo()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "01" / "03.png")  # changed
    forget()
    again = diagnostics.dataset_diagnostics(plan)
    assert again["a"]["images"] == 7 and len(list((tmp_path / "cache" / "stats").iterdir())) == 2
    table = markdown({"finished_runs": 0, "total_runs": 0, "seeds": [0], "baseline": "a",
                      "summary": [], "data_stats": {**again, "b": {"error": "mixed sizes"}}})
    assert "| a | 20x20 | 2 / 7 (2 / 7) |" in table and "- b: not measured (mixed sizes)" in table


def test_stats_needs_no_torch(tmp_path):
    """`stats` is seconds per dataset: it must not pay torch's import; its copy of torchvision's
    image extensions must stay torchvision's."""
    import subprocess
    import sys

    from torchvision.datasets.folder import IMG_EXTENSIONS

    from local_eval.datasets.folders import IMG_EXTENSIONS as OURS

    assert tuple(IMG_EXTENSIONS) == OURS
    folder = write_folder(tmp_path / "d", noise(2, 2, 8))
    code = ("import sys; from local_eval.cli import main; code = main(['stats', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| d | 8x8 |" in result.stdout
