import dataclasses
import json
import re

import pytest

from submission import FractalConfig, GenerationConfig
from submission.errors import UserError


def test_defaults_are_the_contest_setting():
    # The contest default is the 4th place's best entry exactly (issue 18): 384 px, their point
    # normalisation and scale/shift, albumentations-1.x ShiftScaleRotate and HSV, red/blue swapped.
    config = GenerationConfig()
    assert (config.classes, config.images_per_class, config.image_size, config.fractal.points) == (1000, 1000, 384, 10_000)
    assert config.fractal.radius == 0.015 and config.fractal.points_per_pixel == 4
    assert config.class_ids() == tuple(range(1000))
    assert (config.family, config.channel_order, config.fractal.normalization) == ("fractal", "bgr", "global_minmax_mean")
    pa, ia = config.fractal.point_augment, config.image_augment
    assert (pa.scale_shift_p, pa.isotropic_scale, pa.scale_shift_first) == (0.5, True, True)
    assert (ia.affine_kind, ia.affine_border, ia.hsv_grey_tint) == ("shift_scale_rotate", "reflect101", True)
    assert ia.distortion_p == 0 and ia.cutout_p == 0 and ia.trivialaugment_p == 0  # exp 009 has none of them


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
    ({"fractal": {"point_augment": {"keep_min": 2.0}}}, "keep fraction"),
    ({"fractal": {"point_augment": {"spin": True}}}, "unknown point_augment key"),
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
    ({"fractal": {"points": 10**9}}, "points must be at most 1000000"),
    ({"seed": 2**56}, "seed must be at most 72057594037927935"),
    ({"seed": 10**30}, "seed must be at most"),
    ({"fractal": {"points_per_pixel": 151}}, "points_per_pixel must be at most 150"),
    ({"workers": 10**6}, "workers must be at most 1024"),
    ({"batch_size": 10**6, "images_per_class": 100_000, "image_size": 224}, "use --batch-size 4868 or less"),
    ({"image_size": 4096}, "use --batch-size 21 or less"),  # the default batch of 50 would need ~9 GiB
    ({"shard_index": 0, "shard_count": 10**9}, "shard count N must be at most 100000"),
    # camera and points: finite, in range
    ({"fractal": {"radius": NAN}}, "radius must be a finite number"),
    ({"fractal": {"radius": INF}}, "radius must be a finite number"),
    ({"fractal": {"camera_distance": INF}}, "camera_distance must be a finite number"),
    ({"fractal": {"camera_distance": NAN}}, "camera_distance must be a finite number"),
    ({"fractal": {"camera_distance": 1e6}}, "camera_distance must be a finite number in (1, 1000]"),
    ({"fractal": {"camera_distance": 10**400}}, "fractal.camera_distance must be a finite number"),
    ({"fractal": {"fov_degrees": NAN}}, "fov_degrees must be a finite number"),
    ({"fractal": {"fov_degrees": INF}}, "fov_degrees must be a finite number"),
    # point_augment
    ({"fractal": {"point_augment": {"keep_min": NAN}}}, "keep fraction"),
    ({"fractal": {"point_augment": {"keep_max": INF}}}, "keep fraction"),
    ({"fractal": {"point_augment": {"scale_max": INF}}}, "point_augment scale"),
    ({"fractal": {"point_augment": {"scale_min": NAN}}}, "point_augment scale"),
    ({"fractal": {"point_augment": {"scale_max": 11.0}}}, "scale_max <= 10"),
    ({"fractal": {"point_augment": {"shift": NAN}}}, "point_augment.shift must be a finite number"),
    ({"fractal": {"point_augment": {"shift": INF}}}, "point_augment.shift must be a finite number"),
    ({"fractal": {"point_augment": {"shift": 11.0}}}, "point_augment.shift must be a finite number in [0, 10]"),
    ({"fractal": {"point_augment": {"shift": -0.1}}}, "point_augment.shift"),
    ({"fractal": {"point_augment": {"noise_std": NAN}}}, "point_augment.noise_std must be a finite number"),
    ({"fractal": {"point_augment": {"noise_std": INF}}}, "point_augment.noise_std must be a finite number"),
    ({"fractal": {"point_augment": {"noise_std": 2.0}}}, "point_augment.noise_std must be a finite number in [0, 1]"),
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
    from submission.config import ImageAugmentConfig
    from submission.families.fractal.config import FractalConfig, PointAugmentConfig

    GenerationConfig(classes=100_000, images_per_class=1000, image_size=4096, batch_size=18, seed=2**56 - 1, workers=1024, shard_count=100_000, image_augment=ImageAugmentConfig(shift_limit=1.0, scale_limit=0.99, rotate_limit=180.0,
                                                      brightness_limit=1.0, contrast_limit=1.0, hue_shift_limit=180.0,
                                                      sat_shift_limit=255.0, val_shift_limit=255.0), fractal=FractalConfig(points=1_000_000, points_per_pixel=150, camera_distance=1000.0, point_augment=PointAugmentConfig(scale_min=10.0, scale_max=10.0, shift=10.0, noise_std=1.0)))
    GenerationConfig(classes=10, images_per_class=100_000, image_size=16, batch_size=10**9, image_augment=ImageAugmentConfig(**{f.name: 0.0 for f in dataclasses.fields(ImageAugmentConfig)
                                                        if isinstance(f.default, float)}), fractal=FractalConfig(points=1, point_augment=PointAugmentConfig(keep_min=1e-9, shift=0.0, noise_std=0.0)))


