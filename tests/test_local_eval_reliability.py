"""Reliability, round 3 (issue 26), the `python -m local_eval` side: the sibling of
tests/test_submission_reliability.py's bad-input table. Every row is one command line of run,
compare, stats, store, noise, digits, timing or throughput that must end in exactly one `error:`
line with exit code 2, before any work: the output folder or file is not created, the inputs and
the image-store cache are byte-unchanged. NUMBER_ROWS: every number past its bound
(local_eval.core.limits); LATE_ROWS: inputs that used to be checked after something was written;
DOWNSTREAM_ROWS: damaged downstream sets (item 4); PATH_ROWS: an output inside an input (item 1)
and dataset entries that are not regular files (items 2 and 8)."""
from __future__ import annotations

import os
import pickle
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

from local_eval.cli import main
from tests.downstream_fakes import IDX_NAMES, make_mnist, write_idx
from tests.local_eval_fixtures import make_cifar100, make_image_folder

RUN = ["run", "--data", "{data}", "--out", "{out}", "--preset", "smoke", "--downstream",
       "fashion-mnist", "--data-root", "{root}", "--no-progress"]
COMPARE = ["compare", "mine={data}", "--out", "{out}", "--presets", "smoke", "--seeds", "1",
           "--downstream", "fashion-mnist", "--data-root", "{root}", "--no-progress"]
STATS = ["stats", "{data}"]
STORE = ["store", "{data}", "--out", "{out}"]
TIMING = ["timing", "--preset", "smoke"]
THROUGHPUT = ["throughput", "--data", "{data}", "--preset", "smoke", "--device", "cpu",
              "--variants", "none", "--workers", "0"]
BIG = "1000000000"

# --- the runner ----------------------------------------------------------------------------------


def run_local_eval(argv: List[str], capfd) -> Tuple[int, str]:
    """`python -m local_eval ARGV` in this process: (exit code, all it printed)."""
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    printed = capfd.readouterr()
    assert not printed.out.strip() or not printed.err.strip(), printed  # one stream, one line
    return code, printed.out + printed.err


def assert_one_error_line(code: int, printed: str, fragment: str) -> str:
    lines = printed.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), \
        f"exit {code}\n{printed[-3000:]}"
    assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(*roots: Path) -> Dict[str, bytes]:
    """Every entry under `roots`: a file's bytes; a folder, FIFO or link by what it is."""
    found: Dict[str, bytes] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                found[str(path)] = b"<link to " + os.fsencode(os.readlink(path)) + b">"
            else:
                found[str(path)] = path.read_bytes() if path.is_file() else b"<not a file>"
    return found


@pytest.fixture
def world(tmp_path, monkeypatch) -> Dict[str, Path]:
    """{data}: a tiny generated ImageFolder; {root}: a data root with a Fashion-MNIST fake;
    {out}: a path that must stay absent; {dir}: an empty folder. The image-store cache lives in
    tmp_path/stores, so a store built by mistake shows in the snapshot."""
    work = tmp_path / "work"
    monkeypatch.setenv("LOCAL_EVAL_STORES", str(tmp_path / "stores"))
    (tmp_path / "stores").mkdir()
    data = make_image_folder(work / "data", classes=4, images_per_class=8)
    root = make_mnist(work / "root", "FashionMNIST")
    (work / "dir").mkdir()
    return {"work": work, "stores": tmp_path / "stores", "data": data, "root": root,
            "out": work / "out", "dir": work / "dir"}


def check_row(world: Dict[str, Path], capfd, argv: List[str], fragment: str) -> str:
    values = {name: str(path) for name, path in world.items()}
    before = snapshot(world["work"], world["stores"])
    line = assert_one_error_line(*run_local_eval([a.format(**values) for a in argv], capfd),
                                 fragment.format(**values))
    assert not os.path.lexists(world["out"]) and not os.path.lexists(f"{world['out']}.png")
    assert snapshot(world["work"], world["stores"]) == before
    return line


