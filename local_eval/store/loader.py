"""Pre-training batches from a store: gathered by sorted index from the memory map, uint8.

`StoreDataset` is a subset of a store (an index list). `EpochBatches` (in the main process) cuts
each epoch's order, the same DistributedSampler order as the PIL path, into batches and, for the
kit's random crop, draws every sample's crop corner from the epoch's seeded generator, plus one
seed per batch for its augmentation; the workers then read only the rows a crop touches. One
DataLoader per phase keeps its workers (persistent) and pins memory on CUDA; `DevicePrefetcher`
copies the next batch to the GPU on a side stream while the current one trains. The batched
augmentation (local_eval.augment.device) runs on the GPU there; on a CPU the workers augment,
in parallel, per sample in PIL where the chain resamples (local_eval.augment.host: the same
draws), else batched. Either way a batch's draws come from its own seed, so the numbers do not
depend on the worker count.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from ..core.config import EvalConfig
from ..core.worker_lifetime import worker_init
from ..datasets.common import LabeledSplit, first_per_class, pretrain_class_count
from .layout import Store

if TYPE_CHECKING:
    from ..augment.host import HostTransform

# positions (B,) int64, crop corners (B, 2) int64 or None, the batch's augmentation seed
Batch = Tuple[np.ndarray, Optional[np.ndarray], int]


class StoreDataset(Dataset):
    """Images `indices` of a store; `crop` (the kit's random crop, px) or None (whole images).

    Item: a Batch from EpochBatches -> ((B, 3, S, S) uint8, (B,) int64 labels, seed), in the
    order of the store's rows (read forwards; the order within a batch changes no mean loss,
    and is the same on every run); with `transform` set (on a CPU: StoreAugmentation.worker)
    the images come as it returns them. The memory map is opened in each process that reads
    (a pickled memmap would copy the whole array).
    """

    def __init__(self, store: Store, indices: np.ndarray, crop: Optional[int],
                 transform: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None) -> None:
        self.store, self.indices, self.crop = store, np.asarray(indices, dtype=np.int64), crop
        self.labels = store.labels()[self.indices]  # (n,) int64
        self.transform = transform  # (images (B, 3, H, W) uint8, batch seed) -> batch, or None
        self._images: Optional[np.memmap] = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self):
        return {**self.__dict__, "_images": None}

    @property
    def image_shape(self) -> Tuple[int, int]:
        return self.store.shape[1], self.store.shape[2]

    def __getitem__(self, batch: Batch) -> Tuple[torch.Tensor, torch.Tensor, int]:
        if self._images is None:
            self._images = self.store.images()
        positions, corners, seed = batch
        rows = self.indices[positions]
        order = np.argsort(rows, kind="stable")  # read the file forwards
        sorted_rows, positions = rows[order], positions[order]
        height, width = self.image_shape
        if corners is None or (self.crop == height and self.crop == width):
            images = self._images[sorted_rows]  # (B, H, W, 3) uint8
        else:
            span = np.arange(self.crop)
            tops, lefts = corners[order, 0], corners[order, 1]
            images = self._images[sorted_rows[:, None, None], (tops[:, None] + span)[:, :, None],
                                  (lefts[:, None] + span)[:, None, :]]  # (B, S, S, 3) uint8
        pixels = torch.from_numpy(images).permute(0, 3, 1, 2)  # (B, 3, S, S) uint8 view
        if self.transform is not None:
            pixels = self.transform(pixels, seed)
        return pixels, torch.from_numpy(self.labels[positions]), seed


def store_split(root: Path, config: EvalConfig, store: Store) -> LabeledSplit:
    """The generated ImageFolder `root` cut as datasets.common.load_pretrain_data cuts it (the
    same images), as rows of its store: a StoreDataset, whole images or the kit's random crop."""
    num_classes = pretrain_class_count(root, config)
    indices = first_per_class(store.labels(), num_classes, config.pretrain_images_per_class)
    crop = config.img_size if config.pretrain_crop == "random_crop" else None
    return LabeledSplit(StoreDataset(store, np.asarray(indices), crop), num_classes)


