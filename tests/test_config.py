import dataclasses
import json
import re

import pytest

from submission import GenerationConfig
from submission.errors import UserError


def test_defaults_are_the_contest_setting():
    config = GenerationConfig()
    assert (config.classes, config.images_per_class, config.image_size, config.points) == (1000, 1000, 224, 10_000)
    assert config.radius == 0.015 and config.points_per_pixel == 4
    assert config.class_ids() == tuple(range(1000))


def test_json_roundtrip_and_replace():
    config = GenerationConfig(classes=7, image_format="jpg", seed=3)
    assert GenerationConfig.from_json(config.to_json()) == config
    assert config.with_overrides(classes=None, seed=4) == GenerationConfig(classes=7, image_format="jpg", seed=4)


@pytest.mark.parametrize("data, message", [
    ({"classes": 0}, "classes must be a positive"),
    ({"images_per_class": -1}, "images_per_class must be a positive"),
    ({"image_size": 8}, "image_size must be at least"),
    ({"device": "tpu"}, "unknown device"),
    ({"image_format": "gif"}, "unknown image format"),
    ({"colour": 1}, "unknown config key"),
    ({"classes": "ten"}, "config.classes must be int"),
    ({"classes": True}, "got a boolean"),
    ({"point_augment": {"keep_min": 2.0}}, "keep fraction"),
    ({"point_augment": {"spin": True}}, "unknown point_augment key"),
    ({"image_augment": {"hflip_p": 1.5}}, "probability"),
    ({"shard_index": 2, "shard_count": 2}, "shard must be I/N"),
])
def test_bad_values_raise_clear_errors(data, message):
    with pytest.raises(UserError, match=message):
        GenerationConfig.from_dict(data)


def test_bad_json():
    with pytest.raises(UserError, match="not valid JSON"):
        GenerationConfig.from_json("{")
    with pytest.raises(UserError, match="must be a JSON object"):
        GenerationConfig.from_json(json.dumps([1]))


