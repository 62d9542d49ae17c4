import json

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
    assert config.replace(classes=None, seed=4) == GenerationConfig(classes=7, image_format="jpg", seed=4)


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
