"""Kit presets, recipe choices, the model registry and the transforms (local_eval kit parts)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from local_eval.augment.transforms import (
    check_crop_fits,
    finetune_transforms,
    pretrain_transform,
)
from local_eval.cli import main
from local_eval.core.config import EvalConfig
from local_eval.core.metric import cumulative_error
from local_eval.core.presets import build_config, preset_config
from local_eval.core.recipe import milestone_epochs
from local_eval.train.loop import load_backbone
from local_eval.train.models import KIT_NETWORKS, create_model
from local_eval.train.phases import make_scheduler
from submission.errors import UserError
from tests.local_eval_fixtures import make_cifar10, make_cifar100, make_image_folder

NEW_FIELDS = ("pretrain_crop", "pretrain_normalize", "pretrain_opt", "pretrain_momentum",
              "pretrain_sched", "pretrain_milestones", "pretrain_gamma", "finetune_resize",
              "finetune_hflip", "finetune_normalize", "finetune_sched", "finetune_milestones",
              "finetune_gamma")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit_data")
    generated = make_image_folder(root / "generated", classes=4, images_per_class=8, size=40)
    cifar = make_cifar10(root / "cifar", classes=4, train_per_class=8, test_per_class=4)
    make_cifar100(root / "cifar", classes=4, train_per_class=8, test_per_class=4)
    folder = root / "shapes"
    make_image_folder(folder / "train", classes=3, images_per_class=8, size=24, seed=1)
    make_image_folder(folder / "val", classes=3, images_per_class=4, size=24, seed=2)
    return generated, cifar, folder


def tiny(generated, cifar, out, preset, *extra):
    """A kit preset cut to seconds: 16 px, 4 classes x 4 images, 2 + 2 epochs, batch 8."""
    return ["--data", str(generated), "--out", str(out), "--preset", preset,
            "--data-root", str(cifar), "--workers", "0", "--no-progress", "--epochs", "2",
            "--batch-size", "8", "--img-size", "16", "--finetune-resize", "16",
            "--pretrain-classes", "4", "--pretrain-images-per-class", "4",
            "--finetune-classes", "4", "--finetune-train-per-class", "4",
            "--finetune-test-per-class", "2", *extra]


def expect_error(capsys, argv, words, out=None):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert words in err, err
    if out is not None:
        assert not out.exists()


# --- presets and recipe fields ------------------------------------------------------------------

def test_existing_presets_keep_the_old_recipe():
    defaults = EvalConfig()
    for name in ("smoke", "quick", "contest"):
        config = preset_config(name)
        assert all(getattr(config, f) == getattr(defaults, f) for f in NEW_FIELDS), name
    assert (defaults.pretrain_crop, defaults.pretrain_opt, defaults.pretrain_sched,
            defaults.finetune_resize, defaults.finetune_hflip) == (
        "random_resized_crop", "adamw", "cosine", None, 0.5)


def test_kit_presets_follow_the_fractaldb_code():
    mobile, resnet, cpu = (preset_config(n) for n in ("kit-mobilenet", "kit-resnet",
                                                      "kit-mobilenet-cpu"))
    for config in (mobile, resnet, cpu):
        assert (config.pretrain_crop, config.pretrain_normalize, config.pretrain_opt,
                config.pretrain_sched, config.finetune_sched) == (
            "random_crop", "kit", "sgd", "step", "step")
        assert not config.uses_mixup and config.rand_augment is None
        assert config.hflip == config.vflip == config.finetune_hflip == 0.0
    assert (mobile.model, mobile.img_size, mobile.finetune_resize) == (
        "cifar_mobilenetv2_100", 32, 32)
    assert (resnet.model, resnet.img_size, resnet.finetune_resize) == ("tv_resnet18", 224, 256)
    assert (mobile.pretrain_lr, mobile.finetune_lr, mobile.pretrain_epochs) == (0.1, 0.01, 90)
    assert milestone_epochs(mobile.pretrain_milestones, 90) == [30, 60]
    assert cpu.model == "cifar_mobilenetv2_050" and cpu.pretrain_classes == 100


@pytest.mark.parametrize("changes, words", [
    ({"pretrain_crop": "center"}, "pretrain_crop must be one of"),
    ({"pretrain_opt": "lamb"}, "adamw, sgd"),
    ({"finetune_milestones": (0.8, 0.4)}, "increasing fractions"),
    ({"pretrain_gamma": 0.0}, "pretrain_gamma"),
    ({"finetune_resize": 8}, "smaller than the img_size"),
])
def test_recipe_fields_are_checked(changes, words):
    with pytest.raises(UserError, match=words):
        build_config("smoke", changes)


def test_step_schedule_matches_multisteplr():
    config = build_config("kit-mobilenet", {"finetune_epochs": 6, "finetune_lr": 0.01})
    updates = 3
    model = torch.nn.Linear(2, 2)
    ours = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = make_scheduler(ours, config, "finetune", updates)
    reference = torch.optim.SGD(model.parameters(), lr=0.01)
    steps = torch.optim.lr_scheduler.MultiStepLR(reference, milestones=[2, 4], gamma=0.1)
    for epoch in range(6):
        for step in range(updates):
            assert ours.param_groups[0]["lr"] == pytest.approx(reference.param_groups[0]["lr"]), (
                epoch, step)
            scheduler.step_update(epoch * updates + step + 1)
        steps.step()


# --- models -------------------------------------------------------------------------------------

def test_the_kit_networks_are_timm_models():
    """Registered with timm: created by timm.create_model like any name, head prefix kept."""
    import timm

    assert set(KIT_NETWORKS) <= set(timm.list_models())
    for name, network in KIT_NETWORKS.items():
        model = timm.create_model(name, pretrained=False, num_classes=3, img_size=32)
        assert model.pretrained_cfg["classifier"] == network.classifier
        head = [v for k, v in model.state_dict().items()
                if k.startswith(network.classifier + ".") and k.endswith(".weight")]
        assert head[-1].shape[0] == 3
    with pytest.raises(UserError, match="convolutional network without depth; pass --depth none"):
        create_model(build_config("kit-resnet", {"depth": 2}), 3)


@pytest.mark.parametrize("name", [*KIT_NETWORKS, "smoke-vit"])
def test_backbone_moves_into_a_new_head_for_every_network(name):
    config = preset_config("smoke") if name == "smoke-vit" else build_config(
        "kit-mobilenet", {"model": name})
    torch.manual_seed(0)
    pretrained = create_model(config, 5)
    torch.manual_seed(1)
    finetune = create_model(config, 3)
    load_backbone(finetune, pretrained.state_dict())
    head = finetune.pretrained_cfg["classifier"] + "."
    source = pretrained.state_dict()
    for key, tensor in finetune.state_dict().items():
        if key.startswith(head):
            assert tensor.shape[0] == 3 or tensor.ndim == 0, key
        else:
            assert torch.equal(tensor, source[key]), key


def test_cifar_mobilenet_keeps_spatial_size():
    model = create_model(preset_config("kit-mobilenet"), 10).eval()
    features = model.features(torch.zeros(1, 3, 32, 32))  # (1, 1280, 4, 4) after stride 8
    assert features.shape == (1, 1280, 4, 4)
    assert model.features[0][0].stride == (1, 1)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UserError, match="cifar_mobilenetv2_100, cifar_mobilenetv2_050"):
        create_model(build_config("kit-mobilenet", {"model": "mobilenet_v9"}), 4)
    with pytest.raises(UserError, match="patch_size"):
        create_model(build_config("kit-mobilenet", {"patch_size": 4}), 4)


# --- transforms ---------------------------------------------------------------------------------

def test_random_crop_cuts_without_resizing():
    config = build_config("kit-mobilenet", {})
    pixels = (np.arange(40 * 40 * 3) % 251).astype(np.uint8).reshape(40, 40, 3)
    torch.manual_seed(0)
    crop = pretrain_transform(config)(Image.fromarray(pixels))  # (3, 32, 32) float32
    assert crop.shape == (3, 32, 32)
    restored = np.rint((crop.numpy() * 0.5 + 0.2) * 255).astype(np.int64).transpose(1, 2, 0)
    windows = [(top, left) for top in range(9) for left in range(9)
               if np.array_equal(pixels[top:top + 32, left:left + 32], restored)]
    assert len(windows) == 1


def test_kit_finetune_resizes_then_crops():
    config = build_config("kit-resnet", {"img_size": 32, "finetune_resize": 40})
    train, test = finetune_transforms(config)
    image = Image.fromarray(np.full((20, 30, 3), 128, dtype=np.uint8))
    assert train(image).shape == test(image).shape == (3, 32, 32)
    mean = 0.485  # ImageNet statistics in fine-tuning, as the FractalDB code uses
    assert test(image)[0, 0, 0].item() == pytest.approx((128 / 255 - mean) / 0.229, abs=1e-4)


def test_images_smaller_than_the_crop_are_refused(tmp_path):
    small = make_image_folder(tmp_path / "small", classes=2, images_per_class=1, size=16)
    with pytest.raises(UserError, match="16x16 px, smaller than the 32 px crop"):
        check_crop_fits(small, preset_config("kit-mobilenet"))
    check_crop_fits(small, preset_config("quick"))  # random_resized_crop resizes: fine


# --- end to end ---------------------------------------------------------------------------------

@pytest.mark.parametrize("preset, extra", [
    pytest.param("kit-mobilenet", [], marks=pytest.mark.slow),  # full-width MobileNetV2: ~15 s
    ("kit-mobilenet-cpu", []),
    ("kit-mobilenet-gpu", []),  # its config resolves and runs on CPU at the smoke sizes
    pytest.param("kit-resnet", ["--finetune-resize", "20"], marks=pytest.mark.slow),
])
def test_kit_presets_run_end_to_end(data, tmp_path, capsys, preset, extra):
    generated, cifar, _ = data
    out = tmp_path / "run"
    assert main(tiny(generated, cifar, out, preset, *extra)) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["preset"] == preset and report["config"]["pretrain_crop"] == "random_crop"
    assert report["data"]["downstream"].startswith("cifar10:")  # the kit presets' default
    assert list(report["downstream_scores"]) == ["cifar10"]
    assert report["score"] == pytest.approx(cumulative_error(report["finetune"]["top1"]))
    assert (out / "curves.png").is_file() and (out / "finetune.pt").is_file()


# --- bad input: one line, exit code 2, nothing written ------------------------------------------

def test_kit_bad_inputs(data, tmp_path, capsys):
    generated, cifar, folder = data
    out = tmp_path / "o"
    argv = tiny(generated, cifar, out, "kit-mobilenet")
    argv[argv.index("kit-mobilenet")] = "kit-huge"
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and "kit-mobilenet-cpu" in err
    small = make_image_folder(tmp_path / "small", classes=4, images_per_class=8, size=16)
    expect_error(capsys, tiny(small, cifar, out, "kit-mobilenet", "--img-size", "32",
                              "--finetune-resize", "32"), "smaller than the 32 px", out)
    expect_error(capsys, tiny(generated, tmp_path, out, "kit-mobilenet"), "CIFAR-10 not found",
                 out)
    expect_error(capsys, tiny(generated, cifar, out, "kit-mobilenet", "--downstream",
                              f"cifar10,{tmp_path / 'missing'}"), "neither cifar10", out)
    one = tmp_path / "one"
    make_image_folder(one / "train", classes=1, images_per_class=4)
    make_image_folder(one / "val", classes=1, images_per_class=4)
    expect_error(capsys, tiny(generated, cifar, out, "kit-mobilenet", "--downstream", str(one)),
                 "at least 2", out)
    expect_error(capsys, tiny(generated, cifar, out, "kit-mobilenet", "--downstream", "cifar10",
                              "--downstream-dir", str(folder)), "does not list 'folder'", out)
    expect_error(capsys, tiny(generated, cifar, out, "kit-mobilenet", "--model", "nope"),
                 "tv_resnet18", out)


def test_timing_counts_the_steps_of_a_preset(capsys):
    from local_eval.tools.timing import estimate
    from local_eval.tools.timing import main as timing_main

    result = estimate(preset_config("smoke"), classes=6, images_per_class=10, image_size=16,
                      downstream_classes=4, train_per_class=8, test_per_class=4, repeats=1)
    # smoke: 4 classes x 8 images, batch 8, 2 epochs; 4 x 8 fine-tuning images, 3 epochs.
    assert result["counts"] == {"pretrain_step": 8, "finetune_step": 12, "test_batch": 3,
                                "transform_per_image": 64}
    wall, cpu = result["model_total"]
    assert wall > 0 and cpu > 0
    assert timing_main(["--preset", "smoke", "--classes", "4", "--images-per-class", "8",
                        "--image-size", "16", "--downstream", "4x8x4", "--threads", "1",
                        "--repeats", "1"]) == 0
    assert "8 x pretrain step" in capsys.readouterr().out
