"""The visualatom family: byte-determinism, class parameters, config checks, generate / pack / rehearse."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
from PIL import Image

from submission import GenerationConfig
from submission.errors import UserError
from submission.families.visualatom.config import VisualAtomConfig
from submission.families.visualatom.family import VisualAtomWorker, class_params, gradient_noise
from submission.pipeline import generate
from submission.recipes import create_recipe

from .conftest import run_cli
from .test_pack import cli  # without PYTHONPATH: the rehearsed zip must import its own copy


def tiny(**changes) -> GenerationConfig:
    """The visualatom recipe shrunk to a few 64 px images."""
    return create_recipe("visualatom", classes=2, images_per_class=3, image_size=64).replace(**changes)


def tree_hashes(root: Path) -> Dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_bytes_do_not_depend_on_workers_or_batch_size(tmp_path):
    one = generate(tmp_path / "one", tiny(workers=1, batch_size=50), progress=False)
    two = generate(tmp_path / "two", tiny(workers=2, batch_size=2), progress=False)
    hashes = tree_hashes(one)
    assert len(hashes) == 6 and hashes == tree_hashes(two)
    with Image.open(next(one.rglob("*.png"))) as image:
        assert (image.size, image.mode) == ((64, 64), "RGB")


def test_images_differ_between_and_within_classes_and_are_gray_lines_on_black():
    worker = VisualAtomWorker(tiny())
    a = worker.render(0, [0, 1], worker.class_context(0))
    b = worker.render(1, [0], worker.class_context(1))
    assert a.shape == (2, 64, 64, 3) and a.dtype == np.uint8
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], b[0])
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all()  # grayscale in RGB
    again = worker.render(0, [1], worker.class_context(0))  # an image alone equals it in a batch
    assert np.array_equal(again[0], a[1])


def test_class_parameters_depend_only_on_seed_and_class():
    base = class_params(tiny(), 5)
    assert class_params(tiny(classes=1000, images_per_class=7, image_size=128), 5) == base
    assert class_params(tiny(seed=1), 5) != base and class_params(tiny(), 6) != base
    va = VisualAtomConfig()
    for c in range(200):
        p = class_params(tiny(), c)
        assert va.vertices_min <= p.vertices <= va.vertices_max and va.orbits_min <= p.orbits <= va.orbits_max
        assert p.n1 != p.n2 or p.n1 == 0  # the public renderer's rule
        assert 0 <= p.noise <= 4 and 0 <= p.step <= 0.1 and 10 <= p.radius <= 60 and 1 <= p.oval_x <= 2


def test_gradient_noise_has_mean_zero_and_the_renderers_range():
    values = gradient_noise(np.random.default_rng(0).random((3, 200_000)))
    assert abs(values.mean()) < 0.01 and 0.2 < values.std() < 0.5 and np.abs(values).max() <= 1.6


@pytest.mark.parametrize("changes, fragment", [
    ({"vertices_min": 2}, "visualatom.vertices_min must be an integer in [3, 10000], got 2"),
    ({"vertices_min": 500, "vertices_max": 400}, "visualatom.vertices_min must be at most visualatom.vertices_max"),
    ({"orbits_max": 2.5}, "visualatom.orbits_max must be an integer"),
    ({"vertices_max": 10_000, "orbits_max": 1_000}, "vertices_max x orbits_max must be at most"),
    ({"freq_min": 5, "freq_max": 5}, "visualatom.freq_min must be below freq_max"),
    ({"noise_max": float("nan")}, "visualatom.noise_max must be a finite number"),
    ({"noise_min": 3.0, "noise_max": 2.0}, "visualatom.noise_min must be at most visualatom.noise_max"),
    ({"radial_step_max": -0.1}, "visualatom.radial_step_max must be a finite number in [0, 10000]"),
    ({"oval_max": 0.5}, "visualatom.oval_max must be a finite number in [1, 100]"),
    ({"center_range": float("inf")}, "visualatom.center_range"),
    ({"gray_max": 256}, "visualatom.gray_max must be an integer in [0, 255]"),
    ({"line_thickness": True}, "visualatom.line_thickness must be an integer"),
    ({"antialias": "yes"}, "visualatom.antialias must be true or false"),
    ({"canvas_size": 8}, "visualatom.canvas_size must be an integer in [16, 4096]"),
])
def test_bad_values_are_one_line_user_errors(changes, fragment):
    with pytest.raises(UserError) as info:
        VisualAtomConfig(**changes)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    with pytest.raises(UserError, match="visualatom"):  # and through the JSON a pack ships
        GenerationConfig.from_dict({"family": "visualatom", "visualatom": {**VisualAtomConfig().__dict__, **changes}})


def test_config_json_round_trip_and_type_checks():
    config = tiny(visualatom=VisualAtomConfig(orbits_max=50, antialias=True))
    assert GenerationConfig.from_json(config.to_json()) == config
    with pytest.raises(UserError, match=r"visualatom.vertices_min must be int, got str"):
        GenerationConfig.from_dict({"visualatom": {"vertices_min": "200"}})
    with pytest.raises(UserError, match=r"unknown visualatom key\(s\) \['nope'\]"):
        GenerationConfig.from_dict({"visualatom": {"nope": 1}})
    with pytest.raises(UserError, match="drop --bank"):
        generate("unused", tiny(bank_path="bank.npz"), progress=False)


@pytest.mark.slow
def test_cli_generates_the_recipe(tmp_path):
    out = tmp_path / "out"
    result = run_cli("generate", out, "--recipe", "visualatom", "--classes", "2", "--images-per-class", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00001"]
    files = sorted(out.rglob("*.png"))
    assert len(files) == 4
    for path in files:
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((512, 512), "RGB")


@pytest.mark.slow
def test_pack_and_rehearse(tmp_path):
    packed = tmp_path / "va.zip"
    result = cli("pack", str(packed), "--recipe", "visualatom", "--classes", "2", "--images-per-class", "3",
                     "--image-size", "64", "--workers", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    with zipfile.ZipFile(packed) as archive:
        params = sorted(n for n in archive.namelist() if n.startswith("params/") and not n.endswith("/"))
        config = GenerationConfig.from_json(archive.read("params/config.json").decode())
    assert params == ["params/config.json"]  # no asset: classes come from the seed
    assert config == tiny(workers=1) and json.loads(config.to_json())["family"] == "visualatom"
    out = tmp_path / "dataset"
    result = cli("rehearse", str(packed), str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "rehearse: OK" in result.stdout and "(2 classes, 6 images, all 64x64 RGB)" in result.stdout
    assert tree_hashes(out) == tree_hashes(generate(tmp_path / "local", tiny(workers=1), progress=False))


# --- visualatom-paper: the public renderer's 512 px, kept as drawn (issue 18) ---------------------

def test_paper_recipe_is_visualatom_at_512_px():
    paper, ours = create_recipe("visualatom-paper"), create_recipe("visualatom-224")
    assert paper.image_size == paper.visualatom.canvas_size == 512
    assert paper.replace(image_size=224) == ours  # nothing else differs
    assert create_recipe("visualatom") == paper  # the default visualatom recipe since issue 18


def test_paper_recipe_draws_without_resizing(tmp_path, monkeypatch):
    import submission.families.visualatom.family as family_module

    def no_resize(*args, **kwargs):
        raise AssertionError("visualatom-paper must not resize its canvas")

    monkeypatch.setattr(family_module.cv2, "resize", no_resize)
    cfg = create_recipe("visualatom-paper", classes=2, images_per_class=1)
    worker = VisualAtomWorker(cfg)
    images = worker.render(0, [0], worker.class_context(0))
    assert images.shape == (1, 512, 512, 3)
    monkeypatch.undo()
    one = generate(tmp_path / "one", cfg.replace(workers=1), progress=False)
    two = generate(tmp_path / "two", cfg.replace(workers=2), progress=False)
    hashes = tree_hashes(one)
    assert len(hashes) == 2 and hashes == tree_hashes(two)
    with Image.open(one / "00000" / "00000_00000.png") as image:
        assert image.size == (512, 512) and np.array_equal(np.asarray(image), images[0])