# --- item 5: every number bounded, before any work -----------------------------------------------

NUMBER_ROWS = [
    # run: the recipe (one --FIELD per EvalConfig field) and the runtime
    ([*RUN, "--epochs", BIG], "pretrain_epochs must be at most 1000"),
    ([*RUN, "--epochs", "0"], "pretrain_epochs must be at least 1, got 0"),
    ([*RUN, "--pretrain-epochs", "5000"], "pretrain_epochs must be at most 1000"),
    ([*RUN, "--finetune-epochs", "100000"], "finetune_epochs must be at most 1000"),
    ([*RUN, "--finetune-epochs", "-3"], "finetune_epochs must be at least 1"),
    ([*RUN, "--finetune-repeats", BIG], "--finetune-repeats must be at most 100"),
    ([*RUN, "--finetune-repeats", "0"], "--finetune-repeats must be at least 1, got 0"),
    ([*RUN, "--workers", "100000"], "--workers must be at most 64"),
    ([*RUN, "--workers", "-1"], "--workers must not be negative"),
    ([*RUN, "--img-size", "100000"], "img_size must be at most 1024"),
    ([*RUN, "--img-size", "0"], "img_size must be at least 1"),
    ([*RUN, "--patch-size", "100000"], "patch_size must be at most 1024"),
    ([*RUN, "--patch-size", "0"], "patch_size must be at least 1"),
    ([*RUN, "--depth", "1000"], "depth must be at most 64"),
    ([*RUN, "--batch-size", BIG], "pretrain_batch_size must be at most 16384"),
    ([*RUN, "--finetune-batch-size", "100000"], "finetune_batch_size must be at most 16384"),
    ([*RUN, "--pretrain-classes", BIG], "pretrain_classes must be at most 100000"),
    ([*RUN, "--finetune-classes", BIG], "finetune_classes must be at most 100000"),
    ([*RUN, "--pretrain-images-per-class", BIG], "pretrain_images_per_class must be at most"),
    ([*RUN, "--finetune-train-per-class", BIG], "finetune_train_per_class must be at most"),
    ([*RUN, "--finetune-test-per-class", BIG], "finetune_test_per_class must be at most"),
    ([*RUN, "--pretrain-lr", "0"], "pretrain_lr must be positive"),
    ([*RUN, "--finetune-lr", "inf"], "finetune_lr must be a finite number"),
    ([*RUN, "--pretrain-min-lr", "-1"], "pretrain_min_lr must not be negative"),
    ([*RUN, "--finetune-weight-decay", "5"], "finetune_weight_decay must be at most 1"),
    ([*RUN, "--pretrain-warmup-epochs", "1e5"], "pretrain_warmup_epochs must be at most 1000"),
    ([*RUN, "--mixup", "1000"], "mixup must be at most 100"),
    ([*RUN, "--cutmix", "1e4"], "cutmix must be at most 100"),
    ([*RUN, "--color-jitter", "3"], "color_jitter must be at most 1"),
    ([*RUN, "--finetune-resize", "100000"], "finetune_resize must be at most 2048"),
    ([*RUN, "--hflip", "2"], "hflip must be in [0, 1]"),
    ([*RUN, "--seed", "2147483648"], "seed must be a non-negative integer of at most 2147483647"),
    ([*RUN, "--stop-after-epochs", "10000000"], "--stop-after-epochs must be at most 1000000"),
    ([*RUN, "--stop-after-epochs", "0"], "--stop-after-epochs must be at least 1"),
    # compare: the same recipe and runtime numbers, and its own
    ([*COMPARE, "--epochs", BIG], "pretrain_epochs must be at most 1000"),
    ([*COMPARE, "--img-size", "100000"], "img_size must be at most 1024"),
    ([*COMPARE, "--finetune-repeats", BIG], "--finetune-repeats must be at most 100"),
    ([*COMPARE, "--workers", "100000"], "--workers must be at most 64"),
    ([*COMPARE, "--stop-after-epochs", "10000000"], "--stop-after-epochs must be at most"),
    ([*COMPARE, "--seeds", "5000"], "--seeds must be from 1 to 1000"),
    ([*COMPARE, "--target-diff", "1e9"], "--target-diff must be at most 50100"),
    # stats
    ([*STATS, "--classes", "1000", "--images-per-class", "1000"],
     "--classes x --images-per-class must be at most 10,000 images"),
    ([*STATS, "--classes", "1"], "--classes and --images-per-class must be at least 2"),
    ([*STATS, "--seed", "2147483648"], "--seed must be at most 2147483647"),
    ([*STATS, "--crops", "0"], "--crops must be positive sizes"),
    ([*STATS, "--crops", "32,100000"], "--crops must be sizes of at most 4096 px"),
    # store
    ([*STORE, "--workers", "100000"], "--workers must be at most 64"),
    ([*STORE, "--workers", "0"], "--workers must be at least 1"),
    # timing
    ([*TIMING, "--classes", "0"], "--classes must be at least 2, got 0"),
    ([*TIMING, "--classes", BIG], "--classes must be at most 100000"),
    ([*TIMING, "--images-per-class", "-5"], "--images-per-class must be at least 1, got -5"),
    ([*TIMING, "--images-per-class", BIG], "--images-per-class must be at most 100000"),
    ([*TIMING, "--image-size", "100000"], "--image-size must be at most 4096"),
    ([*TIMING, "--image-size", "8"], "--image-size must be at least 16"),
    ([*TIMING, "--downstream", "10x-3x100"], "--downstream train images per class must be at least 1"),
    ([*TIMING, "--downstream", "0x300x100"], "--downstream classes must be at least 2"),
    ([*TIMING, "--downstream", f"10x300x{BIG}"], "--downstream test images per class must be at most"),
    ([*TIMING, "--downstream", "10x300"], "is not CLASSESxTRAINxTEST"),
    ([*TIMING, "--repeats", "0"], "--repeats must be at least 1"),
    ([*TIMING, "--repeats", BIG], "--repeats must be at most 100"),
    ([*TIMING, "--threads", "0"], "--threads must be at least 1"),
    ([*TIMING, "--threads", "1,1000"], "--threads must be at most 64"),
    # throughput
    ([*THROUGHPUT[:-1], "100000"], "--workers must be at most 64"),
    ([*THROUGHPUT[:-1], "-1"], "--workers must be at least 0"),
    ([*THROUGHPUT[:-1], ","], "--workers ',' lists no count"),
    ([*THROUGHPUT, "--warmup", "100000"], "--warmup must be at most 1000"),
    ([*THROUGHPUT, "--warmup", "-1"], "--warmup must be at least 0"),
    ([*THROUGHPUT, "--steps", BIG], "--steps must be at most 1000"),
    ([*THROUGHPUT, "--steps", "0"], "--steps must be at least 1"),
    ([*THROUGHPUT, "--batch-size", BIG], "--batch-size must be at most 16384"),
    ([*THROUGHPUT, "--batch-size", "0"], "--batch-size must be at least 1"),
]

