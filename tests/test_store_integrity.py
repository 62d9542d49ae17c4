"""A store is trusted by its content, not its size (local_eval.store.integrity): every damage is
seen on open, rebuilt in the cache and refused in --out with one line; `store --verify` finds a
flipped byte anywhere."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from local_eval.cli import main
from local_eval.datasets.fingerprint import forget
from local_eval.store import build as store_build
from local_eval.store.build import open_store
from local_eval.store.integrity import StoreDamaged, seal, sha256
from local_eval.store.layout import IMAGES, LABELS, MANIFEST, default_store_dir, read_store
from tests.local_eval_fixtures import make_image_folder

ARGS = ["--workers", "1", "--no-progress"]


def decoded(data: Path) -> np.ndarray:
    """(N, H, W, 3) uint8: every image of an ImageFolder in ImageFolder order."""
    files = sorted(data.rglob("*.png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def one_line_error(capsys, argv, words: str) -> str:
    forget()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err
    return err


def save_labels(folder: Path, labels: np.ndarray, reseal: bool) -> None:
    """Write labels.npy; with `reseal` also record its hash (and the manifest's own), so that
    only the labels' range and counts checks can see what changed."""
    buffer = io.BytesIO()
    np.save(buffer, labels)
    (folder / LABELS).write_bytes(buffer.getvalue())
    if reseal:
        edit_manifest(folder, labels_sha256=sha256(buffer.getvalue()))


def edit_manifest(folder: Path, reseal: bool = True, **fields) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.update(fields)
    (folder / MANIFEST).write_text(json.dumps(seal(manifest) if reseal else manifest))


def zero_labels(folder):
    save_labels(folder, np.zeros(15, dtype=np.int64), reseal=False)


def zero_images(folder):
    size = (folder / IMAGES).stat().st_size
    (folder / IMAGES).write_bytes(bytes(size))


def labels_out_of_range(folder):
    save_labels(folder, np.repeat(np.arange(3), 5) * 2, reseal=True)  # 0, 2, 4 in 3 classes


def labels_disagree_with_counts(folder):
    save_labels(folder, np.array([0] * 4 + [1] * 6 + [2] * 5, dtype=np.int64), reseal=True)


def classes_edited(folder):
    edit_manifest(folder, reseal=False, classes=["00000", "00002", "00001"])


def classes_edited_and_resealed(folder):
    edit_manifest(folder, classes=["00000", "00001"], per_class=[5, 10])


def labels_truncated(folder):
    (folder / LABELS).write_bytes((folder / LABELS).read_bytes()[:100])


def images_truncated(folder):
    with open(folder / IMAGES, "r+b") as handle:
        handle.truncate(100)


def labels_missing(folder):
    (folder / LABELS).unlink()


DAMAGE = {  # how the store is damaged -> what the one line says
    zero_labels: "labels.npy differs from what was recorded at build time",
    zero_images: "images 0..1 of images.u8 (chunk 0 of 8) differ from what was recorded",
    labels_out_of_range: "labels.npy holds labels 0..4, outside 0..2 for its 3 classes",
    labels_disagree_with_counts: "labels.npy holds 4 images of class 0, its manifest says 5",
    classes_edited: "manifest.json differs from what was recorded at build time",
    classes_edited_and_resealed: "labels.npy holds labels 0..2, outside 0..1 for its 2 classes",
    labels_truncated: "labels.npy differs from what was recorded at build time",
    images_truncated: "is truncated or corrupt: images.u8 holds 100 bytes",
    labels_missing: "is truncated: it has no labels.npy",
}


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(store_build, "CHUNK", 2)  # 15 images: 8 chunks, the last of one image


def test_a_healthy_store_records_its_hashes_and_opens(tmp_path, small_chunks):
    data = make_image_folder(tmp_path / "data", classes=3, images_per_class=5, size=8)
    store = open_store(data, tmp_path / "s", workers=2, progress=False)
    manifest = store.manifest
    assert manifest["format"] == 2 and manifest["chunk_images"] == 2
    images = decoded(data)
    assert manifest["image_sha256"] == [sha256(images[c:c + 2]) for c in range(0, 15, 2)]
    assert manifest["labels_sha256"] == sha256((tmp_path / "s" / LABELS).read_bytes())
    again = read_store(tmp_path / "s", images="all")
    np.testing.assert_array_equal(np.asarray(again.images()), images)
    np.testing.assert_array_equal(again.labels(), np.repeat(np.arange(3), 5))


@pytest.mark.parametrize("damage", list(DAMAGE), ids=lambda f: f.__name__)
def test_a_damaged_store_in_out_is_refused_in_one_line(tmp_path, capsys, small_chunks, damage):
    data = make_image_folder(tmp_path / "data", classes=3, images_per_class=5, size=8)
    store = tmp_path / "store"
    assert main(["store", str(data), "--out", str(store), *ARGS]) == 0
    damage(store)
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    one_line_error(capsys, ["store", str(data), "--out", str(store), *ARGS],
                   f"store {store} ")
    with pytest.raises(StoreDamaged) as refusal:
        read_store(store)
    assert DAMAGE[damage] in str(refusal.value)
    assert str(refusal.value).endswith(f"; remove {store} to rebuild it")
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before  # nothing touched


@pytest.mark.parametrize("damage", list(DAMAGE), ids=lambda f: f.__name__)
def test_a_damaged_store_in_the_cache_is_rebuilt(tmp_path, small_chunks, damage):
    data = make_image_folder(tmp_path / "data", classes=3, images_per_class=5, size=8)
    folder = default_store_dir(data)
    open_store(data, folder, workers=1, progress=False)
    damage(folder)
    lines = []
    store = open_store(data, folder, workers=1, progress=False, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith(f"store {folder} is ")
    assert DAMAGE[damage] in lines[0] and lines[0].endswith("; rebuilding it")
    np.testing.assert_array_equal(np.asarray(store.images()), decoded(data))
    np.testing.assert_array_equal(store.labels(), np.repeat(np.arange(3), 5))
    assert read_store(folder, images="all").classes == ["00000", "00001", "00002"]


@pytest.mark.parametrize("name", [MANIFEST, IMAGES, LABELS, "building.json", "lock"])
def test_a_store_file_that_is_a_folder_is_one_line_and_kept(tmp_path, capsys, name):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    for folder, argv in ((tmp_path / "store", ["--out", str(tmp_path / "store")]),
                         (default_store_dir(data), [])):
        assert main(["store", str(data), *argv, *ARGS]) == 0
        (folder / name).unlink(missing_ok=True)
        (folder / name / "inside").mkdir(parents=True)  # not ours to delete
        one_line_error(capsys, ["store", str(data), *argv, *ARGS],
                       f"store {folder} is damaged: {name} is a directory; remove {folder} to "
                       f"rebuild it")
        assert (folder / name / "inside").is_dir()


def test_verify_finds_a_flipped_byte_anywhere(tmp_path, capsys, small_chunks):
    data = make_image_folder(tmp_path / "data", classes=3, images_per_class=5, size=8)
    store = tmp_path / "store"
    argv = ["store", str(data), "--out", str(store), *ARGS]
    assert main(argv) == 0
    assert main([*argv, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "verified: labels and all 8 image chunks match the hashes recorded" in out
    size = (store / IMAGES).stat().st_size  # 15 x 8 x 8 x 3
    per_image = 8 * 8 * 3
    for offset in [0, 1, per_image * 2, size // 2, size - per_image - 1, size - 1]:
        with open(store / IMAGES, "r+b") as handle:
            handle.seek(offset)
            byte = handle.read(1)
            handle.seek(offset)
            handle.write(bytes([byte[0] ^ 0x01]))
        chunk = offset // (2 * per_image)
        one_line_error(capsys, [*argv, "--verify"],
                       f"images {chunk * 2}..{min(chunk * 2 + 1, 14)} of images.u8 (chunk "
                       f"{chunk} of 8) differ")
        with open(store / IMAGES, "r+b") as handle:
            handle.seek(offset)
            handle.write(byte)
    assert main([*argv, "--verify"]) == 0


def test_every_open_hashes_the_first_and_the_last_chunk(tmp_path, monkeypatch):
    data = make_image_folder(tmp_path / "data", classes=4, images_per_class=5, size=8)
    monkeypatch.setattr(store_build, "CHUNK", 1)  # 20 chunks: 4 of them hashed per open
    store = tmp_path / "store"
    open_store(data, store, workers=1, progress=False)
    hashed = []
    from local_eval.store import layout

    check = layout.check_image_chunks
    monkeypatch.setattr(layout, "check_image_chunks",
                        lambda *a: hashed.append(a[3]) or check(*a))
    for _ in range(5):
        read_store(store)
    assert all(len(c) == 4 and c[0] == 0 and c[-1] == 19 for c in hashed)
    for offset in (0, (store / IMAGES).stat().st_size - 1):  # first and last byte
        with open(store / IMAGES, "r+b") as handle:
            handle.seek(offset)
            byte = handle.read(1)
            handle.seek(offset)
            handle.write(bytes([byte[0] ^ 0x80]))
        with pytest.raises(StoreDamaged):
            read_store(store)
        with open(store / IMAGES, "r+b") as handle:
            handle.seek(offset)
            handle.write(byte)
    read_store(store)


def test_a_store_of_the_old_format_is_rebuilt_with_a_line(tmp_path):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    folder = tmp_path / "store"
    open_store(data, folder, workers=1, progress=False)
    manifest = json.loads((folder / MANIFEST).read_text())
    old = {k: manifest[k] for k in ("source", "fingerprint", "shape", "classes", "per_class")}
    (folder / MANIFEST).write_text(json.dumps({"format": 1, **old}))  # no hashes
    zero_images(folder)
    lines = []
    store = open_store(data, folder, workers=1, progress=False, log=lines.append)
    assert lines == [f"store {folder} was made by another version of local_eval (format 1, "
                     f"this one reads 2); rebuilding it"]
    np.testing.assert_array_equal(np.asarray(store.images()), decoded(data))


def test_a_damaged_build_record_starts_the_build_over(tmp_path, monkeypatch):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "building.json").write_text("{half")
    (folder / "chunks-done").write_text("0 " + "0" * 64 + "\n")
    store = open_store(data, folder, workers=1, progress=False)
    np.testing.assert_array_equal(np.asarray(store.images()), decoded(data))
    assert sorted(os.listdir(folder)) == ["images.u8", "labels.npy", "lock", "manifest.json"]


@pytest.mark.parametrize("name", [MANIFEST, LABELS, "lock"])
def test_a_store_file_that_is_a_fifo_is_refused_not_read(tmp_path, capsys, name):
    data = make_image_folder(tmp_path / "data", classes=2, images_per_class=3, size=8)
    store = tmp_path / "store"
    argv = ["store", str(data), "--out", str(store), *ARGS]
    assert main(argv) == 0
    (store / name).unlink()
    os.mkfifo(store / name)  # reading or locking it would block forever
    one_line_error(capsys, argv, f"store {store} is damaged: {name} is a FIFO")


@pytest.mark.slow
def test_a_run_rebuilds_a_damaged_store_before_training(tmp_path, capsys):
    from tests.local_eval_fixtures import make_cifar100

    data = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8, size=20)
    cifar = make_cifar100(tmp_path / "cifar", classes=4, train_per_class=8, test_per_class=4)
    assert main(["store", str(data), *ARGS]) == 0
    folder = default_store_dir(data)
    zero_images(folder)
    forget()
    assert main(["run", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "smoke",
                 "--data-root", str(cifar), "--no-progress", "--workers", "0",
                 "--stop-after-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert (f"store {folder} is damaged: images 0..31 of images.u8 (chunk 0 of 1) differ from "
            f"what was recorded at build time; rebuilding it") in out
    np.testing.assert_array_equal(np.asarray(read_store(folder, images="all").images()),
                                  decoded(data))
