"""Reliability, round 3 (issue 26), the `python -m local_eval` side: the sibling of
tests/test_submission_reliability.py's bad-input table. Every row is one command line of run,
compare, stats, store, noise, digits or throughput that must end in exactly one `error:` line with
exit code 2, before any work: the output folder or file is not created, the inputs and the
image-store cache are byte-unchanged. PATH_ROWS: an output inside an input (item 1) and dataset
entries that are not regular files (items 2 and 8)."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from local_eval.cli import main
from tests.downstream_fakes import make_mnist
from tests.local_eval_fixtures import make_image_folder

RUN = ["run", "--data", "{data}", "--out", "{out}", "--preset", "smoke", "--downstream",
       "fashion-mnist", "--data-root", "{root}", "--no-progress"]
COMPARE = ["compare", "mine={data}", "--out", "{out}", "--presets", "smoke", "--seeds", "1",
           "--downstream", "fashion-mnist", "--data-root", "{root}", "--no-progress"]
STATS = ["stats", "{data}"]
STORE = ["store", "{data}", "--out", "{out}"]
THROUGHPUT = ["throughput", "--data", "{data}", "--preset", "smoke", "--device", "cpu",
              "--variants", "none", "--workers", "0"]

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