# --- item 7: no late checks ----------------------------------------------------------------------

LATE_ROWS = [
    # the RandAugment string was parsed when pre-training built its transform, after run.json
    ([*RUN, "--rand-augment", "garbage"], "rand_augment 'garbage' is not a timm augmentation string"),
    ([*RUN, "--rand-augment", "rand-x3"], "unknown section 'x3'"),
    ([*RUN, "--rand-augment", "rand-m9x"], "section 'm9x' needs a whole number after 'm'"),
    ([*RUN, "--rand-augment", "rand-n1000"], "n must be at most 15"),
    ([*RUN, "--rand-augment", "rand-p2"], "p is a probability"),
    ([*RUN, "--rand-augment", "augmix-m5"], "pass --loader pil"),  # the store's device chain
    ([*RUN, "--loader", "pil", "--rand-augment", "v1"], "is not a timm augmentation string"),
    ([*COMPARE, "--rand-augment", "garbage"], "is not a timm augmentation string"),
    # stats wrote its table before it found that --json or --plot could not be written
    ([*STATS, "--json", "{dir}"], "--json {dir} is a folder"),
    ([*STATS, "--plot", "{dir}"], "--plot {dir} is a folder"),
    ([*STATS, "--plot", "{out}.gif"], "--plot {out}.gif must end in .png"),
    ([*STATS, "--plot", "{out}.png", "--json", "{out}.png"], "name the same file"),
]


