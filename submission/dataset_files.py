"""Which files of an ImageFolder count: the one definition that local_eval's fingerprint, image
store build, PIL loader (ClassFolders), statistics and first-image checks share, so that what is
trained is exactly what is fingerprinted (docs/reliability.md, "One definition of a dataset's
files"). Here, below both packages, so that every layer of local_eval can use it; no torch.

- a dataset's **classes** are its visible folders (no leading "."; a symbolic link to a folder
  counts) that hold at least one image, sorted by name;
- a class's **images** are the entries directly in its folder whose name is visible and ends with
  one of torchvision's image extensions, in any case (`paths.is_image_name`), sorted by name; each
  must be a regular file once symbolic links are followed (a link to an image counts under its
  own name). One named like an image that is anything else (a FIFO, a device, a socket, a folder,
  a dangling link, a loop of links) is refused with one line naming it and what it is: opening a
  FIFO blocks forever, and skipping it would train on less than the user thinks;
- everything else is ignored, never opened and never fingerprinted: hidden entries (`.extra.png`,
  `.sub/`, `write_atomic`'s temporary names), subfolders of a class folder and all they hold
  (nothing is walked below a class folder, so a loop of folder links cannot hang a listing), and
  files with other extensions.

(`verify` checks the organizer's rule instead, which counts every file: see tools/verify.py.)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, NamedTuple, Tuple

from .errors import UserError
from .paths import describe_path, is_image_name


class DatasetFiles(NamedTuple):
    """What an ImageFolder holds by the rule: class names, and each class's image names, sorted."""

    root: Path
    classes: List[str]
    images: List[List[str]]

    def samples(self) -> List[Tuple[str, int]]:
        """(path, label) of every image, class by class, as torchvision's ImageFolder lists them."""
        root = str(self.root)
        return [(os.path.join(root, name, image), label)
                for label, (name, images) in enumerate(zip(self.classes, self.images))
                for image in images]

    def relative_paths(self) -> List[str]:
        return [os.path.join(name, image) for name, images in zip(self.classes, self.images)
                for image in images]


def _is(entry: os.DirEntry, kind: str) -> bool:
    """entry.is_dir() / is_file() following links, False where the link cannot be followed."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:  # a loop of links (ELOOP), a name too long, no permission
        return False


def class_images(folder: Path) -> List[str]:
    """The sorted names of the images of one class folder (see the module doc); UserError for an
    entry named like an image that is not a regular file."""
    names = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not is_image_name(entry.name):
                    continue
                if not _is(entry, "file"):  # a plain file costs no system call here
                    raise UserError(f"{entry.path} is {describe_path(entry.path)}, not an image file; "
                                    f"remove it or put the image there (a class's images are the regular "
                                    f"files named like images directly in its folder)")
                names.append(entry.name)
    except OSError as error:
        raise UserError(f"cannot read the class folder {folder}: {error.strerror}") from None
    return sorted(names)


def dataset_files(root: Path) -> DatasetFiles:
    """Every class and image of the ImageFolder `root` (see the module doc); one `scandir` per
    folder and a `stat` only per symbolic link. Raises UserError for an image-named entry that is
    not a regular file; a missing or unreadable root raises OSError (check_image_folder words it)."""
    root = Path(root)
    with os.scandir(root) as entries:
        folders = sorted(e.name for e in entries if not e.name.startswith(".") and _is(e, "dir"))
    classes, images = [], []
    for name in folders:
        found = class_images(root / name)
        if found:
            classes.append(name)
            images.append(found)
    return DatasetFiles(root, classes, images)
