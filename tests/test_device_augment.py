"""Batched device augmentation (local_eval.augment.device) on tiny CPU tensors."""
import json
import random

import numpy as np
import pytest
import timm.data.auto_augment as timm_augment
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import functional as tvf

from local_eval.augment.color import color_jitter
from local_eval.augment.crops import (
    crop,
    random_crop_boxes,
    random_resized_crop,
    random_resized_crop_boxes,
    resized_crop,
)
from local_eval.augment.device import (
    build_device_transform,
    erase,
    erasing_boxes,
    normalize,
    random_erasing,
    random_flip,
)
from local_eval.augment.randaugment import INCREASING_OPS, PLAIN_OPS, RandAugmentSpec, apply_op, rand_augment
from local_eval.augment.transforms import finetune_transforms
from local_eval.core.presets import preset_config
from local_eval.core.recipe import normalization
from local_eval.tools import augment_speed
from submission.errors import UserError

IMAGENET_MEAN, IMAGENET_STD = normalization("imagenet")


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def smooth_images(batch, size, seed=0, cell=8):
    """(batch, 3, size, size) uint8: random levels on a coarse grid, bilinearly enlarged, so
    that interpolation differences stay small."""
    coarse = torch.rand((batch, 3, size // cell, size // cell), generator=seeded(seed)) * 255
    fine = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
    return fine.round().clamp(0, 255).to(torch.uint8)


def noise_images(batch, size, seed=0):
    return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=seeded(seed))


def to_pil(image):
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def from_pil(image):
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def config_all_off(preset="kit-mobilenet", **changes):
    return preset_config(preset).replace(hflip=0.0, vflip=0.0, color_jitter=0.0,
                                         rand_augment=None, random_erasing=0.0, **changes)


@pytest.mark.parametrize("preset, phase, source, size", [
    ("contest", "pretrain", 40, 224), ("kit-mobilenet", "pretrain", 40, 32),
    ("quick", "pretrain", 48, 32), ("kit-resnet", "finetune-train", 32, 224),
    ("kit-resnet", "finetune-test", 32, 224), ("quick", "finetune-train", 20, 32),
    ("quick", "finetune-test", 20, 32)])
def test_shapes_dtypes_and_normalized_range(preset, phase, source, size):
    config = preset_config(preset)
    transform = build_device_transform(config, phase)
    out = transform(noise_images(5, source), seeded())
    assert out.shape == (5, 3, size, size) and out.dtype == torch.float32
    name = config.pretrain_normalize if phase == "pretrain" else config.finetune_normalize
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in normalization(name))
    assert (out >= (0 - mean) / std - 1e-6).all() and (out <= (1 - mean) / std + 1e-6).all()
    half = build_device_transform(config, phase, dtype=torch.bfloat16)(noise_images(5, source),
                                                                        seeded())
    assert half.dtype == torch.bfloat16


@pytest.mark.parametrize("preset", ["contest", "kit-mobilenet"])
def test_seeded_generator_repeats_and_samples_differ(preset):
    transform = build_device_transform(preset_config(preset), "pretrain")
    same = noise_images(1, 48).expand(12, -1, -1, -1).contiguous()  # one image, 12 times
    first = transform(same, seeded(3))
    assert torch.equal(first, transform(same, seeded(3)))
    assert not torch.equal(first, transform(same, seeded(4)))
    distinct = {tuple(sample.flatten().tolist()) for sample in first}
    assert len(distinct) == 12  # every sample drew its own crop (and ops)


def test_random_crop_is_an_exact_slice():
    images = noise_images(6, 20)
    top, left = random_crop_boxes(6, 20, 20, 7, seeded())
    assert top.dtype == left.dtype == torch.int64 and len(set(top.tolist())) > 1
    assert ((0 <= top) & (top <= 13) & (0 <= left) & (left <= 13)).all()
    out = crop(images, top, left, 7)
    for b in range(6):
        assert torch.equal(out[b], images[b, :, top[b]:top[b] + 7, left[b]:left[b] + 7])
    full_top, full_left = random_crop_boxes(6, 7, 7, 7, seeded())  # already the crop size
    assert full_top.eq(0).all() and full_left.eq(0).all()


def test_every_augmentation_off_is_crop_plus_normalize_exactly():
    config = config_all_off(img_size=8)
    images = noise_images(4, 12)
    out = build_device_transform(config, "pretrain")(images, seeded(5))
    top, left = random_crop_boxes(4, 12, 12, 8, seeded(5))
    mean, std = normalization("kit")
    reference = torch.stack([transforms.Normalize(mean, std)(transforms.ToTensor()(
        to_pil(images[b, :, top[b]:top[b] + 8, left[b]:left[b] + 8]))) for b in range(4)])
    assert torch.equal(out, reference)
    resized = config_all_off("contest", img_size=8)
    out = build_device_transform(resized, "pretrain")(images, seeded(5))
    levels = random_resized_crop(images, 8, (0.08, 1.0), (3 / 4, 4 / 3), seeded(5)).round()
    assert torch.equal(out, normalize(levels, IMAGENET_MEAN, IMAGENET_STD))


