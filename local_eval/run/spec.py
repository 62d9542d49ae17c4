"""What one evaluation is (RunSpec: config, data, downstream sets, run folder) and every check
that needs no training: `validate` refuses a bad input before anything is written, and
`check_out_dir` refuses a run folder that holds another run or the same run on changed data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from submission.errors import UserError
from submission.fileio import check_writable_target
from submission.paths import check_output_outside_inputs

from ..augment.transforms import check_crop_fits
from ..core.config import EvalConfig
from ..core.limits import REPEATS, check_bound
from ..core.lock import LOCK_FILE
from ..datasets.common import check_image_folder
from ..datasets.downstream import DownstreamSet, downstream_identity, parse_downstream
from ..datasets.fingerprint import dataset_fingerprint
from ..train.models import create_model
from .record import CONTENT_KEYS, RUN_FILE, content_changed, differences, read_record, without_content
from .space import check_space, checkpoint_bytes, checkpoint_count


@dataclass(frozen=True)
class RunSpec:
    """What to evaluate; `identity()` is what must match for a rerun to resume."""

    config: EvalConfig
    data: Optional[Path]  # None: no pre-training (fine-tune from random initialization)
    out: Path
    downstream: str = "cifar100"  # comma-separated: named sets (cifar10, mnist, ...), folder, paths
    data_root: Optional[Path] = None  # the named sets (local_eval.datasets.named_sets)
    downstream_dir: Optional[Path] = None
    download: bool = False
    compare_scratch: bool = False
    preset: str = "custom"  # informative only: the config says what runs
    # What `data` holds; None: fingerprint the folder (local_eval.datasets.fingerprint). `compare` passes
    # its own for the datasets it generates (named by their config hash).
    data_content: Optional[str] = None
    # Fine-tunings of the one pre-trained backbone (seeds: phases.finetune_seed); the score is
    # their mean. 1 is today's run: it adds nothing to identity() or the report.
    finetune_repeats: int = 1
    # How pre-training reads `data`: "store" (decoded once into an image store, augmented on
    # the device) or "pil" (PNG files decoded and augmented in the loader workers).
    loader: str = "store"

    def downstream_sets(self) -> Tuple[DownstreamSet, ...]:
        return parse_downstream(self.downstream, self.data_root, self.downstream_dir)

    def identity(self) -> Dict[str, Any]:
        data = None if self.data is None else str(Path(self.data).resolve())
        content = self.data_content or dataset_fingerprint(self.data)
        repeats = {} if self.finetune_repeats == 1 else {"finetune_repeats": self.finetune_repeats}
        return {"config": self.config.to_dict(), "data": data, "data_content": content,
                "loader": None if self.data is None else self.loader,
                **downstream_identity(self.downstream_sets()), **repeats}


def check_repeats(count: int) -> None:
    check_bound("--finetune-repeats", count, REPEATS)


class DataChanged(UserError):
    """The run folder holds this same run, made on other data under the same paths."""


def check_out_dir(spec: RunSpec) -> None:
    """Refuse an --out that cannot be written or holds something else than this same run.

    A run made on data that changed since (same paths, other files: local_eval.datasets.fingerprint) is
    refused with DataChanged, so its scores are never reported for the new data.
    """
    out = spec.out
    check_writable_target(out, "--out", is_dir=True)
    try:
        if not out.exists() or not any(p.name != LOCK_FILE for p in out.iterdir()):
            return
    except OSError as error:
        raise UserError(f"cannot read --out {out}: {error.strerror}; pass a folder you can "
                        f"read and write") from None
    previous = read_record(out, RUN_FILE, "local_eval run")
    if isinstance(previous.get("config"), dict):  # a run from before a field existed used its
        for key, value in EvalConfig().to_dict().items():  # default, which kept the old recipe
            previous["config"].setdefault(key, value)
    # Runs from before the store existed decoded PNG files (the PIL path).
    previous.setdefault("loader", None if previous.get("data") is None else "pil")
    identity = spec.identity()
    repeats = {"finetune_repeats": 1}  # absent when 1: say "3 -> 1", not "3 -> None"
    changes = differences(without_content({**repeats, **previous}),
                          without_content({**repeats, **identity}))
    if changes:
        raise UserError(f"--out {out} holds a run with a different config ({'; '.join(changes[:3])}"
                        f"); pass another --out, or remove {out} to start over")
    changed = [key for key in CONTENT_KEYS if content_changed(previous.get(key), identity.get(key))]
    if changed:
        what = " and ".join(dict.fromkeys("--data" if key == "data_content" else
                                          "the downstream set's files" for key in changed))
        raise DataChanged(f"{what} changed since the run in --out {out} was made (other files, "
                          f"sizes or modification times under the same path); its results are "
                          f"not this data's: pass another --out, or remove {out} to start over")


def input_folders(spec: RunSpec) -> Dict[str, Path]:
    """What a run reads, by the label its messages use: --data and each downstream set's folder."""
    inputs = {} if spec.data is None else {"--data": Path(spec.data)}
    for downstream_set in spec.downstream_sets():
        inputs[f"the downstream set {downstream_set.name}"] = downstream_set.files_folder()
    return inputs


def check_outputs(spec: RunSpec) -> None:
    """The run folder, and the cache's image store of --data, lie outside every input
    (submission.paths: one rule for every command): a checkpoint or curves.png written into the
    data would change what later runs read."""
    inputs = input_folders(spec)
    check_output_outside_inputs(spec.out, inputs, "--out")
    if spec.data is not None and spec.loader == "store":
        from ..store.layout import default_store_dir

        check_output_outside_inputs(default_store_dir(spec.data), inputs,
                                    "the image store folder (set by LOCAL_EVAL_STORES)")


def validate(spec: RunSpec, world_size: int, check_data: bool = True) -> int:
    """Every check that needs no training, so a bad input fails before anything is written;
    returns the bytes the run's checkpoints will take at most (local_eval.run.space).

    `check_data` False skips the --data checks (for a dataset `compare` has yet to generate).
    """
    config = spec.config
    check_repeats(spec.finetune_repeats)
    if spec.data is not None and check_data:
        check_image_folder(spec.data, "--data", "--data")
        check_crop_fits(spec.data, config, config.pretrain_classes)
    if spec.data is not None and spec.loader == "store" and config.rand_augment:
        from ..augment.device import rand_augment_spec

        rand_augment_spec(config)  # the device's RandAugment takes only timm's rand-... strings
    for downstream_set in spec.downstream_sets():
        downstream_set.validate(spec.download)
    check_outputs(spec)
    for name in ("pretrain_batch_size", "finetune_batch_size"):
        batch = getattr(config, name)
        if batch % world_size:
            raise UserError(f"{name} {batch} is not divisible by the {world_size} processes; "
                            f"pass a multiple of {world_size}")
    if config.uses_mixup and (config.pretrain_batch_size // world_size) % 2:
        raise UserError(f"Mixup/CutMix need an even batch per process; pretrain_batch_size "
                        f"{config.pretrain_batch_size} over {world_size} process(es) is odd")
    model = create_model(config, 2)  # unknown model names and unsupported sizes fail here
    check_out_dir(spec)
    count = checkpoint_count(spec.data is not None, len(spec.downstream_sets()),
                             spec.finetune_repeats, spec.compare_scratch)
    each = checkpoint_bytes(sum(p.numel() for p in model.parameters()))
    check_space(spec.out, count, each)
    return count * each