@pytest.mark.parametrize("argv, fragment", NUMBER_ROWS + LATE_ROWS,
                         ids=[" ".join(a) for a, _ in NUMBER_ROWS + LATE_ROWS])
def test_a_bad_input_is_one_error_line_and_writes_nothing(world, capfd, argv, fragment):
    check_row(world, capfd, argv, fragment)


def test_the_corrected_rerun_into_the_same_out_is_accepted(world, capfd):
    """--rand-augment garbage left a run.json behind, so the corrected command was refused."""
    check_row(world, capfd, [*RUN, "--rand-augment", "garbage"], "garbage")
    from local_eval.run.cli import build_parser, spec_from_args
    from local_eval.run.spec import validate

    values = {name: str(path) for name, path in world.items()}
    args = build_parser().parse_args([a.format(**values) for a in RUN[1:]]
                                     + ["--rand-augment", "rand-m9-mstd0.5-inc1"])
    validate(spec_from_args(args), 1)  # raises if the folder held another run


# --- item 5: free disk space for the checkpoints -------------------------------------------------

def test_too_little_disk_for_the_checkpoints_is_one_line(world, capfd, monkeypatch):
    import shutil

    from local_eval.run import space
    from local_eval.run.cli import build_parser, spec_from_args
    from local_eval.run.spec import validate

    usage = shutil.disk_usage(world["work"])
    monkeypatch.setattr(space.shutil, "disk_usage",
                        lambda path: usage._replace(free=100_000_000))  # 100 MB
    # A smoke checkpoint takes up to 11.9 MB (measured: 10.9 MB pre-training with AdamW, 7.3 MB
    # fine-tuning with SGD): one repeat fits (3 x 11.9 MB with the temporary file), 100 do not.
    line = check_row(world, capfd, [*RUN, "--finetune-repeats", "100"], "checkpoint(s) of up to")
    assert "101 checkpoint(s) of up to 12 MB need 1.21 GB" in line and "0.10 GB free" in line
    values = {name: str(path) for name, path in world.items()}
    validate(spec_from_args(build_parser().parse_args([a.format(**values) for a in RUN[1:]])), 1)
    assert space.checkpoint_count(True, 2, 3, True) == 13
    assert space.checkpoint_bytes(904_906) == 3 * 4 * 904_906 + 2**20


def test_too_little_disk_for_a_comparisons_checkpoints_is_one_line(world, capfd, monkeypatch):
    import shutil

    from local_eval.run import space

    usage = shutil.disk_usage(world["work"])
    monkeypatch.setattr(space.shutil, "disk_usage",
                        lambda path: usage._replace(free=200_000_000))  # 200 MB
    # Each run fits alone (2 checkpoints of 11.9 MB); 10 seeds x 2 datasets = 20 runs need 0.48 GB.
    argv = ["compare", "again={data}", *COMPARE[1:], "--seeds", "10"]
    check_row(world, capfd, argv, "the checkpoints of its 20 runs need up to 0.48 GB, but its "
                                  "disk has 0.20 GB free")


# --- item 4: downstream sets checked -------------------------------------------------------------

