"""Pre-training batches from a store: gathered by sorted index from the memory map, uint8.

`StoreDataset` is a subset of a store (an index list). `EpochBatches` (in the main process) cuts
each epoch's order, the same DistributedSampler order as the PIL path, into batches and, for the
kit's random crop, draws every sample's crop corner from the epoch's seeded generator; the
workers then read only the rows a crop touches. One DataLoader per phase keeps its workers
(persistent) and pins memory on CUDA; `DevicePrefetcher` copies the next batch to the GPU on a
side stream while the current one trains. The augmentation itself runs on the device
(local_eval.run.device_augment).
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from .layout import Store

Batch = Tuple[np.ndarray, Optional[np.ndarray]]  # positions (B,) int64, corners (B, 2) or None


class StoreDataset(Dataset):
    """Images `indices` of a store; `crop` (the kit's random crop, px) or None (whole images).

    Item: a Batch from EpochBatches -> ((B, 3, S, S) uint8, (B,) int64 labels), in the order
    of the store's rows (read forwards; the order within a batch changes no mean loss, and is
    the same on every run). The memory map is opened in each process that reads (a pickled
    memmap would copy the whole array).
    """

    def __init__(self, store: Store, indices: np.ndarray, crop: Optional[int]) -> None:
        self.store, self.indices, self.crop = store, np.asarray(indices, dtype=np.int64), crop
        self.labels = store.labels()[self.indices]  # (n,) int64
        self._images: Optional[np.memmap] = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self):
        return {**self.__dict__, "_images": None}

    @property
    def image_shape(self) -> Tuple[int, int]:
        return self.store.shape[1], self.store.shape[2]

    def __getitem__(self, batch: Batch) -> Tuple[torch.Tensor, torch.Tensor]:
        if self._images is None:
            self._images = self.store.images()
        positions, corners = batch
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
        return (torch.from_numpy(images).permute(0, 3, 1, 2),  # (B, 3, S, S) uint8 view
                torch.from_numpy(self.labels[positions]))


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
        if crop is not None:
            generator = torch.Generator().manual_seed(self.epoch_seed)
            height, width = self.dataset.image_shape
            corners = torch.stack([torch.randint(0, height - crop + 1, (count, self.batch),
                                                 generator=generator),
                                   torch.randint(0, width - crop + 1, (count, self.batch),
                                                 generator=generator)], dim=-1)  # (n, B, 2)
        for index in range(count):
            yield (positions[index].numpy(),
                   None if corners is None else corners[index].numpy())


def store_loader(dataset: StoreDataset, batch: int, rank: int, world_size: int, seed: int,
                 workers: int, device: torch.device) -> DataLoader:
    """The DataLoader of a phase: its sampler is re-set per epoch, its workers persist."""
    return DataLoader(dataset, batch_size=None,
                      sampler=EpochBatches(dataset, batch, rank, world_size, seed),
                      num_workers=workers, persistent_workers=workers > 0,
                      pin_memory=device.type == "cuda")


class DevicePrefetcher:
    """(images uint8 (B, 3, S, S), labels (B,)) on `device`; on CUDA the next batch is copied on
    a side stream while the caller computes on the current one."""

    def __init__(self, batches: Iterator, device: torch.device) -> None:
        self.batches, self.device = batches, device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def _copy(self):
        try:
            images, labels = next(self.batches)
        except StopIteration:
            return None
        if self.stream is None:
            return images.to(self.device), labels.to(self.device)
        with torch.cuda.stream(self.stream):
            return (images.to(self.device, non_blocking=True),
                    labels.to(self.device, non_blocking=True))

    def __iter__(self):
        upcoming = self._copy()
        while upcoming is not None:
            if self.stream is not None:
                torch.cuda.current_stream(self.device).wait_stream(self.stream)
                for tensor in upcoming:  # freed only once the compute stream is done with it
                    tensor.record_stream(torch.cuda.current_stream(self.device))
            current, upcoming = upcoming, self._copy()
            yield current