def test_normalize_matches_to_tensor_and_normalize():
    images = noise_images(3, 9)
    reference = torch.stack([transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)(
        transforms.ToTensor()(to_pil(image))) for image in images])
    assert torch.equal(normalize(images, IMAGENET_MEAN, IMAGENET_STD), reference)


def test_resized_crop_boxes_follow_torchvision_rules():
    top, left, height, width = random_resized_crop_boxes(400, 30, 50, (0.08, 1.0),
                                                         (3 / 4, 4 / 3), seeded())
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + height <= 30).all() and (left + width <= 50).all()
    area = (height * width).double() / (30 * 50)
    assert area.min() >= 0.05 and area.max() <= 1.0 and area.std() > 0.1
    aspect = width.double() / height
    assert aspect.min() >= 0.6 and aspect.max() <= 1.5  # 3/4..4/3 up to rounding
    # No box of the whole area fits a 10x40 image at aspect 3/4..4/3: torchvision's centre crop.
    top, left, height, width = random_resized_crop_boxes(3, 10, 40, (1.0, 1.0), (3 / 4, 4 / 3),
                                                         seeded())
    assert height.tolist() == [10] * 3 and width.tolist() == [13] * 3
    assert top.tolist() == [0] * 3 and left.tolist() == [13] * 3


@pytest.mark.parametrize("box, size", [((3, 5, 40, 30), 24), ((10, 10, 12, 9), 48),
                                       ((7, 2, 20, 33), 48), ((0, 0, 56, 56), 28)])
def test_resized_crop_agrees_with_pil_resized_crop(box, size):
    """Enlarging: roi_align and PIL both interpolate bilinearly between the same pixel centres,
    so away from the box edge (where PIL, which crops first, repeats the edge pixel and roi_align
    reads the true neighbour) they agree to rounding: 1 level. Shrinking: PIL widens a triangle
    filter, roi_align averages bilinear samples over each output pixel, so on smooth content
    they agree to a few levels on average."""
    images = smooth_images(1, 56)
    top, left, height, width = box
    reference = from_pil(tvf.resized_crop(to_pil(images[0]), top, left, height, width,
                                          [size, size])).float()
    out = resized_crop(images, *(torch.tensor([v]) for v in box), size)[0].round()
    difference = (out - reference).abs()
    if size >= max(height, width):
        edge = int(np.ceil(size / min(height, width)))  # output pixels that read past the box
        assert difference[:, edge:-edge, edge:-edge].max() <= 1
        assert difference.mean() <= 1.0
    else:
        assert difference.mean() <= 1.5 and difference.max() <= 8


def test_flips_are_exact_per_sample():
    images = noise_images(64, 5)
    assert torch.equal(random_flip(images, 1.0, -1, seeded()), images.flip(-1))
    assert torch.equal(random_flip(images, 0.0, -2, seeded()), images)
    out = random_flip(images, 0.5, -2, seeded())
    flipped = [torch.equal(o, i.flip(-2)) for o, i in zip(out, images)]
    kept = [torch.equal(o, i) for o, i in zip(out, images)]
    assert all(f != k for f, k in zip(flipped, kept)) and 16 < sum(flipped) < 48


def test_random_erasing_zeroes_one_box_in_the_expected_share():
    images = torch.ones(400, 3, 20, 24)
    erased = random_erasing(images, 1.0, seeded()) == 0
    assert (erased.all(dim=1) == erased.any(dim=1)).all()  # every channel alike
    per_sample = erased[:, 0].flatten(1).float().mean(dim=1)
    assert per_sample.min() >= 0.015 and per_sample.max() <= 0.36 and per_sample.std() > 0.05
    for mask in erased[:, 0][:20]:  # a filled rectangle
        rows, cols = mask.any(dim=1), mask.any(dim=0)
        assert mask.sum() == rows.sum() * cols.sum()
    half = (random_erasing(images, 0.5, seeded()) == 0).flatten(1).any(dim=1).float().mean()
    assert 0.4 < half < 0.6
    assert torch.equal(random_erasing(images, 0.0, seeded()), images)