def _raw(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"


def _damage(root: Path, how: str) -> None:
    raw = _raw(root)
    images, labels = raw / IDX_NAMES[("train", "images")], raw / IDX_NAMES[("train", "labels")]
    if how == "swapped":
        moved = images.read_bytes()
        images.write_bytes(labels.read_bytes())
        labels.write_bytes(moved)
    elif how == "label 255":
        data = bytearray(labels.read_bytes())
        data[8 + 3] = 255
        labels.write_bytes(bytes(data))
    elif how == "two dimensions":
        write_idx(images, np.zeros((32, 784), dtype=np.uint8))
    elif how == "fewer labels":
        write_idx(labels, np.zeros(31, dtype=np.uint8))
    elif how == "truncated":
        images.write_bytes(images.read_bytes()[:-5])
    elif how == "not idx":
        images.write_bytes(b"\x89PNG\r\n" + bytes(100))


DOWNSTREAM_ROWS = [
    ("swapped", "train-images-idx3-ubyte has 1 dimension(s) (32), but an IDX file of images has 3 "
                "(it holds labels: the images and labels files look swapped)"),
    ("label 255", "train-labels-idx1-ubyte holds label 255 (1 of 32 labels lie outside 0..9"),
    ("two dimensions", "train-images-idx3-ubyte has 2 dimension(s) (32x784)"),
    ("fewer labels", "holds 32 images but"),
    ("truncated", "its header says"),
    ("not idx", "is not an IDX file of unsigned bytes"),
]


@pytest.mark.parametrize("how, fragment", DOWNSTREAM_ROWS, ids=[h for h, _ in DOWNSTREAM_ROWS])
def test_a_damaged_fashion_mnist_is_one_line_naming_the_file(world, capfd, how, fragment):
    _damage(world["root"], how)
    line = check_row(world, capfd, RUN, fragment)
    assert "downstream set fashion-mnist: " in line and str(_raw(world["root"])) in line
    assert "make downstream" in line


def test_a_cifar_label_out_of_range_is_refused_before_the_store_is_built(world, capfd):
    root = make_cifar100(world["work"] / "cifar")
    train = root / "cifar-100-python" / "train"
    batch = pickle.loads(train.read_bytes())
    batch["fine_labels"][5] = 255
    train.write_bytes(pickle.dumps(batch, protocol=2))
    argv = [*RUN[:-4], "cifar100", "--data-root", str(root), "--no-progress"]
    check_row(world, capfd, argv, "CIFAR-100 label 255 lies outside 0..99 of its 100 classes")


# --- item 7: --download without a network --------------------------------------------------------

def test_a_download_without_a_network_is_one_line(world, capfd, monkeypatch):
    def no_network(*args, **kwargs):  # what urlopen raises when no name resolves
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    empty = world["work"] / "empty-root"
    argv = [*RUN[:-3], "--data-root", str(empty), "--download", "--no-progress"]
    code, printed = run_local_eval([a.format(**{k: str(v) for k, v in world.items()})
                                    for a in argv], capfd)
    line = assert_one_error_line(code, printed, "could not download Fashion-MNIST from "
                                                "fashion-mnist.s3-website.eu-central-1.amazonaws.com")
    assert "Temporary failure in name resolution" in line and "make downstream" in line
    assert not world["out"].exists()


# --- items 1, 2 and 8: outputs never inside inputs; dataset entries that are no regular file ------

@pytest.fixture
def path_world(world) -> Dict[str, Path]:
    """`world`, plus {pair}: an ImageFolder pair for --downstream-dir, and three copies of {data}
    with 00001/00008.png replaced: {fifo} by a FIFO, {selfloop} by a link to itself, {dangling} by
    a link to a missing file."""
    work = world["work"]
    pair = work / "pair"
    for split in ("train", "val"):
        make_image_folder(pair / split, classes=2, images_per_class=4)
    bad = {}
    for kind in ("fifo", "selfloop", "dangling"):
        entry = make_image_folder(work / kind, classes=4, images_per_class=8) / "00001" / "00008.png"
        if kind == "fifo":
            os.mkfifo(entry)
        else:
            entry.symlink_to(entry.name if kind == "selfloop" else "missing.png")
        bad[kind] = work / kind
    return {**world, "pair": pair, **bad}


FIFO = "{fifo}/00001/00008.png is a FIFO (named pipe), not an image file"
PAIR = ["--downstream", "folder", "--downstream-dir", "{pair}"]

PATH_ROWS = [
    # item 1: an output never is, lies inside or contains an input (submission.paths)
    ([*RUN[:4], "{data}/00000/run", *RUN[5:]], "--out {data}/00000/run lies inside --data {data}"),
    ([*RUN[:4], "{data}", *RUN[5:]], "--out {data} is --data {data}"),
    ([*RUN[:4], "{work}", *RUN[5:]], "--out {work} contains --data {data}"),
    ([*RUN[:4], "{root}/FashionMNIST/raw/run", *RUN[5:]],
     "lies inside the downstream set fashion-mnist {root}/FashionMNIST/raw"),
    ([*RUN[:4], "{root}", *RUN[5:]], "--out {root} contains the downstream set fashion-mnist"),
    ([*RUN[:4], "{pair}/train/run", *RUN[5:7], *PAIR, "--no-progress"],
     "lies inside the downstream set pair {pair}"),
    ([*COMPARE[:2], "--out", "{data}/cmp", *COMPARE[4:]], "--out {data}/cmp lies inside dataset mine"),
    ([*COMPARE[:2], "--out", "{work}", *COMPARE[4:]], "--out {work} contains dataset mine"),
    ([*COMPARE[:2], "--out", "{root}/FashionMNIST", *COMPARE[4:]],
     "contains the downstream set fashion-mnist"),
    ([*COMPARE[:2], "--out", "{pair}/cmp", *COMPARE[4:8], *PAIR, "--no-progress"],
     "lies inside the downstream set pair"),
    (["store", "{data}", "--out", "{data}/store"], "--out {data}/store lies inside DATA {data}"),
    (["store", "{data}", "--out", "{work}"], "--out {work} contains DATA {data}"),
    ([*STATS, "--json", "{data}/stats.json"], "--json {data}/stats.json lies inside dataset data"),
    ([*STATS, "--plot", "{data}/00000/sheet.png"], "--plot {data}/00000/sheet.png lies inside"),
    (["stats", "a={data}", "b={pair}/train", "--plot", "{pair}/train/00000/sheet.png"],
     "lies inside dataset b"),
    (["noise", "{data}/00004", "--classes", "2", "--images-per-class", "2"],
     "OUT {data}/00004 lies inside the dataset {data}"),
    (["digits", "{data}/digits"], "OUT {data}/digits lies inside the dataset {data}"),
    # items 2 and 8: an entry named like an image must be a regular file; nothing blocks on a FIFO
    ([*RUN[:2], "{fifo}", *RUN[3:]], FIFO),
    ([*RUN[:2], "{fifo}", *RUN[3:], "--loader", "pil"], FIFO),
    ([*RUN[:2], "{selfloop}", *RUN[3:]],
     "{selfloop}/00001/00008.png is a loop of symbolic links (to 00008.png)"),
    ([*RUN[:2], "{dangling}", *RUN[3:]],
     "{dangling}/00001/00008.png is a dangling symbolic link to missing.png"),
    (["compare", "mine={fifo}", *COMPARE[2:]], FIFO),
    (["stats", "{fifo}"], FIFO),
    (["store", "{fifo}", "--out", "{out}"], FIFO),
    (["store", "{fifo}"], FIFO),
    (["throughput", "--data", "{fifo}", *THROUGHPUT[3:], "--loader", "pil"], FIFO),
]


@pytest.fixture
def no_hang():
    """A row that blocks (a FIFO opened for reading) fails after two minutes instead of hanging."""
    def stuck(signum, frame):
        raise TimeoutError("the command blocked for 120 s")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("argv, fragment", PATH_ROWS, ids=[" ".join(a) for a, _ in PATH_ROWS])
def test_a_bad_path_is_one_error_line_and_writes_nothing(path_world, capfd, no_hang, argv,
                                                         fragment):
    check_row(path_world, capfd, argv, fragment)
