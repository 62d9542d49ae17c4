"""What a run reads, loaded and checked before any training: the downstream sets (downloaded
first where asked), the pre-training split from the image store or the PNG files, and enough
images for a batch in each, every selected image readable."""
from __future__ import annotations

from submission.errors import UserError

from ..core.distributed import Runtime, barrier
from ..datasets.common import LabeledSplit, check_images, load_pretrain_data
from ..train.loop import steps_per_epoch
from .spec import RunSpec


def load_inputs(spec: RunSpec, runtime: Runtime):
    """(downstream sets, pre-training split or None, loaded downstreams), every check passed:
    enough images for a batch, and every selected image readable."""
    config = spec.config
    sets = spec.downstream_sets()
    if runtime.is_main and spec.download:
        for downstream_set in sets:
            downstream_set.download()
    barrier(runtime)
    # The downstream sets first: a corrupt one (a CIFAR label out of range) is refused before
    # the pre-training store is built into the cache.
    downstreams = [downstream_set.load(config) for downstream_set in sets]
    pretrain_data = None
    if spec.data is not None:
        if spec.loader == "store":
            from ..store.loader import store_split

            pretrain_data = store_split(spec.data, config, pretrain_store(spec, runtime))
        else:
            pretrain_data = load_pretrain_data(spec.data, config)
    if pretrain_data is not None:
        _check_steps(pretrain_data, config.pretrain_batch_size, runtime.world_size,
                     "the pre-training subset", "--pretrain-batch-size")
    for downstream_set, downstream in zip(sets, downstreams):
        _check_steps(downstream.train, config.finetune_batch_size, runtime.world_size,
                     f"the fine-tuning set {downstream_set.name}", "--finetune-batch-size")
    # Every process checks (the same files), so all of them refuse together.
    splits = [split for d in downstreams for split in (d.train, d.test)]
    for split in ([] if pretrain_data is None else [pretrain_data]) + splits:
        check_images(split.dataset, runtime.progress)
    return sets, pretrain_data, downstreams


def pretrain_store(spec: RunSpec, runtime: Runtime):
    """The up-to-date image store of --data, built (by rank 0, the others wait) when needed."""
    from ..store.build import open_store
    from ..store.layout import check_source, default_store_dir, read_store

    folder = default_store_dir(spec.data)
    # Rank 0 opens (or builds) and checks it; the others read it once rank 0 is done. Opening
    # checks the store's content (store.integrity), so rank 0 keeps the store it opened.
    store = open_store(spec.data, folder, max(1, runtime.workers), runtime.progress) \
        if runtime.is_main else None
    barrier(runtime)
    if store is None:
        store = read_store(folder)
        if store is None or not check_source(store, spec.data):
            raise UserError(f"the store {folder} of --data {spec.data} is not finished or stale; "
                            f"rerun to rebuild it")
    return store


def _check_steps(split: LabeledSplit, batch: int, world_size: int, what: str, flag: str) -> None:
    if steps_per_epoch(len(split.dataset), batch, world_size) < 1:
        raise UserError(f"{what} has {len(split.dataset)} images, fewer than one batch of {batch}; "
                        f"lower {flag}")
