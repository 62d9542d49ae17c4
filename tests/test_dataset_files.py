"""One definition of a dataset's files (issue 26 items 2 and 8): the fingerprint, the image store's
build, the PIL loader (ClassFolders) and the statistics see exactly the files of
`submission.dataset_files`, in the same order; an entry named like an image that is not a regular
file is refused by each of them in one line, and nothing blocks or hangs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

import numpy as np
import pytest
from PIL import Image

from local_eval.datasets.common import ClassFolders
from local_eval.datasets.fingerprint import dataset_fingerprint, forget
from local_eval.datasets.folders import check_image_folder, dataset_files
from local_eval.stats.images import sample_files
from local_eval.store.build import build_store
from submission.errors import UserError


def png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path, format="PNG")
    return path


def every_case(root: Path) -> List[Path]:
    """A dataset holding every kind of entry; returns the images that count, in order."""
    outside = png(root.parent / "elsewhere" / "target.png", 90)
    counted = [png(root / "00000" / "00000.png", 10), png(root / "00000" / "00001.PNG", 20),
               root / "00000" / "link.png", png(root / "00001" / "00000.png", 30),
               png(root / "00001" / "00001.jpeg", 40)]
    (root / "00000" / "link.png").symlink_to(outside)  # a link to an image: counts, by its own name
    png(root / "00000" / ".extra.png", 50)  # hidden file
    png(root / "00000" / ".sub" / "a.png", 60)  # hidden folder
    png(root / "00000" / "sub" / "b.png", 70)  # nested folder
    (root / "00000" / "notes.txt").write_text("not an image\n")  # other extension
    os.mkfifo(root / "00001" / "pipe")  # a FIFO not named like an image: ignored, never opened
    for name in ("00000", "00001"):  # folder links back to the root: walking them never ended
        (root / name / "loop").symlink_to("..")
    png(root / ".hidden-class" / "00000.png", 80)  # a hidden class folder
    (root / "no-images").mkdir()  # no image: no class
    (root / "no-images" / "readme.txt").write_text("x\n")
    return counted


def test_every_consumer_sees_the_same_files_in_the_same_order(tmp_path):
    root = tmp_path / "data"
    counted = every_case(root)
    expected = [str(p) for p in counted]
    forget()

    listing = dataset_files(root)
    assert listing.classes == ["00000", "00001"] and check_image_folder(root, "--data", "--data") == 2
    assert [path for path, _ in listing.samples()] == expected

    loader = ClassFolders(str(root), allow_empty=True)  # the PIL loader
    assert loader.classes == ["00000", "00001"]
    assert loader.samples == [(path, 0 if i < 3 else 1) for i, path in enumerate(expected)]

    picked, classes, images = sample_files(root, classes=10, per_class=100, seed=0)  # the stats
    assert (classes, images) == (2, 5)
    assert [str(p) for files in picked for p in files] == expected

    store = build_store(root, tmp_path / "store", workers=1, progress=False)  # the store
    pixels = np.asarray(store.images())[:, 0, 0, 0].tolist()  # each image is one grey level
    assert pixels == [10, 20, 90, 30, 40]
    assert store.manifest["classes"] == ["00000", "00001"] and store.manifest["per_class"] == [3, 2]

    fingerprint = dataset_fingerprint(root)  # the fingerprint: the same five, nothing else
    assert fingerprint.startswith("5:") and store.manifest["fingerprint"] == fingerprint
    for ignored in (".extra.png", ".sub/a.png", "sub/b.png", "notes.txt"):
        os.utime(root / "00000" / ignored, ns=(1, 1))
        forget()
        assert dataset_fingerprint(root) == fingerprint, ignored
    os.utime(root.parent / "elsewhere" / "target.png", ns=(1, 1))  # a link's target changed
    forget()
    assert dataset_fingerprint(root) != fingerprint


def make_bad(entry: Path, kind: str) -> str:
    """An entry named like an image that is not a regular file; what the message calls it."""
    if kind == "fifo":
        os.mkfifo(entry)
        return "is a FIFO (named pipe), not an image file"
    if kind == "dangling":
        entry.symlink_to(entry.parent / "absent.png")
        return "is a dangling symbolic link to"
    if kind == "loop":
        entry.symlink_to(entry.name)
        return "is a loop of symbolic links"
    entry.mkdir()
    return "is a directory, not an image file"


@pytest.mark.parametrize("kind", ["fifo", "dangling", "loop", "folder"])
def test_an_image_name_that_is_no_regular_file_is_refused_by_every_consumer(tmp_path, kind):
    root = tmp_path / "data"
    for label in range(2):
        png(root / f"{label:05d}" / "00000.png", 10)
    bad = root / "00001" / "00001.png"
    said = make_bad(bad, kind)
    forget()
    consumers = {
        "listing": lambda: dataset_files(root),
        "check": lambda: check_image_folder(root, "--data", "--data"),
        "loader": lambda: ClassFolders(str(root), allow_empty=True),
        "stats": lambda: sample_files(root, 2, 2, 0),
        "store": lambda: build_store(root, tmp_path / "store", workers=1, progress=False),
        "fingerprint": lambda: dataset_fingerprint(root),
    }
    for name, consume in consumers.items():
        with pytest.raises(UserError) as caught:
            consume()
        message = str(caught.value)
        assert message.startswith(f"{bad} {said}") and "\n" not in message, (name, message)
    assert not (tmp_path / "store").exists()  # refused before the store folder was made


def test_a_fifo_put_in_an_image_place_after_the_listing_is_refused_not_waited_on(tmp_path):
    from local_eval.datasets.common import UnreadableImage, read_rgb

    fifo = tmp_path / "00000.png"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableImage, match="a FIFO"):
        read_rgb(str(fifo))