def test_shards_partition_the_classes():
    shards = [GenerationConfig(classes=10, shard_index=i, shard_count=3).class_ids() for i in range(3)]
    assert sorted(c for s in shards for c in s) == list(range(10))


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("data, message", [
    # counts and sizes: bounded, and the message says the limit
    ({"classes": 10**9}, "classes must be at most 100000"),
    ({"images_per_class": 10**9}, "images_per_class must be at most 100000"),
    ({"classes": 100_000, "images_per_class": 1001}, "at most 100000000 images"),
    ({"image_size": 100_000}, "image_size must be at most 4096"),
    ({"points": 10**9}, "points must be at most 1000000"),
    ({"seed": 2**56}, "seed must be at most 72057594037927935"),
    ({"seed": 10**30}, "seed must be at most"),
    ({"points_per_pixel": 151}, "points_per_pixel must be at most 150"),
    ({"workers": 10**6}, "workers must be at most 1024"),
    ({"batch_size": 10**6, "images_per_class": 100_000}, "use --batch-size 4868 or less"),
    ({"image_size": 4096}, "use --batch-size 21 or less"),  # the default batch of 50 would need ~9 GiB
    ({"shard_index": 0, "shard_count": 10**9}, "shard count N must be at most 100000"),
    # camera and points: finite, in range
    ({"radius": NAN}, "radius must be a finite number"),
    ({"radius": INF}, "radius must be a finite number"),
    ({"camera_distance": INF}, "camera_distance must be a finite number"),
    ({"camera_distance": NAN}, "camera_distance must be a finite number"),
    ({"camera_distance": 1e6}, "camera_distance must be a finite number in (1, 1000]"),
    ({"camera_distance": 10**400}, "config.camera_distance must be a finite number"),
    ({"fov_degrees": NAN}, "fov_degrees must be a finite number"),
    ({"fov_degrees": INF}, "fov_degrees must be a finite number"),
    # point_augment
    ({"point_augment": {"keep_min": NAN}}, "keep fraction"),
    ({"point_augment": {"keep_max": INF}}, "keep fraction"),
    ({"point_augment": {"scale_max": INF}}, "point_augment scale"),
    ({"point_augment": {"scale_min": NAN}}, "point_augment scale"),
    ({"point_augment": {"scale_max": 11.0}}, "scale_max <= 10"),
    ({"point_augment": {"shift": NAN}}, "point_augment.shift must be a finite number"),
    ({"point_augment": {"shift": INF}}, "point_augment.shift must be a finite number"),
    ({"point_augment": {"shift": 11.0}}, "point_augment.shift must be a finite number in [0, 10]"),
    ({"point_augment": {"shift": -0.1}}, "point_augment.shift"),
    ({"point_augment": {"noise_std": NAN}}, "point_augment.noise_std must be a finite number"),
    ({"point_augment": {"noise_std": INF}}, "point_augment.noise_std must be a finite number"),
    ({"point_augment": {"noise_std": 2.0}}, "point_augment.noise_std must be a finite number in [0, 1]"),
    # image_augment: probabilities and every limit
    *[({"image_augment": {name: NAN}}, f"image_augment.{name} is a probability")
      for name in ("transpose_p", "hflip_p", "vflip_p", "affine_p", "brightness_contrast_p", "hsv_p")],
    ({"image_augment": {"shift_limit": -5.0}}, "image_augment.shift_limit must be a finite number in [0, 1]"),
    ({"image_augment": {"shift_limit": 1.5}}, "image_augment.shift_limit"),
    ({"image_augment": {"shift_limit": NAN}}, "image_augment.shift_limit"),
    ({"image_augment": {"scale_limit": NAN}}, "image_augment.scale_limit must be a finite number in [0, 1)"),
    ({"image_augment": {"scale_limit": 1.0}}, "image_augment.scale_limit"),
    ({"image_augment": {"scale_limit": -0.1}}, "image_augment.scale_limit"),
    ({"image_augment": {"rotate_limit": NAN}}, "image_augment.rotate_limit must be a finite number in [0, 180]"),
    ({"image_augment": {"rotate_limit": 181.0}}, "image_augment.rotate_limit"),
    ({"image_augment": {"rotate_limit": -1.0}}, "image_augment.rotate_limit"),
    ({"image_augment": {"brightness_limit": INF}}, "image_augment.brightness_limit must be a finite number in [0, 1]"),
    ({"image_augment": {"brightness_limit": -0.5}}, "image_augment.brightness_limit"),
    ({"image_augment": {"contrast_limit": NAN}}, "image_augment.contrast_limit must be a finite number in [0, 1]"),
    ({"image_augment": {"contrast_limit": 2.0}}, "image_augment.contrast_limit"),
    ({"image_augment": {"hue_shift_limit": 181.0}}, "image_augment.hue_shift_limit must be a finite number in [0, 180]"),
    ({"image_augment": {"hue_shift_limit": NAN}}, "image_augment.hue_shift_limit"),
    ({"image_augment": {"sat_shift_limit": 256.0}}, "image_augment.sat_shift_limit must be a finite number in [0, 255]"),
    ({"image_augment": {"sat_shift_limit": INF}}, "image_augment.sat_shift_limit"),
    ({"image_augment": {"val_shift_limit": -1.0}}, "image_augment.val_shift_limit must be a finite number in [0, 255]"),
    ({"image_augment": {"val_shift_limit": NAN}}, "image_augment.val_shift_limit"),
], ids=lambda v: repr(v) if isinstance(v, dict) else "")
def test_every_numeric_field_is_finite_and_in_range(data, message):
    with pytest.raises(UserError, match=re.escape(message)) as info:
        GenerationConfig.from_dict(data)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_values_at_the_limits_are_accepted():
    from submission.config import ImageAugmentConfig, PointAugmentConfig

    GenerationConfig(classes=100_000, images_per_class=1000, image_size=4096, batch_size=18, points=1_000_000,
                     seed=2**56 - 1, points_per_pixel=150, camera_distance=1000.0, workers=1024, shard_count=100_000,
                     point_augment=PointAugmentConfig(scale_min=10.0, scale_max=10.0, shift=10.0, noise_std=1.0),
                     image_augment=ImageAugmentConfig(shift_limit=1.0, scale_limit=0.99, rotate_limit=180.0,
                                                      brightness_limit=1.0, contrast_limit=1.0, hue_shift_limit=180.0,
                                                      sat_shift_limit=255.0, val_shift_limit=255.0))
    GenerationConfig(classes=10, images_per_class=100_000, image_size=16, points=1, batch_size=10**9,
                     point_augment=PointAugmentConfig(keep_min=1e-9, shift=0.0, noise_std=0.0),
                     image_augment=ImageAugmentConfig(**{f.name: 0.0 for f in dataclasses.fields(ImageAugmentConfig)
                                                        if isinstance(f.default, float)}))


