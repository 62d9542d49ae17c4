"""Unit tests of local_eval: metric, config, CIFAR-100 reader, data checks, weight transfer."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import signal
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from local_eval.core.config import EvalConfig
from local_eval.core.metric import cumulative_error, scored_epochs
from local_eval.core.presets import PRESETS, build_config, preset_config
from local_eval.datasets.cifar import load_cifar100, read_cifar100
from local_eval.datasets.common import (
    check_image_folder,
    first_per_class,
    load_downstream_dir,
    load_pretrain_data,
)
from local_eval.datasets.noise import write_noise_dataset
from local_eval.train.loop import load_backbone
from local_eval.train.models import create_model as build_model
from submission.errors import UserError
from tests.local_eval_fixtures import make_cifar100, make_image_folder

# --- metric -------------------------------------------------------------------------------------

def test_metric_worked_example_from_readme():
    # E = 10: scored epochs ceil(10/2) = 5 .. 10.
    top1 = [20.0, 30.0, 40.0, 50.0, 55.0, 60.0, 62.0, 64.0, 65.0, 66.0]
    assert scored_epochs(10) == (5, 10)
    assert cumulative_error(top1) == pytest.approx(45 + 40 + 38 + 36 + 35 + 34)


@pytest.mark.parametrize("epochs, window", [(1, (1, 1)), (2, (1, 2)), (3, (2, 3)), (4, (2, 4)),
                                            (7, (4, 7)), (100, (50, 100))])
def test_metric_window_is_ceil_half_to_end(epochs, window):
    assert scored_epochs(epochs) == window
    top1 = np.arange(1, epochs + 1, dtype=float)  # accuracy e after epoch e
    first, last = window
    assert cumulative_error(top1) == pytest.approx(sum(100 - e for e in range(first, last + 1)))


def test_metric_rejects_no_epochs():
    with pytest.raises(ValueError):
        cumulative_error([])


# --- config -------------------------------------------------------------------------------------

def test_presets_and_none_override_keeps_preset_value():
    assert set(PRESETS) == {"smoke", "quick", "contest", "kit-mobilenet", "kit-resnet",
                            "kit-mobilenet-cpu", "kit-mobilenet-gpu"}
    contest = preset_config("contest")
    assert contest == EvalConfig()
    assert (contest.model, contest.img_size, contest.pretrain_batch_size) == (
        "vit_tiny_patch16_224", 224, 256)
    assert (contest.pretrain_lr, contest.pretrain_weight_decay, contest.mixup, contest.cutmix) == (
        1e-3, 0.05, 0.8, 1.0)
    assert (contest.finetune_lr, contest.finetune_momentum, contest.finetune_weight_decay) == (
        0.01, 0.9, 1e-4)
    quick = build_config("quick", {"pretrain_epochs": None, "finetune_epochs": 3})
    assert quick.pretrain_epochs == preset_config("quick").pretrain_epochs
    assert quick.finetune_epochs == 3


@pytest.mark.parametrize("changes, words", [
    ({"pretrain_epochs": 0}, "pretrain_epochs"),
    ({"hflip": 1.5}, "hflip"),
    ({"img_size": 30, "patch_size": 8}, "multiple"),
    ({"pretrain_classes": 1}, "pretrain_classes"),
])
def test_config_rejects_bad_values(changes, words):
    with pytest.raises(UserError, match=words):
        build_config("smoke", changes)


FLOAT_FIELDS = [f.name for f in dataclasses.fields(EvalConfig)
                if typing.get_type_hints(EvalConfig)[f.name] is float]


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_config_rejects_non_finite_floats(name, value):
    # NaN passed every "must not be negative" check; inf trained to a NaN loss.
    with pytest.raises(UserError, match=f"{name} must be"):
        build_config("smoke", {name: value})


@pytest.mark.parametrize("changes, words", [
    ({"finetune_momentum": 1.0}, r"finetune_momentum must be in \[0, 1\)"),
    ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
    ({"finetune_label_smoothing": 1.0}, "finetune_label_smoothing"),
    ({"seed": 1.5}, "seed must be an int"),
    ({"amp": 1}, "amp must be a bool"),
    ({"img_size": True}, "img_size must be an int"),
    ({"pretrain_lr": "0.1"}, "pretrain_lr must be a float"),
])
def test_config_rejects_out_of_range_and_mistyped_values(changes, words):
    with pytest.raises(UserError, match=words):
        build_config("smoke", changes)


def test_config_accepts_ints_for_floats_and_unset_optionals():
    config = build_config("smoke", {"pretrain_lr": 1, "mixup": 0, "cutmix": 0})
    assert config.pretrain_lr == 1 and not config.uses_mixup
    assert build_config("smoke", {}).replace(depth=None, rand_augment=None).depth is None


def test_unknown_preset_lists_known_ones():
    with pytest.raises(UserError, match="smoke, quick, contest"):
        preset_config("huge")


# --- CIFAR-100 reader ---------------------------------------------------------------------------

def test_cifar_reader_layout(tmp_path):
    root = make_cifar100(tmp_path / "c", classes=4, train_per_class=3, test_per_class=2)
    images, labels, names = read_cifar100(root, "train")
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert len(names) == 100 and names[3] == "fine_3"
    with open(root / "cifar-100-python" / "train", "rb") as handle:
        raw = pickle.load(handle, encoding="latin1")["data"]  # (N, 3072): R, G, B planes
    index, row, col = 4, 5, 20
    expected = [raw[index][channel * 1024 + row * 32 + col] for channel in range(3)]
    assert images[index, row, col].tolist() == expected
    # The pickles' own folder works as the root too.
    test_images, test_labels, _ = read_cifar100(root / "cifar-100-python", "test")
    assert test_images.shape == (8, 32, 32, 3) and test_labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_cifar_subset_and_transforms(tmp_path):
    root = make_cifar100(tmp_path / "c", classes=4, train_per_class=5, test_per_class=3)
    config = build_config("smoke", {"finetune_classes": 3, "finetune_train_per_class": 2})
    downstream = load_cifar100(root, config)
    assert downstream.train.num_classes == 3 and len(downstream.train.dataset) == 6
    assert len(downstream.test.dataset) == 9  # test_per_class 4 > 3 available: all 3 kept
    image, label = downstream.test.dataset[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32 and label == 0


def test_cifar_missing_files_says_where(tmp_path):
    with pytest.raises(UserError, match="cifar-100-python"):
        read_cifar100(tmp_path, "train")


def test_cifar10_like_pickle_is_refused(tmp_path):
    root = make_cifar100(tmp_path / "c")
    path = root / "cifar-100-python" / "train"
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="latin1")
    batch["labels"] = batch.pop("fine_labels")
    with open(path, "wb") as handle:
        pickle.dump(batch, handle)
    with pytest.raises(UserError, match="fine_labels"):
        read_cifar100(root, "train")


# --- ImageFolder data ---------------------------------------------------------------------------

def test_first_per_class_keeps_file_order():
    targets = [0, 1, 0, 2, 1, 0, 2, 1, 3]
    assert first_per_class(targets, 3, 2) == [0, 1, 2, 3, 4, 6]
    assert first_per_class(targets, 2, None) == [0, 1, 2, 4, 5, 7]


def test_pretrain_subset(tmp_path):
    root = make_image_folder(tmp_path / "gen", classes=5, images_per_class=6)
    config = build_config("smoke", {"pretrain_classes": 3, "pretrain_images_per_class": 4})
    data = load_pretrain_data(root, config)
    assert data.num_classes == 3 and len(data.dataset) == 12
    assert sorted({data.dataset[i][1] for i in range(12)}) == [0, 1, 2]
    with pytest.raises(UserError, match="has 5 classes"):
        load_pretrain_data(root, build_config("smoke", {"pretrain_classes": 6}))


def test_all_unreadable_images_stop_the_loader_with_one_line(tmp_path, capfd):
    from torch.utils.data import DataLoader

    from local_eval.datasets.common import MAX_SKIPPED_IN_A_ROW, UnreadableData

    root = make_image_folder(tmp_path / "gen", classes=2, images_per_class=8)
    for path in root.rglob("*.png"):
        path.write_bytes(b"")
    data = load_pretrain_data(root, build_config("smoke", {"pretrain_classes": 2}))
    # In a worker process: DataLoader re-raises it from the worker's traceback text.
    with pytest.raises(UnreadableData) as raised:
        next(iter(DataLoader(data.dataset, batch_size=2, num_workers=1)))
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message, message
    assert message == (f"--data: {MAX_SKIPPED_IN_A_ROW + 1} images in a row cannot be read, "
                       f"from {root / '00000' / '00000.png'} on; the data is damaged, "
                       f"regenerate it")
    assert capfd.readouterr().err.count("warning: skipping unreadable") >= MAX_SKIPPED_IN_A_ROW + 1


def test_downstream_dir_needs_matching_classes(tmp_path):
    make_image_folder(tmp_path / "d" / "train", classes=3, images_per_class=2)
    make_image_folder(tmp_path / "d" / "val", classes=2, images_per_class=2)
    with pytest.raises(UserError, match="different class folders"):
        load_downstream_dir(tmp_path / "d", build_config("smoke", {"finetune_classes": None}))


def test_image_folder_checks(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        check_image_folder(tmp_path / "nope", "--data", "--data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is empty"):
        check_image_folder(tmp_path / "empty", "--data", "--data")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(b"x")
    with pytest.raises(UserError, match="not an ImageFolder"):
        check_image_folder(flat, "--data", "--data")
    make_image_folder(tmp_path / "one", classes=1, images_per_class=2)
    with pytest.raises(UserError, match="at least 2"):
        check_image_folder(tmp_path / "one", "--data", "--data")
    assert check_image_folder(make_image_folder(tmp_path / "ok", 3, 1), "--data", "--data") == 3


# --- models -------------------------------------------------------------------------------------

def test_backbone_transfer_copies_all_but_the_head():
    config = preset_config("smoke")
    torch.manual_seed(0)
    pretrained = build_model(config, 4)
    torch.manual_seed(1)
    finetune = build_model(config, 7)
    load_backbone(finetune, pretrained.state_dict())
    source, target = pretrained.state_dict(), finetune.state_dict()
    for name, tensor in target.items():
        if name.startswith("head."):
            assert tensor.shape[0] == 7
        else:
            assert torch.equal(tensor, source[name]), name
    assert len(config.to_dict()) == len(EvalConfig().to_dict())


def test_unknown_model_is_a_user_error():
    with pytest.raises(UserError, match="unknown model"):
        build_model(build_config("smoke", {"model": "vit_nonexistent_patch3"}), 4)


# --- report -------------------------------------------------------------------------------------

def test_write_json_refuses_non_finite_numbers(tmp_path):
    from local_eval.core.outputs import write_json

    path = tmp_path / "report.json"
    with pytest.raises(UserError, match=r"finetune\.top1\[1\], score are not a finite number"):
        write_json({"finetune": {"top1": [1.0, math.nan]}, "score": math.inf}, path)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    write_json({"score": 1.5, "top1": [2.0], "none": None}, path)
    assert json.loads(path.read_text()) == {"score": 1.5, "top1": [2.0], "none": None}


# --- noise baseline -----------------------------------------------------------------------------

def test_noise_dataset_counts_and_refusal(tmp_path):
    out = write_noise_dataset(tmp_path / "noise", classes=3, images_per_class=2, image_size=8)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert files == [f"{c:05d}/{i:05d}.png" for c in range(3) for i in range(2)]
    with pytest.raises(UserError, match="not empty"):
        write_noise_dataset(out, classes=3, images_per_class=2, image_size=8)


def test_noise_dataset_is_one_draw_per_class_whatever_the_chunking(tmp_path, monkeypatch):
    import local_eval.datasets.noise

    # 5 x 8 x 8 x 3 bytes per class; a 700-byte budget draws 4 images, then 1.
    monkeypatch.setattr(local_eval.datasets.noise, "CHUNK_BYTES", 700, raising=False)
    out = write_noise_dataset(tmp_path / "noise", classes=2, images_per_class=5, image_size=7,
                              seed=3)
    rng = np.random.default_rng(3)
    for label in range(2):
        expected = rng.integers(0, 256, size=(5, 7, 7, 3), dtype=np.uint8)
        for index in range(5):
            written = np.asarray(Image.open(out / f"{label:05d}" / f"{index:05d}.png"))
            assert np.array_equal(written, expected[index]), (label, index)


@pytest.mark.parametrize("kwargs, words", [
    ({"classes": 0}, "must be at least 1"),
    ({"image_size": 5000}, "at most 4096"),
    ({"seed": -1}, "--seed must not be negative"),
])
def test_noise_dataset_refuses_bad_counts(tmp_path, kwargs, words):
    arguments = {"classes": 2, "images_per_class": 2, "image_size": 8, **kwargs}
    with pytest.raises(UserError, match=words):
        write_noise_dataset(tmp_path / "noise", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_noise_dataset_refuses_out_at_or_under_a_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep")
    for out in (blocker, blocker / "noise"):
        with pytest.raises(UserError, match=f"{blocker} is a file, not a (folder|directory)"):
            write_noise_dataset(out, classes=2, images_per_class=1, image_size=4)
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_noise_dataset_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    import errno

    calls = []

    def disk_full(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        Path(path).write_bytes(b"png")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(UserError, match="disk full while writing .*00001/00000.png"):
        write_noise_dataset(tmp_path / "noise", classes=2, images_per_class=2, image_size=4)
    assert list(tmp_path.iterdir()) == []  # no noise.partial to block the rerun


def test_noise_command_ctrl_c_exits_130_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    from local_eval.datasets.noise import main as noise_main

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    assert noise_main([str(tmp_path / "noise"), "--classes", "2"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted; nothing was written") and "\n" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_noise_command_line_errors_are_one_line(tmp_path, capsys):
    from local_eval.datasets.noise import main as noise_main

    (tmp_path / "file.txt").write_text("keep")
    for argv in ([str(tmp_path / "file.txt" / "n")], [str(tmp_path / "n"), "--seed", "-1"],
                 [str(tmp_path / "n"), "--classes", "0"]):
        assert noise_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err
    with pytest.raises(SystemExit) as exit_info:
        noise_main([str(tmp_path / "n"), "--classes", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--classes" in err and "\n" not in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


# --- --download ---------------------------------------------------------------------------------

def test_download_uses_torchvision_and_reports_failure(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class FakeCIFAR100:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            make_cifar100(tmp_path / "fetched")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", FakeCIFAR100)
    from local_eval.datasets.cifar import download_cifar100

    download_cifar100(tmp_path / "fetched")
    assert calls == [(str(tmp_path / "fetched"), True, True)]
    assert read_cifar100(tmp_path / "fetched", "test")[0].shape == (16, 32, 32, 3)

    class Offline:
        def __init__(self, *args, **kwargs):
            raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", Offline)
    with pytest.raises(UserError, match="could not download CIFAR-100.*by hand"):
        download_cifar100(tmp_path / "offline")


def test_digits_downstream_is_an_image_folder_pair(tmp_path):
    pytest.importorskip("sklearn")
    from local_eval.datasets.common import check_image_folder
    from local_eval.datasets.digits import write_digits

    out = write_digits(tmp_path / "digits", train_per_class=5, size=16)
    assert check_image_folder(out / "train", "train", "--downstream-dir") == 10
    assert check_image_folder(out / "val", "val", "--downstream-dir") == 10
    assert len(list((out / "train").rglob("*.png"))) == 50
    assert len(list((out / "val").rglob("*.png"))) == 1797 - 50
    with pytest.raises(UserError, match="not empty"):
        write_digits(out)


class _InterruptedFetch:
    """A stand-in DataLoader whose batch fetch is hit by Ctrl-C halfway through."""

    num_workers = 1

    def __init__(self):
        self.finished_fetches = 0

    def __iter__(self):
        for batch in range(3):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the batch is being received
            self.finished_fetches += 1
            yield batch


def test_ctrl_c_during_a_batch_fetch_is_raised_after_the_fetch_completes():
    from local_eval.train.loop import _batches

    loader = _InterruptedFetch()
    before = signal.getsignal(signal.SIGINT)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for batch in _batches(loader):
            seen.append(batch)
    assert loader.finished_fetches == 1 and seen == []  # the fetch finished, then Ctrl-C acted
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_while_the_caller_computes_acts_at_once():
    from local_eval.train.loop import _batches

    class Quiet(_InterruptedFetch):
        def __iter__(self):
            yield from range(3)

    before = signal.getsignal(signal.SIGINT)
    for batch in _batches(Quiet()):
        assert signal.getsignal(signal.SIGINT) is before  # the user's handler while computing
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("loader", ["pil", "store"])
def test_throughput_times_the_model_and_the_loader_apart(tmp_path, capsys, loader):
    from local_eval.tools.throughput import main as throughput

    data = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8)
    assert throughput(["--data", str(data), "--preset", "smoke", "--device", "cpu",
                       "--workers", "0,1", "--warmup", "1", "--steps", "2", "--json",
                       "--loader", loader]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 32 and result["batch"] == 8 and result["device"] == "cpu"
    assert result["loader"] == loader
    assert set(result["model_images_per_s"]) == {"fp32"}  # bf16 is CUDA-only, as in local_eval
    assert set(result["loader_images_per_s"]) == {"0", "1"}
    rates = [*result["model_images_per_s"].values(), *result["loader_images_per_s"].values()]
    assert all(rate > 0 for rate in rates)
    assert result["capped_by"] in ("data", "model")
    best = min(max(result["model_images_per_s"].values()),
               max(result["loader_images_per_s"].values()))
    assert result["epoch_minutes_per_million"] == pytest.approx(1e6 / best / 60)


@pytest.mark.parametrize("argv, words", [
    (["--variants", "bf16"], "needs CUDA"),
    (["--variants", "fp16"], "unknown variant 'fp16'; known variants: fp32, bf16"),
    (["--workers", "two"], "not a comma-separated list"),
    (["--steps", "0"], "--steps must be at least 1, got 0"),
])
def test_throughput_bad_input_is_one_line(tmp_path, capsys, argv, words):
    from local_eval.tools.throughput import main as throughput

    data = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8)
    assert throughput(["--data", str(data), "--preset", "smoke", "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err, err