class EpochBatches(Sampler):
    """Batches of one epoch (drop_last), set by `set_epoch(epoch, seed)` before each epoch."""

    def __init__(self, dataset: StoreDataset, batch: int, rank: int, world_size: int,
                 seed: int) -> None:
        self.dataset, self.batch = dataset, batch
        self.order = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                        shuffle=True, seed=seed, drop_last=False)
        self.epoch_seed = 0

    def set_epoch(self, epoch: int, epoch_seed: int) -> None:
        self.order.set_epoch(epoch)
        self.epoch_seed = epoch_seed

    def __len__(self) -> int:
        return len(self.order) // self.batch

    def __iter__(self) -> Iterator[Batch]:
        count = len(self)
        positions = torch.tensor(list(self.order)[:count * self.batch],
                                 dtype=torch.int64).view(count, self.batch)
        corners = None
        crop = self.dataset.crop
        generator = torch.Generator().manual_seed(self.epoch_seed)
        seeds = torch.randint(0, 2**62, (count,), generator=generator).tolist()
        if crop is not None:
            height, width = self.dataset.image_shape
            corners = torch.stack([torch.randint(0, height - crop + 1, (count, self.batch),
                                                 generator=generator),
                                   torch.randint(0, width - crop + 1, (count, self.batch),
                                                 generator=generator)], dim=-1)  # (n, B, 2)
        for index in range(count):
            yield (positions[index].numpy(),
                   None if corners is None else corners[index].numpy(), seeds[index])


class Seeded:
    """A transform of (images, generator) called as (images, seed): with a generator on the
    images' device seeded by the batch's seed (picklable, for loader workers)."""

    def __init__(self, transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, images: torch.Tensor, seed: int) -> torch.Tensor:
        return self.transform(images, torch.Generator(images.device).manual_seed(seed))


class StoreAugmentation(NamedTuple):
    """Where a store batch is augmented: `worker` (or None) in the loader workers, `finish` in
    the training process on the device; both take (images, the batch's seed)."""

    worker: Optional[Callable[[torch.Tensor, int], torch.Tensor]]
    finish: Callable[[torch.Tensor, int], torch.Tensor]


def _as_is(images: torch.Tensor, seed: int) -> torch.Tensor:
    return images


def store_augmentation(device: torch.device, transform: Callable,
                       cpu_transform: Optional["HostTransform"] = None) -> StoreAugmentation:
    """On a GPU the batched `transform` runs on the device, after the copy. On a CPU the
    workers augment, in parallel: with `cpu_transform` (local_eval.augment.host: the same
    draws per sample in PIL) they hand over uint8 levels and the training process normalizes
    and erases (as a device would); without, they run `transform` whole."""
    if device.type != "cpu":
        return StoreAugmentation(None, Seeded(transform))
    if cpu_transform is not None:
        return StoreAugmentation(cpu_transform.prepare, cpu_transform.finish)
    return StoreAugmentation(Seeded(transform), _as_is)


def store_loader(dataset: StoreDataset, batch: int, rank: int, world_size: int, seed: int,
                 workers: int, device: torch.device,
                 worker_transform: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None
                 ) -> DataLoader:
    """The DataLoader of a phase: its sampler is re-set per epoch, its workers persist and
    apply `worker_transform` (StoreAugmentation.worker) to each batch where given."""
    if worker_transform is not None:
        dataset = copy.copy(dataset)
        dataset.transform = worker_transform
    return DataLoader(dataset, batch_size=None,
                      sampler=EpochBatches(dataset, batch, rank, world_size, seed),
                      num_workers=workers, persistent_workers=workers > 0,
                      pin_memory=device.type == "cuda",
                      worker_init_fn=worker_init() if workers > 0 else None)  # die with us


class DevicePrefetcher:
    """A loader's batches (tuples; their tensors moved to `device`); on CUDA the next batch is
    copied on a side stream while the caller computes on the current one."""

    def __init__(self, batches: Iterator, device: torch.device) -> None:
        self.batches, self.device = batches, device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def _copy(self):
        try:
            batch = next(self.batches)
        except StopIteration:
            return None
        move = [isinstance(item, torch.Tensor) for item in batch]
        if self.stream is None:
            return tuple(x.to(self.device) if m else x for x, m in zip(batch, move))
        with torch.cuda.stream(self.stream):
            return tuple(x.to(self.device, non_blocking=True) if m else x
                         for x, m in zip(batch, move))

    def __iter__(self):
        upcoming = self._copy()
        while upcoming is not None:
            if self.stream is not None:
                torch.cuda.current_stream(self.device).wait_stream(self.stream)
                for tensor in upcoming:  # freed only once the compute stream is done with it
                    if isinstance(tensor, torch.Tensor):
                        tensor.record_stream(torch.cuda.current_stream(self.device))
            current, upcoming = upcoming, self._copy()
            yield current