def test_python_callers_get_type_errors_as_user_errors():
    with pytest.raises(UserError, match="classes must be an integer, got float 10.0"):
        GenerationConfig(classes=10.0)
    with pytest.raises(UserError, match="radius must be a finite number"):
        GenerationConfig(radius="0.015")
    with pytest.raises(UserError, match="seed must be an integer"):
        GenerationConfig(seed=True)


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{\"seed\": " + "9" * 5000 + "}", "not valid JSON"),
    ("{\"camera_distance\": Infinity}", "camera_distance must be a finite number"),
    ("{\"image_augment\": {\"scale_limit\": NaN}}", "image_augment.scale_limit must be a finite number"),
])
def test_bad_json_text_is_one_line(text, message):
    with pytest.raises(UserError, match=message) as info:
        GenerationConfig.from_json(text)
    assert "\n" not in str(info.value)


@pytest.fixture
def no_generation(monkeypatch):
    """Make sure a CLI test never starts a real run, even against code that lets bad input through."""
    import submission.pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("generation started: the input was not refused")

    monkeypatch.setattr(submission.pipeline, "run_generation", refuse)


def generate_error(capsys, tmp_path, *args: str) -> str:
    """Run `generate` in-process with bad input: exit 2, one `error:` line, nothing written."""
    from submission.tools.cli import main

    out = tmp_path / "out"
    assert main(["generate", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{\x00}\x00", "is not UTF-8 text"),  # a UTF-16 file
    (b"{\"seed\": 1, \"classes\": \"caf\xe9\"}", "is not UTF-8 text"),  # Latin-1
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"{\"seed\": " + b"9" * 5000 + b"}", "not valid JSON"),
    (b" " * (2**20 + 1), "larger than 1 MiB"),
    (b"{\"camera_distance\": Infinity}", "camera_distance must be a finite number"),
    (b"{\"point_augment\": {\"scale_max\": Infinity}}", "point_augment scale"),
    (b"{\"image_augment\": {\"brightness_limit\": Infinity}}", "image_augment.brightness_limit"),
])
def test_config_file_problems_are_one_line(capsys, tmp_path, no_generation, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    err = generate_error(capsys, tmp_path, "--config", str(path))
    assert message in err and str(path) in err


def test_config_path_that_is_a_directory_or_missing(capsys, tmp_path, no_generation):
    assert "is a directory" in generate_error(capsys, tmp_path, "--config", str(tmp_path))
    assert "No such file or directory" in generate_error(capsys, tmp_path, "--config", str(tmp_path / "missing.json"))


@pytest.mark.parametrize("args, message", [
    (["--seed", str(2**56)], "seed must be at most 72057594037927935"),
    (["--seed", str(10**40)], "seed must be at most 72057594037927935"),
    (["--image-size", "100000"], "image_size must be at most 4096"),
    (["--classes", "1000000000"], "classes must be at most 100000"),
    (["--images-per-class", "1000000000"], "images_per_class must be at most 100000"),
    (["--points", "1000000000"], "points must be at most 1000000"),
    (["--workers", "1000000"], "workers must be at most 1024"),
    (["--image-size", "4096"], "use --batch-size 21 or less"),
])
def test_generate_refuses_huge_values_with_the_limit(capsys, tmp_path, no_generation, args, message):
    assert message in generate_error(capsys, tmp_path, *args)
