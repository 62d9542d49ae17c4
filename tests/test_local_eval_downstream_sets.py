"""The kit's named downstream sets, read from tiny fakes in torchvision's layouts (no network)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from local_eval.cli import main
from local_eval.core.presets import preset_config
from local_eval.datasets.downstream import parse_downstream
from local_eval.datasets.fingerprint import forget
from local_eval.datasets.image_sets import omniglot_files
from local_eval.datasets.named_sets import NAMED_SETS, load_named_set
from local_eval.run.cli import build_parser, spec_from_args
from local_eval.run.spec import DataChanged, RunSpec, check_out_dir
from submission.errors import UserError
from tests.downstream_fakes import (
    IDX_NAMES,
    make_caltech,
    make_mnist,
    make_omniglot,
    write_idx,
)
from tests.local_eval_fixtures import make_cifar10, make_cifar100, make_image_folder

REPO = Path(__file__).resolve().parents[1]
CALTECH101 = {"BACKGROUND_Google": 5, "Faces": 35, "accordion": 65, "ant": 31}
CALTECH256 = {"001.ak47": 62, "002.bat": 61, "257.clutter": 40}
OMNIGLOT = {"Alpha": 2, "Beta": 1}


def uncut(**changes):
    """The smoke recipe (16 px) with every class and image of the set."""
    return preset_config("smoke").replace(finetune_classes=None, finetune_train_per_class=None,
                                          finetune_test_per_class=None, **changes)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One data root holding a fake of every named set."""
    root = tmp_path_factory.mktemp("data_root")
    make_cifar10(root, classes=4, train_per_class=8, test_per_class=4)
    make_cifar100(root, classes=4, train_per_class=8, test_per_class=4)
    make_mnist(root, "MNIST", classes=4, train_per_class=6, test_per_class=3, seed=1)
    make_mnist(root, "FashionMNIST", classes=4, train_per_class=8, test_per_class=4, seed=2)
    make_caltech(root, "caltech101", CALTECH101)
    make_caltech(root, "caltech256", CALTECH256)
    make_omniglot(root, OMNIGLOT)
    return root


def arrays(split):
    """(images (N, H, W, 3) uint8, labels (N,)) of a loaded split, in its order."""
    subset = split.dataset
    indices = np.asarray(subset.indices)
    return subset.dataset.images[indices], subset.dataset.labels[indices]


# --- each set: counts, RGB uint8, labels, split rule ---------------------------------------------

@pytest.mark.parametrize("name, folder, train, test", [("mnist", "MNIST", 6, 3),
                                                       ("fashion-mnist", "FashionMNIST", 8, 4)])
def test_mnist_and_fashion_mnist_official_splits(root, name, folder, train, test):
    data = load_named_set(name, root, uncut())
    for split, per_class, idx in ((data.train, train, "train"), (data.test, test, "test")):
        images, labels = arrays(split)
        assert images.shape == (4 * per_class, 28, 28, 3) and images.dtype == np.uint8
        assert (images[..., 0] == images[..., 2]).all()  # grey repeated to RGB
        raw = (root / folder / "raw" / IDX_NAMES[(idx, "labels")]).read_bytes()[8:]
        assert labels.tolist() == list(raw)  # file order, the file's labels
        for label in range(4):  # class c lights quadrant c % 4
            row, col = divmod(label, 2)
            assert (images[labels == label, row * 14:(row + 1) * 14, col * 14:(col + 1) * 14]
                    == 230).all()
        assert split.num_classes == 10  # torchvision's ten class names