def test_erase_sets_exactly_the_drawn_boxes_and_copies_unless_in_place():
    """On a CPU erase() writes a slice per erased sample (on a GPU one masked fill): the same
    boxes as the mask the drawn corners and sizes describe."""
    images = torch.rand(32, 3, 20, 24, generator=seeded(1)) + 1  # no zero of its own
    boxes = erasing_boxes(32, 20, 24, 0.5, seeded(2))
    rows, cols = torch.arange(20), torch.arange(24)
    inside = (((rows >= boxes.top[:, None]) & (rows < (boxes.top + boxes.height)[:, None]))[:, :, None]
              & ((cols >= boxes.left[:, None]) & (cols < (boxes.left + boxes.width)[:, None]))[:, None, :]
              & boxes.erase[:, None, None])  # (B, H, W)
    before = images.clone()
    out = erase(images, boxes)
    assert torch.equal(images, before)  # a copy
    assert torch.equal(out == 0, inside[:, None].expand_as(out)) and 0 < boxes.erase.sum() < 32
    assert torch.equal(out[~inside[:, None].expand_as(out)], images[~inside[:, None].expand_as(out)])
    assert erase(images, boxes, inplace=True) is images and torch.equal(images, out)


def test_finetune_test_phase_agrees_with_the_pil_transform():
    config = preset_config("quick").replace(img_size=16, finetune_resize=20)
    images = smooth_images(3, 32, cell=4)
    out = build_device_transform(config, "finetune-test")(images, seeded())
    _, test = finetune_transforms(config)
    reference = torch.stack([test(to_pil(image)) for image in images])
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    levels = ((out - reference) * std * 255).abs()
    assert levels.mean() <= 0.5 and levels.max() <= 2


def test_a_batch_that_is_not_uint8_rgb_is_refused():
    transform = build_device_transform(preset_config("kit-mobilenet"), "pretrain")
    with pytest.raises(ValueError, match="uint8"):
        transform(torch.zeros(2, 3, 40, 40), seeded())
    with pytest.raises(ValueError, match="phase"):
        build_device_transform(preset_config("kit-mobilenet"), "train")


RAND_OPS = sorted(set(INCREASING_OPS) | set(PLAIN_OPS))


@pytest.mark.parametrize("name", RAND_OPS)
def test_each_rand_augment_op_matches_timms_pil_op(name, monkeypatch):
    """Same operation, magnitude and sign through timm's PIL code and the batched code: every
    pixel within 1 level, and at most 1 in 10 off by one: PIL truncates its interpolated
    values, so where the exact value is a whole level, float32 vs PIL's double arithmetic
    decides whether it lands a hair below (most often seen for a fractional translate)."""
    fill = (124, 116, 104)
    hparams = dict(img_mean=fill, interpolation=Image.BILINEAR, magnitude_std=0)
    images = torch.cat([smooth_images(1, 40, cell=5), noise_images(1, 40)])
    for magnitude in (3.0, 9.0):
        for sign in (1.0, -1.0):
            monkeypatch.setattr(timm_augment, "_randomly_negate",
                                (lambda v: v) if sign > 0 else (lambda v: -v))
            op = timm_augment.AugmentOp(name, prob=1.0, magnitude=magnitude, hparams=hparams)
            reference = torch.stack([from_pil(op(to_pil(image))) for image in images]).float()
            out = apply_op(name, images.float(), torch.full((2,), magnitude / 10, dtype=torch.float64),
                           torch.full((2,), sign, dtype=torch.float64), fill)
            difference = (out - reference).abs()
            assert difference.max() <= 1 and difference.mean() <= 0.1, (magnitude, sign)


def test_rand_augment_draws_an_op_per_sample():
    """n1-p1-mstd0: every sample goes through exactly one op at magnitude 9; each output is one
    of the ops' results (either sign), and the batch uses most of the 15 ops."""
    spec = RandAugmentSpec.parse("rand-n1-p1-m9-mstd0-inc1", (128, 128, 128))
    image = smooth_images(1, 24, cell=4)
    out = rand_augment(image.float().expand(200, -1, -1, -1).contiguous(), seeded(), spec)
    level = torch.full((1,), 0.9, dtype=torch.float64)
    candidates = {(name, sign): apply_op(name, image.float(), level, torch.full((1,), sign, dtype=torch.float64),
                                         spec.fill)[0]
                  for name in INCREASING_OPS for sign in (1.0, -1.0)}
    used = set()
    for sample in out:
        matches = {name for (name, _), result in candidates.items() if torch.equal(sample, result)}
        assert matches, "a sample matches no single operation"
        used |= matches
    assert len(used) >= 13
    skipped = rand_augment(image.float().expand(8, -1, -1, -1).contiguous(), seeded(),
                           RandAugmentSpec.parse("rand-p0-m9", spec.fill))
    assert torch.equal(skipped, image.float().expand(8, -1, -1, -1))


