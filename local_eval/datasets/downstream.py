"""Downstream sets of one run: the kit's named sets and ImageFolder pairs, several at once.

`--downstream cifar10,fashion-mnist,DIR` names them; the contest averages the score over its sets,
so report.json's `score` is the mean of the per-set scores. The named sets (cifar10, cifar100,
mnist, fashion-mnist, caltech101, caltech256, omniglot) are read from --data-root by
local_eval.datasets.named_sets.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from submission.errors import UserError

from ..core.config import EvalConfig
from .common import ArrayImageDataset, Downstream, check_image_folder, load_downstream_dir
from .fingerprint import content_sha256, dataset_fingerprint
from .named_sets import (
    check_named_set,
    download_named_set,
    is_named_set,
    known_names,
    load_named_set,
    set_content,
    set_files_folder,
)


@dataclass(frozen=True)
class DownstreamSet:
    """One downstream set: `kind` a named set (cifar10, mnist, ...) or folder; `path` the data
    root or the folder holding train/ and val/; `name` labels it in reports and checkpoints."""

    kind: str
    path: Path
    name: str

    def identity(self) -> Tuple[str, str]:
        return self.kind, str(Path(self.path).resolve())

    def content(self) -> Optional[str]:
        """The fingerprint of the set's files (local_eval.datasets.fingerprint): a folder pair's
        images, or a named set's own folder under the data root (not the whole root, which holds
        others)."""
        return dataset_fingerprint(self.path, ("train", "val")) if self.kind == "folder" else \
            set_content(self.kind, self.path)

    def files_folder(self) -> Path:
        """The folder its files are read from (an output may not be, lie inside or contain it)."""
        return self.path if self.kind == "folder" else set_files_folder(self.kind, self.path)

    def content_sha256(self) -> Optional[str]:
        """What the set's files hold, wherever they are (their bytes, hashed once per file and
        mtime): how `compare --merge` knows a run made on another machine's copy."""
        return content_sha256(self.path, ("train", "val")) if self.kind == "folder" else \
            content_sha256(set_files_folder(self.kind, self.path))

    def validate(self, download: bool) -> None:
        """Every check that reads no image (raises UserError)."""
        if self.kind == "folder":
            for split in ("train", "val"):
                check_image_folder(self.path / split, f"downstream set {self.name}: {split} split",
                                   "--downstream")
        elif not download:
            check_named_set(self.kind, self.path)

    def download(self) -> None:
        if self.kind != "folder":
            download_named_set(self.kind, self.path)

    def load(self, config: EvalConfig) -> Downstream:
        if self.kind == "folder":
            downstream = load_downstream_dir(self.path, config)
        else:
            downstream = load_named_set(self.kind, self.path, config)
        _check_labels(downstream, self.name)
        return downstream


def _check_labels(downstream: Downstream, name: str) -> None:
    """A set whose training images hold fewer than 2 classes cannot train a classifier."""
    dataset = downstream.train.dataset  # a Subset of an ArrayImageDataset, or an ImageFolder's
    base = getattr(dataset, "folder", None) or dataset.dataset  # samples (SkipUnreadable)
    every = base.labels if isinstance(base, ArrayImageDataset) else base.targets  # (N,) int
    labels = np.asarray(every, dtype=np.int64)[np.asarray(dataset.indices, dtype=np.int64)]
    found = len(np.unique(labels))
    if found < 2:
        raise UserError(f"downstream set {name} has {found} class(es) among its training images; "
                        f"at least 2 are needed (check the data or --finetune-classes)")


def parse_downstream(text: str, data_root: Optional[Path],
                     downstream_dir: Optional[Path]) -> Tuple[DownstreamSet, ...]:
    """`cifar10,mnist,folder,DIR,...` -> the sets, in order (raises UserError)."""
    items = [item.strip() for item in str(text).split(",")]
    if not items or any(not item for item in items):
        raise UserError(f"--downstream {text!r} has an empty entry; give a comma-separated list "
                        f"of {known_names()}, folder or ImageFolder-pair folders")
    sets: List[DownstreamSet] = []
    for item in items:
        if is_named_set(item):
            if data_root is None:
                raise UserError(f"--downstream {item} needs --data-root PATH (add --download to "
                                f"fetch it there), or use --downstream-dir DIR")
            sets.append(DownstreamSet(item, Path(data_root), item))
        elif item == "folder":
            if downstream_dir is None:
                raise UserError("--downstream folder needs --downstream-dir DIR")
            sets.append(DownstreamSet("folder", Path(downstream_dir),
                                      Path(downstream_dir).resolve().name))
        else:
            path = Path(item).expanduser()
            if not path.is_dir():
                raise UserError(f"downstream set {item!r} is neither {known_names()} (the known "
                                f"sets), folder, nor an existing folder holding train/ and val/")
            sets.append(DownstreamSet("folder", path, path.resolve().name))
    names = [s.name for s in sets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"--downstream names {', '.join(twice)} more than once; list each set once "
                        f"(two folders need different names)")
    return tuple(sets)


def downstream_identity(sets: Tuple[DownstreamSet, ...]) -> Dict[str, Any]:
    """What run.json records; one set keeps the format of runs made before several were possible.
    `downstream_content` (path, size, mtime) says when a set changed here; `downstream_sha256`
    (the bytes) that a run made elsewhere used the same set (local_eval.compare.merge)."""
    kinds = [s.kind for s in sets]
    paths = [s.identity()[1] for s in sets]
    contents = [s.content() for s in sets]
    hashes = [s.content_sha256() for s in sets]
    if len(sets) == 1:
        return {"downstream": kinds[0], "downstream_path": paths[0],
                "downstream_content": contents[0], "downstream_sha256": hashes[0]}
    return {"downstream": kinds, "downstream_path": paths, "downstream_content": contents,
            "downstream_sha256": hashes}