def test_caltech101_split_30_30_by_file_number_without_background(root):
    data = load_named_set("caltech101", root, uncut())
    images, labels = arrays(data.train)
    # torchvision's categories, sorted, BACKGROUND_Google dropped: Faces, accordion, ant.
    assert data.train.num_classes == 3 and images.shape == (90, 16, 16, 3)
    assert labels.tolist() == [0] * 30 + [1] * 30 + [2] * 30
    assert np.abs(images[:30, :, :, 0].mean(axis=(1, 2)) - 4 * np.arange(1, 31)).max() < 3
    test_images, test_labels = arrays(data.test)
    assert test_labels.tolist() == [0] * 5 + [1] * 30 + [2] * 1  # files 31-60 of each class
    assert np.abs(test_images[:5, :, :, 0].mean(axis=(1, 2)) - 4 * np.arange(31, 36)).max() < 3
    grey = test_images[5 + 2]  # accordion's file 33: a greyscale JPEG, now RGB
    assert grey.shape == (16, 16, 3) and (grey[..., 0] == grey[..., 1]).all()


def test_caltech256_keeps_clutter_as_a_class_and_resizes_to_the_finetune_size(root):
    data = load_named_set("caltech256", root, uncut(finetune_resize=20))
    images, labels = arrays(data.train)
    assert data.train.num_classes == 3 and images.shape == (90, 20, 20, 3)
    assert np.bincount(labels).tolist() == [30, 30, 30]
    _, test_labels = arrays(data.test)
    assert np.bincount(test_labels).tolist() == [30, 30, 10]  # 257.clutter: 40 images


def test_omniglot_characters_as_classes_drawers_1_to_4_test(root):
    paths, labels, names = omniglot_files(root, "test")
    assert names == ["Alpha/character01", "Alpha/character02", "Beta/character01"]
    assert sorted({Path(p).stem[-2:] for p in paths}) == ["01", "02", "03", "04"]
    assert np.bincount(labels).tolist() == [4, 4, 4]
    data = load_named_set("omniglot", root, uncut())
    images, labels = arrays(data.train)
    assert images.shape == (48, 16, 16, 3) and np.bincount(labels).tolist() == [16, 16, 16]
    assert (images[..., 0] == images[..., 1]).all()
    # Drawer d drew a black square of side 3d: training drawers 5-20 darken more and more.
    darkness = 255 - images[:16, :, :, 0].mean(axis=(1, 2))
    assert (np.diff(darkness) > 0).all()
    assert len(data.test.dataset) == 12


@pytest.mark.parametrize("name", list(NAMED_SETS))
def test_the_finetune_cuts_apply_to_every_set(root, name):
    config = uncut().replace(finetune_classes=2, finetune_train_per_class=3,
                             finetune_test_per_class=1)
    data = load_named_set(name, root, config)
    for split, count in ((data.train, 3), (data.test, 1)):
        images, labels = arrays(split)
        assert split.num_classes == 2 and np.bincount(labels).tolist() == [count, count]
        assert images.dtype == np.uint8 and images.shape[-1] == 3


# --- identity: the set's files are fingerprinted ---------------------------------------------

