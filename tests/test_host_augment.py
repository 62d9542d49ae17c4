"""The store path's per-sample PIL augmentation for CPU workers (local_eval.augment.host)."""
import pytest
import timm.data.auto_augment as timm_augment
import torch
from PIL import Image
from torchvision import transforms

from local_eval.augment.crops import random_resized_crop_boxes
from local_eval.augment.device import build_device_transform
from local_eval.augment.host import HostTransform, build_host_transform, pil_op_arguments
from local_eval.augment.randaugment import INCREASING_OPS, PLAIN_OPS
from local_eval.core.presets import preset_config
from local_eval.core.recipe import normalization
from tests.test_device_augment import config_all_off, noise_images, seeded, smooth_images, to_pil

LEVEL = torch.tensor(normalization("imagenet")[1]).view(1, 3, 1, 1) * 255  # one grey level


@pytest.mark.parametrize("name", sorted(set(INCREASING_OPS) | set(PLAIN_OPS)))
def test_pil_arguments_are_timms_at_the_drawn_magnitude_and_sign(name, monkeypatch):
    """timm draws the sign inside its level functions; with that draw pinned to each sign,
    its arguments are ours."""
    for sign in (1.0, -1.0):
        monkeypatch.setattr(timm_augment, "_randomly_negate",
                            (lambda v: v) if sign > 0 else (lambda v: -v))
        for magnitude in (0.0, 0.7, 3.3, 5.0, 9.0, 10.0):
            level = timm_augment.LEVEL_TO_ARG[name]
            expected = tuple(level(magnitude, {"translate_pct": 0.45})) if level else ()
            assert pil_op_arguments(name, magnitude, sign) == expected, (magnitude, sign)


def test_the_resized_crop_is_the_pil_paths_exactly():
    """No flips, RandAugment or erasing: each sample is torchvision's PIL resized crop of the
    drawn box, then ToTensor + Normalize, bit for bit."""
    config = config_all_off("contest", img_size=24)
    host = build_host_transform(config)
    images = noise_images(6, 40)
    out = host(images, seeded(7))
    mean, std = normalization(config.pretrain_normalize)
    reference = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    boxes = random_resized_crop_boxes(6, 40, 40, (config.crop_scale_min, 1.0), (3 / 4, 4 / 3),
                                      seeded(7))
    for sample, (top, left, height, width) in enumerate(zip(*[b.tolist() for b in boxes])):
        crop = transforms.functional.resized_crop(to_pil(images[sample]), top, left, height,
                                                  width, [24, 24], Image.BILINEAR)
        assert torch.equal(out[sample], reference(crop)), sample


@pytest.mark.parametrize("preset, changes", [
    ("contest", {}), ("contest", {"pretrain_crop": "random_crop", "img_size": 48}),
    ("quick", {"rand_augment": "rand-m9-mstd0.5-inc1", "hflip": 0.5, "vflip": 0.5}),
])
def test_same_draws_as_the_batched_transform(preset, changes):
    """From one generator seed: the same boxes, flips, operations and erasing boxes, so the
    images agree within the resampling differences (on smooth images, well under a level on
    average) and exactly where a box was erased."""
    config = preset_config(preset).replace(random_erasing=0.5, **changes)
    host, batched = build_host_transform(config), build_device_transform(config, "pretrain")
    images = smooth_images(16, 64, cell=16)
    ours, theirs = host(images, seeded(3)), batched(images, seeded(3))
    assert ours.shape == theirs.shape == (16, 3, config.img_size, config.img_size)
    assert ours.dtype == theirs.dtype == torch.float32
    assert ((ours - theirs).abs() * LEVEL).mean() < 1.0
    erased_ours, erased_theirs = (ours == 0).all(dim=1), (theirs == 0).all(dim=1)
    assert erased_theirs.any() and torch.equal(erased_ours, erased_theirs)


def test_split_across_processes_equals_one_call_and_seeds_decide():
    config = preset_config("contest").replace(img_size=32)
    host = build_host_transform(config)
    images = noise_images(8, 48)
    levels = host.prepare(images, 11)
    assert levels.dtype == torch.uint8 and levels.shape == (8, 3, 32, 32)
    whole = host(images, seeded(11))
    assert torch.equal(host.finish(levels, 11), whole)
    assert torch.equal(host.finish(host.prepare(images, 11), 11), whole)  # repeatable
    other = host.finish(host.prepare(images, 12), 12)
    assert not torch.equal(other, whole)
    assert len({tuple(sample.flatten()[:64].tolist()) for sample in whole}) == 8  # per sample


def test_which_chains_run_per_sample_on_a_cpu():
    assert isinstance(build_host_transform(preset_config("contest")), HostTransform)
    assert isinstance(build_host_transform(preset_config("quick")), HostTransform)
    assert isinstance(build_host_transform(preset_config("smoke")), HostTransform)
    assert build_host_transform(preset_config("kit-mobilenet")) is None  # batched is faster
    jitter_only = preset_config("contest").replace(rand_augment=None, color_jitter=0.4)
    assert build_host_transform(jitter_only) is None  # a step it does not run
    kit_with_rand = preset_config("kit-mobilenet").replace(rand_augment="rand-m9-n2")
    assert build_host_transform(kit_with_rand) is not None


def test_a_batch_it_cannot_take_is_refused():
    host = build_host_transform(preset_config("contest"))
    with pytest.raises(ValueError, match="uint8 CPU batch"):
        host(torch.zeros(2, 3, 40, 40), seeded())
    with pytest.raises(ValueError, match="uint8 CPU batch"):
        host.prepare(torch.zeros(2, 40, 40, 3, dtype=torch.uint8), 0)