def test_python_callers_get_type_errors_as_user_errors():
    with pytest.raises(UserError, match="classes must be an integer, got float 10.0"):
        GenerationConfig(classes=10.0)
    with pytest.raises(UserError, match="radius must be a finite number"):
        GenerationConfig(fractal=FractalConfig(radius="0.015"))
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
    (b"{\"fractal\": {\"camera_distance\": Infinity}}", "camera_distance must be a finite number"),
    (b"{\"fractal\": {\"point_augment\": {\"scale_max\": Infinity}}}", "point_augment scale"),
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


def test_old_flat_fractal_keys_are_read_under_fractal_with_one_note(capsys, tmp_path):
    nested = GenerationConfig(classes=3, fractal=FractalConfig(points=1500, radius=0.02, bank_path="b.npz"))
    flat = {k: v for k, v in json.loads(nested.to_json()).items() if k != "fractal"}
    flat.update({"points": 1500, "radius": 0.02, "bank_path": "b.npz",
                 "point_augment": dataclasses.asdict(nested.fractal.point_augment)})
    path = tmp_path / "old.json"
    path.write_text(json.dumps(flat))
    assert GenerationConfig.from_file(path) == nested
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deprecated" in err and "'fractal'" in err and "points" in err, err
    assert GenerationConfig.from_json(nested.to_json()) == nested and capsys.readouterr().err == ""  # nested: no note
    with pytest.raises(UserError, match=r"both at the top level and under 'fractal'"):
        GenerationConfig.from_dict({"points": 1, "fractal": {"points": 2}})


def test_only_the_active_familys_settings_count_as_content():
    fractal = GenerationConfig()
    assert set(fractal.content_dict()) >= {"fractal", "image_augment"}
    assert not {"glyphs", "visualatom"} & set(fractal.content_dict())
    assert "bank_path" not in fractal.content_dict()["fractal"]  # where the bank is read from is not content
    glyph_change = fractal.replace(glyphs=dataclasses.replace(fractal.glyphs, layers=1))
    assert glyph_change.content_dict() == fractal.content_dict()
    assert fractal.replace(points=2000).content_dict() != fractal.content_dict()
    glyphs = fractal.replace(family="glyphs")
    assert glyphs.replace(points=2000).content_dict() == glyphs.content_dict()
    assert glyph_change.replace(family="glyphs").content_dict() != glyphs.content_dict()


def test_resume_record_and_compare_cache_key_ignore_other_families():
    from local_eval.compare.datasets import GeneratedDataset
    from submission.state import state_record

    fractal = GenerationConfig(classes=3)
    glyph_change = fractal.replace(glyphs=dataclasses.replace(fractal.glyphs, layers=1))
    assert state_record(glyph_change) == state_record(fractal)
    assert state_record(fractal.replace(points=2000)) != state_record(fractal)
    digest = lambda config: GeneratedDataset("d", "x.json", config).digest()  # noqa: E731
    assert digest(glyph_change) == digest(fractal) != digest(fractal.replace(points=2000))