def test_a_changed_file_of_a_named_set_is_not_reused(root, tmp_path):
    generated = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8)
    spec = RunSpec(config=preset_config("smoke"), data=generated, out=tmp_path / "run",
                   data_root=root, downstream="mnist,caltech101")
    before = spec.identity()["downstream_content"]
    make_mnist(tmp_path / "other", "MNIST")  # another root: nothing to do with this one
    forget()  # as every command does when it starts
    assert spec.identity()["downstream_content"] == before
    spec.out.mkdir()
    (spec.out / "run.json").write_text(json.dumps(spec.identity()))
    check_out_dir(spec)
    labels = root / "MNIST" / "raw" / IDX_NAMES[("test", "labels")]
    status = labels.stat()
    os.utime(labels, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    forget()
    try:
        with pytest.raises(DataChanged, match="the downstream set's files changed"):
            check_out_dir(spec)
    finally:
        os.utime(labels, ns=(status.st_atime_ns, status.st_mtime_ns))
        forget()
    cifar = RunSpec(config=preset_config("smoke"), data=generated, out=tmp_path / "cifar",
                    data_root=root, downstream="cifar10")
    old = {**cifar.identity(), "downstream_content": None}  # recorded before CIFAR was hashed
    cifar.out.mkdir()
    (cifar.out / "run.json").write_text(json.dumps(old))
    check_out_dir(cifar)  # still resumes
    (cifar.out / "run.json").write_text(json.dumps(cifar.identity()))
    batch = root / "cifar-10-batches-py" / "test_batch"
    status = batch.stat()
    os.utime(batch, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    forget()
    try:
        with pytest.raises(DataChanged):
            check_out_dir(cifar)
        # Pickles in the root itself (the older layout): the root is fingerprinted.
        assert parse_downstream("cifar10", root / "cifar-10-batches-py", None)[0].content() \
            .startswith("7:")
    finally:
        os.utime(batch, ns=(status.st_atime_ns, status.st_mtime_ns))
        forget()


# --- errors: one line, exit 2, before anything is written ----------------------------------------

def smoke(generated, out, *extra):
    return ["--data", str(generated), "--out", str(out), "--preset", "smoke", "--workers", "0",
            "--no-progress", *extra]


def expect_error(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word in err, err


def test_bad_named_sets_fail_in_one_line(root, tmp_path, capsys):
    generated = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8)
    out, empty = tmp_path / "out", tmp_path / "empty"
    empty.mkdir()
    known = "cifar10, cifar100, mnist, fashion-mnist, caltech101, caltech256, omniglot"
    expect_error(capsys, smoke(generated, out, "--data-root", str(root), "--downstream",
                               "mnist,svhn"), "'svhn' is neither", known)
    expect_error(capsys, smoke(generated, out, "--data-root", str(empty), "--downstream",
                               "fashion-mnist"), "make downstream",
                 str(empty / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"))
    for name in ("mnist", "caltech101", "caltech256", "omniglot", "cifar10"):
        expect_error(capsys, smoke(generated, out, "--data-root", str(empty), "--downstream",
                                   name), "--download")
    compare = ["compare", f"mine={generated}", "--out", str(out), "--presets", "smoke",
               "--seeds", "1", "--data-root", str(empty), "--workers", "0", "--no-progress"]
    expect_error(capsys, [*compare, "--downstream", "fashion-mnist"], "make downstream")
    expect_error(capsys, [*compare, "--downstream", "mnist,svhn"], "'svhn' is neither", known)
    assert not out.exists() and list(empty.iterdir()) == []


def test_damaged_files_name_the_file_and_the_command(tmp_path, capsys):
    generated = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8)
    out = tmp_path / "out"
    root = make_mnist(tmp_path / "data", "FashionMNIST")
    images = root / "FashionMNIST" / "raw" / IDX_NAMES[("train", "images")]
    whole = images.read_bytes()
    images.write_bytes(whole[:-100])  # truncated
    args = smoke(generated, out, "--data-root", str(root), "--downstream", "fashion-mnist")
    expect_error(capsys, args, f"{images} holds {len(whole) - 100} bytes", "make downstream")
    images.write_bytes(b"\x1f\x8b" + whole[2:])
    expect_error(capsys, args, f"{images} is gzip-compressed")
    images.write_bytes(whole)
    labels = root / "FashionMNIST" / "raw" / IDX_NAMES[("train", "labels")]
    write_idx(labels, np.zeros(5, dtype=np.uint8))
    expect_error(capsys, args, "holds 32 images", "5 labels")
    caltech = make_caltech(tmp_path / "data", "caltech101", {"BACKGROUND_Google": 1, "a": 31,
                                                             "b": 31})
    broken = caltech / "caltech101" / "101_ObjectCategories" / "b" / "image_0002.jpg"
    broken.write_bytes(broken.read_bytes()[:40])
    expect_error(capsys, smoke(generated, out, "--data-root", str(caltech), "--downstream",
                               "caltech101", "--finetune-classes", "2"),
                 f"{broken} cannot be read", "--download")
    assert not out.exists()


def test_parse_named_sets(root, tmp_path):
    sets = parse_downstream("fashion-mnist,caltech256,omniglot", root, None)
    assert [(s.kind, s.name, s.path) for s in sets] == [
        ("fashion-mnist", "fashion-mnist", root), ("caltech256", "caltech256", root),
        ("omniglot", "omniglot", root)]
    with pytest.raises(UserError, match="needs --data-root"):
        parse_downstream("mnist", None, None)


def test_cifar_root_is_a_deprecated_data_root(root, tmp_path, capsys):
    parser = build_parser()
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--downstream", "mnist"]
    spec = spec_from_args(parser.parse_args([*base, "--cifar-root", str(root)]))
    assert spec.data_root == root
    err = capsys.readouterr().err
    assert err.count("--cifar-root is deprecated; use --data-root") == 1, err
    with pytest.raises(UserError, match="give only --data-root"):
        spec_from_args(parser.parse_args([*base, "--cifar-root", str(root), "--data-root",
                                          str(root)]))


# --- make downstream: Debian's files where torchvision reads them --------------------------------

def test_make_downstream_lays_out_debian_files(tmp_path):
    import gzip

    deb = tmp_path / "deb"
    deb.mkdir()
    fake = make_mnist(tmp_path / "fake", "FashionMNIST") / "FashionMNIST" / "raw"
    for name in IDX_NAMES.values():
        (deb / f"{name}.gz").write_bytes(gzip.compress((fake / name).read_bytes()))
    data = tmp_path / "data"
    command = ["make", "-s", "downstream", f"DATA_ROOT={data}", f"FASHION_MNIST_DEB={deb}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    raw = data / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_NAMES.values())
    assert all((raw / n).read_bytes() == (fake / n).read_bytes() for n in IDX_NAMES.values())
    times = {n: (raw / n).stat().st_mtime_ns for n in IDX_NAMES.values()}
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and times == {n: (raw / n).stat().st_mtime_ns for n in times}
    data = load_named_set("fashion-mnist", data, uncut())
    assert len(data.train.dataset) == 32 and len(data.test.dataset) == 16


def test_make_downstream_refuses_without_root_when_the_package_is_missing(tmp_path):
    # The ordinary user played below may not enter the checkout (a clone under a private folder),
    # so make reads a copy of the Makefile from a folder everyone can read.
    makefile_dir = Path(tempfile.mkdtemp())
    makefile_dir.chmod(0o755)
    shutil.copy(REPO / "Makefile", makefile_dir / "Makefile")
    command = ["make", "-s", "-C", str(makefile_dir), "downstream", f"DATA_ROOT={tmp_path / 'data'}",
               f"FASHION_MNIST_DEB={tmp_path / 'absent'}"]
    if os.geteuid() == 0:  # play an ordinary user
        tmp_path.chmod(0o777)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    finally:
        shutil.rmtree(makefile_dir)
    assert done.returncode == 2
    first = done.stderr.splitlines()[0]  # make adds its own "*** Error 2" line after ours
    assert first.startswith("error: ") and "run make downstream as root" in first, done.stderr
    assert list(tmp_path.iterdir()) == []


# --- end to end -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_smoke_run_on_fashion_mnist_and_mnist_scores_their_mean(tmp_path, capsys):
    generated = make_image_folder(tmp_path / "gen", classes=4, images_per_class=8)
    root = make_mnist(tmp_path / "data", "FashionMNIST", seed=3)
    make_mnist(root, "MNIST", seed=4)
    out = tmp_path / "run"
    assert main(smoke(generated, out, "--data-root", str(root), "--downstream",
                      "fashion-mnist,mnist")) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    scores = report["downstream_scores"]
    assert list(scores) == ["fashion-mnist", "mnist"]
    assert report["score"] == pytest.approx((scores["fashion-mnist"] + scores["mnist"]) / 2)
    for entry in report["downstream"].values():
        assert entry["train_images"] == 32 and entry["test_images"] == 16
