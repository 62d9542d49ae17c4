"""One process at a time in a run folder (local_eval.core.lock): `run` refuses a folder another
process trains in; `compare` leaves such a run to its owner and takes the owner's result."""
from __future__ import annotations

import json
import shutil
import threading
import time

import pytest

from local_eval.cli import main
from local_eval.core.lock import LOCK_FILE, try_lock
from tests.local_eval_fixtures import make_cifar100, make_image_folder

from .test_local_eval_compare import compare_args


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lock_data")
    return (make_image_folder(root / "gen", classes=4, images_per_class=8),
            make_cifar100(root / "cifar", classes=4, train_per_class=8, test_per_class=4))


def run_args(inputs, out):
    generated, cifar = inputs
    return ["run", "--data", str(generated), "--out", str(out), "--preset", "smoke",
            "--data-root", str(cifar), "--workers", "0", "--no-progress", "--epochs", "2"]


def test_run_refuses_a_folder_another_process_trains_in_then_runs_when_it_is_free(inputs, tmp_path,
                                                                                  capsys):
    out = tmp_path / "run"
    holder = try_lock(out)  # another open file description: flock refuses it like another process
    assert holder is not None
    capsys.readouterr()
    assert main(run_args(inputs, out)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: another local_eval process is training in") and "\n" not in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing of the run was written
    holder.close()
    assert main(run_args(inputs, out)) == 0  # a folder holding only the lock file is a new run
    assert (out / "report.json").is_file()


def started_comparison(inputs, out):
    """A comparison another process is part-way through: plan.json written, a first epoch done."""
    assert main(compare_args(inputs, out, "--stop-after-epochs", "1")) == 0
    return out


def release_when_the_rest_is_done(out, holder, before_release=lambda: None):
    """The owner of a busy run: lets go once compare has finished every other run (so compare has
    met the busy run first, and then waits for it or finds it free), or after 10 minutes."""
    def owner():
        deadline = time.monotonic() + 600
        while (len(list((out / "runs").glob("*/smoke/seed*/report.json"))) < 5
               and time.monotonic() < deadline):
            time.sleep(0.1)
        before_release()
        holder.close()

    thread = threading.Thread(target=owner, daemon=True)
    thread.start()
    return thread


def test_compare_leaves_a_busy_run_to_its_owner_and_takes_its_result(inputs, tmp_path, capsys):
    out = started_comparison(inputs, tmp_path / "cmp")
    busy = out / "runs" / "mine" / "smoke" / "seed0"  # the run that other process is in
    holder = try_lock(busy)

    def finish_it():  # the owner's result: seed 1's run with a marked score
        finished = out / "runs" / "mine" / "smoke" / "seed1"
        shutil.copy(finished / "run.json", busy / "run.json")
        report = json.loads((finished / "report.json").read_text())
        report["score"] = 12345.0
        (busy / "report.json").write_text(json.dumps(report))

    thread = release_when_the_rest_is_done(out, holder, finish_it)
    assert main(compare_args(inputs, out)) == 0
    thread.join()
    printed = capsys.readouterr().out
    assert "mine / smoke / seed 0: another process is training it" in printed
    summary = json.loads((out / "compare.json").read_text())
    scores = {(r["dataset"], r["seed"]): r["score"] for r in summary["runs"]}
    assert scores[("mine", 0)] == 12345.0  # the owner's result, not a second training
    assert summary["complete"] and len(scores) == 6


def test_compare_trains_a_run_itself_when_its_owner_stopped_without_a_result(inputs, tmp_path,
                                                                             capsys):
    out = started_comparison(inputs, tmp_path / "cmp")
    busy = out / "runs" / "noise" / "smoke" / "seed1"
    thread = release_when_the_rest_is_done(out, try_lock(busy))
    assert main(compare_args(inputs, out)) == 0
    thread.join()
    assert "noise / smoke / seed 1: another process is training it" in capsys.readouterr().out
    summary = json.loads((out / "compare.json").read_text())
    assert summary["complete"] and len(summary["runs"]) == 6
    assert json.loads((busy / "report.json").read_text())["config"]["seed"] == 1


def test_a_second_compare_waits_for_the_first_ones_generation_of_a_dataset(tmp_path, monkeypatch):
    """generate refuses a second writer of one folder; two compares on one OUT both generate
    each dataset they need, so the second waits for the first's, then finds it done."""
    import submission
    from local_eval.compare.datasets import parse_dataset

    dataset = parse_dataset("recipe:fractal")
    cache = tmp_path / "cache"
    folder = dataset.path(cache)
    calls, lines = [], []
    waiting = threading.Event()
    monkeypatch.setattr(submission, "generate", lambda out, config, progress: calls.append(out))

    def log(line):
        lines.append(line)
        if line.startswith("waiting"):
            waiting.set()

    holder = try_lock(cache / "locks" / folder.name)  # the first compare, generating
    assert holder is not None
    second = threading.Thread(target=dataset.prepare, args=(cache, log))
    second.start()
    assert waiting.wait(timeout=60)
    assert calls == [] and second.is_alive()  # it waits instead of failing
    holder.close()
    second.join(timeout=60)
    assert calls == [folder] and lines[0] == f"waiting for another compare generating fractal into {folder}"
    assert lines[1].startswith("generating fractal")
