"""`python -m local_eval gpu-campaign` (scripts/gpu_campaign.sh): the committed command line made
for this machine, units chosen dataset by dataset inside the time budget by their estimates
(measured ones once known), the runs already committed skipped, and only what a merge needs
packed. Nothing is trained here: the units are not run."""
from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

import pytest

from local_eval.compare.cli import build_parser, plan_from_args
from local_eval.tools import campaign
from local_eval.tools.campaign import SLOT_FOLDER, Slot, pack, slot_argv
from tests.local_eval_fixtures import make_cifar100

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign")
    data = make_cifar100(root / "data")
    argv = slot_argv({"argv": ["recipe:fractal-4th", "recipe:visualatom", "scratch", "--presets",
                               "kit-mobilenet-gpu", "--seeds", "2", "--downstream", "cifar100",
                               "--data-root", "elsewhere", "--out", "committed"]},
                     root / "work", str(data), None)
    return plan_from_args(build_parser().parse_args(argv))


def options(budget: float, **changes) -> argparse.Namespace:
    return argparse.Namespace(budget=budget, grace=60.0, run_seconds=None,
                              generate_rate=campaign.GENERATE_RATE_224, **changes)


def test_slot_argv_points_the_committed_command_at_this_machine():
    argv = slot_argv({"argv": ["scratch", "--out", "docs/x", "--data-root", "data",
                               "--prepare-only"]}, Path("/w"), "/d", "smoke")
    assert argv == ["scratch", "--out", "/w", "--data-root", "/d", "--prepare-only",
                    "--presets", "smoke", "--no-progress", "--prepare-only"]


def test_units_are_chosen_dataset_by_dataset_inside_the_budget(plan, monkeypatch):
    done = {("fractal-4th", "kit-mobilenet-gpu", 0)}  # committed already
    slot = Slot(plan, done, options(370.0))
    assert [u.label() for u in slot.pending] == [
        "fractal-4th / kit-mobilenet-gpu / seed 1", "visualatom / kit-mobilenet-gpu / seed 0",
        "visualatom / kit-mobilenet-gpu / seed 1", "scratch / kit-mobilenet-gpu / seed 0",
        "scratch / kit-mobilenet-gpu / seed 1"]
    # fractal-4th: 20,000 images at 384 px at 883 x (224/384)^2 images/s + 15 s, then 62.5 s.
    generation = 20000 / (883 * (224 / 384) ** 2) + 15
    assert slot.cost(slot.pending[0]) == pytest.approx(generation + 62.5)
    assert slot.cost(slot.pending[3]) == 37.5  # scratch: no generation, no pre-training
    preview = slot.preview()  # a generation with its dataset's first run only
    assert len(preview) == 3 and [line.split()[1] for line in preview[:2]] == ["5", "3"]
    assert "generate   82 s + run   62 s -> at  144 s" in preview[0]
    assert "generate  133 s + run   62 s -> at  340 s" in preview[1]
    # Then scratch (37.5 s, no generation) would end at 377 s + 15 to pack: past 370.
    assert preview[-1].endswith("2 run(s) in this slot, 3 left for later")
    ran = []

    def execute(unit, estimate):  # instead of a subprocess: the estimate passes as the time
        ran.append((unit.label(), round(estimate, 1)))
        slot.record.append({"seconds": 50.0 if unit.kind == "run" else estimate})
        slot.began -= slot.record[-1]["seconds"]
        return unit.dataset != "visualatom"  # its generation fails (e.g. no fonts)

    monkeypatch.setattr(slot, "execute", execute)
    slot.run()
    assert ran == [("generate fractal-4th", round(generation, 1)),
                   ("fractal-4th / kit-mobilenet-gpu / seed 1", 62.5),
                   ("generate visualatom", round(20000 / (883 * (224 / 512) ** 2) + 15, 1)),
                   ("scratch / kit-mobilenet-gpu / seed 0", 37.5)]
    # After about 315 s, scratch seed 1 (50 s measured + 15 s to pack) no longer fits in 370.
    assert slot.elapsed() + slot.cost(slot.pending[-1]) + campaign.RESERVE_S > 370
    assert slot.measured == {("kit-mobilenet-gpu", True): [50.0],
                             ("kit-mobilenet-gpu", False): [50.0]}
    assert slot.run_estimate(slot.pending[-1]) == 50.0  # measured replaces the arithmetic


def test_pack_holds_the_plan_and_what_a_merge_reads_of_finished_runs(plan, tmp_path):
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "plan.json").write_text("{}")
    for seed, files in ((0, ("run.json", "report.json", "curves.png", "pretrain.pt")),
                        (1, ("run.json", "pretrain.pt"))):
        folder = plan.run_dir(("scratch", "kit-mobilenet-gpu", seed))
        folder.mkdir(parents=True, exist_ok=True)
        for name in files:
            (folder / name).write_text(json.dumps(name))
    assert pack(plan, tmp_path) == 1
    with tarfile.open(tmp_path / "runs.tar.gz") as archive:
        assert sorted(archive.getnames()) == [
            f"{SLOT_FOLDER}/plan.json"] + [
            f"{SLOT_FOLDER}/runs/scratch/kit-mobilenet-gpu/seed0/{name}"
            for name in ("curves.png", "report.json", "run.json")]