def test_rand_augment_strings_parse_as_timm_and_bad_ones_are_refused():
    spec = RandAugmentSpec.parse("rand-m9-mstd0.5-inc1", (1, 2, 3))
    assert (spec.ops, spec.magnitude, spec.magnitude_std, spec.num_layers, spec.prob) == (
        INCREASING_OPS, 9, 0.5, 2, 0.5)
    spec = RandAugmentSpec.parse("rand-m7-n3-mstd101-mmax12", (1, 2, 3))
    assert (spec.ops, spec.num_layers, spec.magnitude_std, spec.magnitude_max) == (
        PLAIN_OPS, 3, float("inf"), 12)
    for text, message in [("augmix-m5", "--loader pil"), ("rand-tweights", "operation set"),
                          ("rand-x3", "unknown RandAugment section"), ("rand-m9x", "not a number")]:
        with pytest.raises(UserError, match=message):
            RandAugmentSpec.parse(text, (1, 2, 3))
    with pytest.raises(UserError, match="--loader pil"):
        build_device_transform(preset_config("contest").replace(rand_augment="augmix-m5"),
                               "pretrain")


def test_color_jitter_is_per_sample_and_seeded():
    same = smooth_images(1, 16).float().expand(16, -1, -1, -1).contiguous()
    out = color_jitter(same, seeded(2), strength=0.4)
    assert torch.equal(out, color_jitter(same, seeded(2), strength=0.4))
    assert len({tuple(sample.flatten().tolist()) for sample in out}) == 16
    assert torch.equal(out, out.round()) and out.min() >= 0 and out.max() <= 255
    # Brightness alone stays within the factor range 0.6..1.4 of the mean level.
    ratio = out.mean(dim=(1, 2, 3)) / same.mean()
    assert ratio.min() > 0.4 and ratio.max() < 1.6
    assert torch.equal(color_jitter(same, seeded(2), strength=0.0), same)


def test_autocast_around_the_call_changes_nothing():
    """A caller's bf16 autocast region must not reach the levels (sharpness is a convolution)."""
    config = preset_config("contest").replace(img_size=24, rand_augment="rand-n3-p1-m9")
    transform = build_device_transform(config, "pretrain")
    images = smooth_images(16, 32, cell=4)  # 48 op draws: geometric ones (einsum) are certain
    plain = transform(images, seeded(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(transform(images, seeded(1)), plain)


def test_augment_speed_reports_every_path_and_refuses_bad_input(capsys):
    assert augment_speed.main(["--presets", "kit-mobilenet,quick", "--batch", "2", "--repeats",
                               "1", "--image-size", "40", "--json"]) == 0
    kit, quick = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert kit["preset"] == "kit-mobilenet" and kit["batch"] == 2
    assert min(kit["pil_images_per_s"] + kit["batched_images_per_s"]) > 0
    assert kit["per_sample_images_per_s"] is None  # the kit's crop stays batched on a CPU
    assert min(quick["per_sample_images_per_s"]) > 0
    assert augment_speed.main(["--presets", "quick", "--batch", "2", "--repeats", "1",
                               "--image-size", "40"]) == 0
    assert "per sample on store arrays: " in capsys.readouterr().out
    for argv, message in [(["--presets", "nope"], "pick from"),
                          (["--presets", "kit-mobilenet", "--image-size", "16"], "smaller"),
                          (["--device", "tpu"], "--device")]:
        assert augment_speed.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err


def test_box_draws_follow_timms_distributions():
    """The batched samplers draw from torch generators, timm from Python's random: the numbers
    differ, the distributions must not (4,000 draws each, fixed seeds)."""
    from timm.data.random_erasing import RandomErasing
    from timm.data.transforms import RandomResizedCropAndInterpolation

    random.seed(0)
    canvas = Image.new("RGB", (50, 30))
    timm_boxes = np.array([RandomResizedCropAndInterpolation.get_params(
        canvas, (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(4000)], dtype=float)
    ours = np.stack([t.numpy() for t in random_resized_crop_boxes(
        4000, 30, 50, (0.08, 1.0), (3 / 4, 4 / 3), seeded())], axis=1).astype(float)
    def summary(boxes):  # (top, left, h, w) rows -> area share and log aspect: mean, std
        area, aspect = boxes[:, 2] * boxes[:, 3] / 1500, np.log(boxes[:, 3] / boxes[:, 2])
        return np.array([area.mean(), area.std(), aspect.mean(), aspect.std()])

    np.testing.assert_allclose(summary(ours), summary(timm_boxes), atol=0.01)
    np.testing.assert_allclose(ours[:, :2].mean(0), timm_boxes[:, :2].mean(0), atol=0.5)  # px
    reference = RandomErasing(probability=0.5, device="cpu")(torch.ones(4000, 3, 20, 24))
    erased = random_erasing(torch.ones(4000, 3, 20, 24), 0.5, seeded())
    timm_share = (reference == 0).float().mean(dim=(1, 2, 3))
    our_share = (erased == 0).float().mean(dim=(1, 2, 3))
    assert abs((timm_share > 0).float().mean() - (our_share > 0).float().mean()) < 0.03
    assert abs(timm_share.mean() - our_share.mean()) < 0.01
