"""The image store (local_eval.store): build, resume, refusals, the batches it serves, and runs
on it (resume, loader recorded)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from local_eval.cli import main
from local_eval.datasets.fingerprint import forget
from local_eval.store import build as store_build
from local_eval.store.build import open_store
from local_eval.store.layout import IMAGES, MANIFEST, default_store_dir, read_store
from local_eval.store.loader import EpochBatches, StoreDataset
from tests.local_eval_fixtures import make_image_folder


def decoded(data: Path) -> np.ndarray:
    """(N, H, W, 3) uint8: every image of an ImageFolder in ImageFolder order."""
    files = sorted(p for p in data.rglob("*.png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def one_line_error(capsys, argv, words: str) -> None:
    forget()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err


def test_store_holds_every_image_labels_and_manifest(tmp_path, capsys):
    data = make_image_folder(tmp_path / "data", classes=3, images_per_class=5, size=12)
    assert main(["store", str(data), "--workers", "2", "--no-progress"]) == 0
    folder = default_store_dir(data)
    assert data not in folder.parents and folder.parent == Path(os.environ["LOCAL_EVAL_STORES"])
    assert f"store {folder}: 15 images of 12x12 px in 3 classes" in capsys.readouterr().out
    store = read_store(folder)
    assert store.shape == (15, 12, 12, 3)
    np.testing.assert_array_equal(np.asarray(store.images()), decoded(data))
    np.testing.assert_array_equal(store.labels(), np.repeat(np.arange(3), 5))
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["classes"] == ["00000", "00001", "00002"]
    assert manifest["per_class"] == [5, 5, 5] and manifest["source"] == str(data.resolve())
    assert sorted(p.name for p in folder.iterdir()) == ["images.u8", "labels.npy", "lock",
                                                        "manifest.json"]


def test_a_killed_build_resumes_where_it_stopped(tmp_path, monkeypatch):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=10, size=8)
    monkeypatch.setattr(store_build, "CHUNK", 3)  # 7 chunks
    decode = store_build._decode_chunk
    calls = []

    def killed_after_two(job):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(job[0])
        return decode(job)

    monkeypatch.setattr(store_build, "_decode_chunk", killed_after_two)
    folder = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        open_store(data, folder, workers=1, progress=False)
    assert not (folder / MANIFEST).exists() and read_store(folder) is None
    monkeypatch.setattr(store_build, "_decode_chunk", lambda job: calls.append(job[0])
                        or decode(job))
    store = open_store(data, folder, workers=1, progress=False)
    assert sorted(calls) == list(range(7)) and len(calls) == 7  # chunks 0 and 1 not redone
    np.testing.assert_array_equal(np.asarray(store.images()), decoded(data))


def test_a_stale_store_is_rebuilt_never_used(tmp_path):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    folder = tmp_path / "store"
    open_store(data, folder, workers=1, progress=False)
    changed = np.full((8, 8, 3), 123, dtype=np.uint8)
    Image.fromarray(changed).save(data / "00001" / "00002.png")
    os.utime(data / "00001" / "00002.png", ns=(1, 1))  # a new mtime, whatever the clock says
    forget()
    lines = []
    store = open_store(data, folder, workers=1, progress=False, log=lines.append)
    assert lines and "changed since its store" in lines[0]
    np.testing.assert_array_equal(np.asarray(store.images())[5], changed)


def test_mixed_image_sizes_are_refused(tmp_path, capsys):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    Image.new("RGB", (9, 8)).save(data / "00001" / "00001.png")
    one_line_error(capsys, ["store", str(data), "--out", str(tmp_path / "s"), "--workers", "1",
                            "--no-progress"],
                   f"--data images differ in size: {data / '00001' / '00001.png'} is 9x8 px, "
                   f"the first is 8x8")
    assert read_store(tmp_path / "s") is None


def test_bad_store_folders_are_one_line(tmp_path, capsys):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    other = make_image_folder(tmp_path / "other", classes=2, images_per_class=3, size=8)
    argv = ["--workers", "1", "--no-progress"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    one_line_error(capsys, ["store", str(data), "--out", str(foreign), *argv],
                   f"--out {foreign} is not an image store (it holds notes.txt)")
    assert (foreign / "notes.txt").read_text() == "mine"
    store = tmp_path / "store"
    assert main(["store", str(data), "--out", str(store), *argv]) == 0
    one_line_error(capsys, ["store", str(other), "--out", str(store), *argv],
                   f"store {store} holds {data.resolve()}, not {other.resolve()}")
    with open(store / IMAGES, "r+b") as handle:
        handle.truncate(100)
    one_line_error(capsys, ["store", str(data), "--out", str(store), *argv],
                   f"store {store} is truncated or corrupt: {IMAGES} holds 100 bytes")
    (store / MANIFEST).write_text("{not json")
    one_line_error(capsys, ["store", str(data), "--out", str(store), *argv], "is damaged")
    (store / MANIFEST).write_text('{"format": 1, "format": 2}')  # which one was meant?
    one_line_error(capsys, ["store", str(data), "--out", str(store), *argv], "duplicate key 'format'")
    one_line_error(capsys, ["store", str(tmp_path / "nowhere"), *argv], "does not exist")
    one_line_error(capsys, ["store", str(data), "--workers", "0"], "--workers must be at least 1")


def test_too_little_disk_space_is_refused_up_front(tmp_path, capsys, monkeypatch):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    monkeypatch.setattr(store_build.shutil, "disk_usage",
                        lambda path: type("usage", (), {"free": 10})())
    one_line_error(capsys, ["store", str(data), "--out", str(tmp_path / "s"), "--no-progress"],
                   "the store needs 0.00 GB and")
    assert not (tmp_path / "s" / IMAGES).exists()


def test_unreadable_image_is_refused_naming_it(tmp_path, capsys):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    (data / "00000" / "00001.png").write_bytes(b"garbage")
    one_line_error(capsys, ["store", str(data), "--out", str(tmp_path / "s"), "--workers", "1",
                            "--no-progress"],
                   f"--data: cannot read {data / '00000' / '00001.png'}")


def test_batches_are_the_crops_of_the_sampled_corners(tmp_path):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=6, size=10)
    store = open_store(data, tmp_path / "s", workers=1, progress=False)
    images = decoded(data)
    subset = np.array([1, 2, 3, 7, 8, 9])
    dataset = StoreDataset(store, subset, crop=4)
    batches = EpochBatches(dataset, batch=4, rank=0, world_size=1, seed=5)
    batches.set_epoch(2, 77)
    first = list(batches)
    batches.set_epoch(2, 77)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() and a[2] == b[2]
               for a, b in zip(first, batches))
    assert len(first) == 1 and first[0][1].shape == (4, 2)  # drop_last: 6 // 4
    sampler = torch.utils.data.DistributedSampler(dataset, 1, 0, shuffle=True, seed=5)
    sampler.set_epoch(2)
    np.testing.assert_array_equal(first[0][0], list(sampler)[:4])  # the PIL path's order
    batch, labels, seed = dataset[first[0]]
    assert seed == first[0][2]
    assert batch.shape == (4, 3, 4, 4) and batch.dtype == torch.uint8
    order = np.argsort(first[0][0])  # read forwards: in the store's row order
    for k, (position, (top, left)) in enumerate(zip(first[0][0][order], first[0][1][order])):
        expected = images[subset[position], top:top + 4, left:left + 4]  # (4, 4, 3)
        np.testing.assert_array_equal(batch[k].permute(1, 2, 0).numpy(), expected)
        assert labels[k] == subset[position] // 6
    whole = StoreDataset(store, subset, crop=None)[(np.array([5, 0]), None, 0)][0]
    np.testing.assert_array_equal(whole.permute(0, 2, 3, 1).numpy(), images[[1, 9]])


def test_gpu_preset_states_its_cost(capsys):
    from local_eval.core.presets import preset_config
    from local_eval.tools.timing import main as timing

    config = preset_config("kit-mobilenet-gpu")
    assert (config.model, config.img_size, config.pretrain_crop) == (
        "cifar_mobilenetv2_100", 32, "random_crop")
    assert timing(["--preset", "kit-mobilenet-gpu"]) == 0
    out = capsys.readouterr().out
    # 100 x 200 x 10 epochs at 8,000/s = 25 s; 10 x 500 x 10 = 50,000 at 8,000/s = 6.25 s;
    # 10 x 200 x 10 = 20,000 test images at 16,000/s = 1.25 s; + 30 s = 62.5 s: about 1 minute,
    # what one 8-minute GPU call (scripts/gpu_campaign.sh) fits several of.
    assert ("200,000 pre-training + 50,000 fine-tuning images at 8,000/s, 20,000 test "
            "images at 16,000/s, 30 s overhead -> 1.0 min per run" in out), out
    assert "--seeds 3 (18 runs) -> 19 min" in out and "not measured" in out
    from local_eval.core.presets import gpu_run_seconds

    assert gpu_run_seconds("kit-mobilenet-gpu") == 62.5
    assert gpu_run_seconds("kit-mobilenet-gpu", pretrained=False) == 37.5
    assert gpu_run_seconds("smoke") is None


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory):
    from tests.local_eval_fixtures import make_cifar100

    root = tmp_path_factory.mktemp("store_runs")
    return (make_image_folder(root / "gen", classes=4, images_per_class=8, size=20),
            make_cifar100(root / "cifar", classes=4, train_per_class=8, test_per_class=4))


def run_args(inputs, out, *extra):
    generated, cifar = inputs
    return ["run", "--data", str(generated), "--out", str(out), "--preset", "smoke",
            "--data-root", str(cifar), "--no-progress", "--pretrain-crop", "random_crop",
            *extra]


def test_a_resumed_store_run_gives_the_same_numbers(run_inputs, tmp_path, capsys):
    """Random crops read from the store, stopped after each pre-training epoch and resumed:
    the same numbers as the uninterrupted run, bit for bit."""
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(run_args(run_inputs, whole, "--workers", "1")) == 0
    assert main(run_args(run_inputs, parts, "--workers", "1", "--stop-after-epochs", "1")) == 0
    assert torch.load(parts / "pretrain.pt", weights_only=False)["epoch"] == 1
    forget()
    assert main(run_args(run_inputs, parts, "--workers", "1", "--stop-after-epochs", "2")) == 0
    forget()
    assert main(run_args(run_inputs, parts, "--workers", "1")) == 0
    reports = [json.loads((out / "report.json").read_text()) for out in (whole, parts)]
    for phase in ("pretrain", "finetune"):
        assert reports[0][phase]["loss"] == reports[1][phase]["loss"], phase
    assert reports[0]["finetune"]["top1"] == reports[1]["finetune"]["top1"]
    assert json.loads((whole / "run.json").read_text())["loader"] == "store"
    # Each batch draws from its own seed: no worker count changes the pre-training numbers.
    in_process = tmp_path / "in-process"
    forget()
    assert main(run_args(run_inputs, in_process, "--workers", "0")) == 0
    assert json.loads((in_process / "report.json").read_text())["pretrain"]["loss"] == \
        reports[0]["pretrain"]["loss"]
    pil = tmp_path / "pil"
    forget()
    assert main(run_args(run_inputs, pil, "--workers", "0", "--loader", "pil")) == 0
    assert json.loads((pil / "run.json").read_text())["loader"] == "pil"
    pil_loss = json.loads((pil / "report.json").read_text())["pretrain"]["loss"]
    assert pil_loss != reports[0]["pretrain"]["loss"]  # another loader: other random draws


def test_a_run_is_reused_only_with_its_loader(run_inputs, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(run_args(run_inputs, out, "--workers", "0", "--stop-after-epochs", "1")) == 0
    capsys.readouterr()
    one_line_error(capsys, run_args(run_inputs, out, "--workers", "0", "--loader", "pil"),
                   "holds a run with a different config (loader 'store' -> 'pil')")
    # A run folder from before the store existed was made by the PIL path.
    record = json.loads((out / "run.json").read_text())
    del record["loader"]
    (out / "run.json").write_text(json.dumps(record))
    one_line_error(capsys, run_args(run_inputs, out, "--workers", "0"),
                   "(loader 'pil' -> 'store')")


def test_a_store_run_refuses_an_unreadable_image_in_one_line(tmp_path, capsys, run_inputs):
    data = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8, size=20)
    (data / "00002" / "00005.png").write_bytes(b"garbage")
    argv = run_args((data, run_inputs[1]), tmp_path / "o", "--workers", "0")
    one_line_error(capsys, argv, f"--data: cannot read {data / '00002' / '00005.png'}")


def test_the_workers_and_the_device_augment_a_batch_alike(tmp_path):
    """On a GPU the training process augments after the copy (the batched transform); on a CPU
    the workers do: a resized crop or RandAugment per sample in PIL (uint8 levels, normalized
    and erased in the training process), the kit's crop batched. From the same batch seed all
    give the same images; PIL's resampling differs from the batched one by a few levels."""
    from local_eval.augment.device import build_device_transform
    from local_eval.augment.host import build_host_transform
    from local_eval.core.presets import build_config
    from local_eval.store.loader import store_augmentation

    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=6, size=24)
    store = open_store(data, tmp_path / "s", workers=1, progress=False)
    config = build_config("smoke", {"rand_augment": "rand-m9-mstd0.5-inc1", "hflip": 0.5,
                                    "random_erasing": 0.5})
    transform, host = build_device_transform(config, "pretrain"), build_host_transform(config)
    batch = (np.array([3, 0, 7, 11]), None, 12345)
    raw, labels, seed = StoreDataset(store, np.arange(12), None)[batch]
    gpu = store_augmentation(torch.device("cuda"), transform, host)  # builds, touches no GPU
    assert gpu.worker is None and raw.dtype == torch.uint8
    batched = gpu.finish(raw, seed)
    cpu = store_augmentation(torch.device("cpu"), transform, host)
    levels, same_labels, _ = StoreDataset(store, np.arange(12), None, cpu.worker)[batch]
    assert levels.dtype == torch.uint8 and levels.shape == (4, 3, 16, 16)
    assert torch.equal(labels, same_labels)
    per_sample = cpu.finish(levels, seed)
    assert torch.equal(per_sample, host(raw, torch.Generator().manual_seed(seed)))
    level = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255  # one grey level
    assert ((per_sample - batched).abs() * level).mean() < 1.5
    assert not torch.equal(cpu.finish(cpu.worker(raw, seed + 1), seed + 1), per_sample)
    kit = build_config("kit-mobilenet", {"img_size": 16})
    assert build_host_transform(kit) is None  # the kit's crop stays batched on a CPU
    kit_cpu = store_augmentation(torch.device("cpu"), build_device_transform(kit, "pretrain"))
    done = kit_cpu.worker(raw, seed)
    assert done.dtype == torch.float32 and kit_cpu.finish(done, seed) is done


def test_a_hidden_or_imageless_folder_is_no_class_on_either_path(tmp_path):
    """An unfinished generate run leaves `.generate-state/` in the data folder; torchvision's
    ImageFolder counted it (and any folder without images) as class 0, so the real classes moved
    up by one and a cut to the first K classes lost the last real one."""
    from local_eval.core.presets import build_config
    from local_eval.datasets.common import load_pretrain_data

    data = make_image_folder(tmp_path / "gen", classes=3, images_per_class=4)
    (data / ".generate-state" / "done").mkdir(parents=True)
    (data / "00003-empty").mkdir()
    config = build_config("smoke", {"pretrain_classes": 3, "pretrain_images_per_class": 4})
    split = load_pretrain_data(data, config)  # the PIL path
    labels = [split.dataset.folder.targets[i] for i in split.dataset.indices]
    assert split.dataset.folder.classes == ["00000", "00001", "00002"]
    assert sorted(labels) == [0] * 4 + [1] * 4 + [2] * 4
    store = open_store(data, tmp_path / "store", workers=1, progress=False, log=lambda line: None)
    assert read_store(tmp_path / "store").classes == ["00000", "00001", "00002"]
    assert np.bincount(store.labels()).tolist() == [4, 4, 4]
