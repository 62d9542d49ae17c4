"""CIFAR-10 and several downstream sets in one run, scored as their mean."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from local_eval.cli import main
from local_eval.core.metric import cumulative_error
from local_eval.core.presets import preset_config
from local_eval.datasets.cifar import read_cifar10
from local_eval.datasets.downstream import parse_downstream
from submission.errors import UserError
from tests.local_eval_fixtures import make_cifar10, make_cifar100, make_image_folder
from tests.test_local_eval_kit import NEW_FIELDS


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream_data")
    generated = make_image_folder(root / "generated", classes=4, images_per_class=8)
    cifar = make_cifar10(root / "cifar", classes=4, train_per_class=8, test_per_class=4)
    make_cifar100(root / "cifar", classes=4, train_per_class=8, test_per_class=4)
    folder = root / "shapes"
    make_image_folder(folder / "train", classes=3, images_per_class=8, size=24, seed=1)
    make_image_folder(folder / "val", classes=3, images_per_class=4, size=24, seed=2)
    return generated, cifar, folder


# --- CIFAR-10 and downstream lists --------------------------------------------------------------

def test_cifar10_reader_layout(tmp_path):
    root = make_cifar10(tmp_path / "c", classes=3, train_per_class=5, test_per_class=2)
    images, labels, names = read_cifar10(root, "train")
    assert images.shape == (15, 32, 32, 3) and images.dtype == np.uint8
    assert sorted(labels.tolist()) == [0] * 5 + [1] * 5 + [2] * 5 and names[9] == "class_9"
    with open(root / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        raw = pickle.load(handle, encoding="latin1")["data"]  # (n, 3072): R, G, B planes
    row, col = 7, 21
    assert images[0, row, col].tolist() == [raw[0][c * 1024 + row * 32 + col] for c in range(3)]
    test_images, test_labels, _ = read_cifar10(root / "cifar-10-batches-py", "test")
    assert test_images.shape == (6, 32, 32, 3) and test_labels.tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        read_cifar10(tmp_path, "train")


def test_downstream_list_parsing(data, tmp_path):
    _, cifar, folder = data
    sets = parse_downstream(f"cifar10,cifar100,{folder}", cifar, None)
    assert [(s.kind, s.name) for s in sets] == [("cifar10", "cifar10"), ("cifar100", "cifar100"),
                                                ("folder", "shapes")]
    assert parse_downstream("folder", None, folder)[0].path == folder
    for text, root, words in [("cifar10", None, "needs --data-root"),
                              (str(tmp_path / "nope"), cifar, "neither cifar10"),
                              ("cifar10,,cifar100", cifar, "empty entry"),
                              ("cifar10,cifar10", cifar, "more than once"),
                              ("folder", cifar, "needs --downstream-dir")]:
        with pytest.raises(UserError, match=words):
            parse_downstream(text, root, None)



@pytest.mark.slow
def test_several_downstream_sets_average_and_match_single_runs(data, tmp_path, capsys):
    generated, cifar, folder = data
    smoke = ["--data", str(generated), "--preset", "smoke", "--data-root", str(cifar),
             "--workers", "0", "--no-progress", "--epochs", "2", "--finetune-classes", "3"]
    out = tmp_path / "multi"
    assert main([*smoke, "--out", str(out), "--downstream", f"cifar10,cifar100,{folder}",
                 "--compare-scratch"]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    scores = report["downstream_scores"]
    assert list(scores) == ["cifar10", "cifar100", "shapes"]
    assert report["score"] == pytest.approx(sum(scores.values()) / 3)
    for name, entry in report["downstream"].items():
        assert entry["score"] == pytest.approx(cumulative_error(entry["finetune"]["top1"]))
        assert entry["scratch_score"] == pytest.approx(cumulative_error(entry["scratch"]["top1"]))
        assert (out / f"finetune-{name}.pt").is_file() and (out / f"scratch-{name}.pt").is_file()
    assert report["scratch_score"] == pytest.approx(
        sum(e["scratch_score"] for e in report["downstream"].values()) / 3)
    assert "mean over 3 downstream sets" in capsys.readouterr().out
    # Each set is fine-tuned exactly as a run over that set alone would be.
    single = tmp_path / "single"
    assert main([*smoke, "--out", str(single), "--downstream", "cifar100"]) == 0
    alone = json.loads((single / "report.json").read_text())
    assert alone["finetune"]["top1"] == report["downstream"]["cifar100"]["finetune"]["top1"]


def test_a_run_folder_from_before_the_recipe_fields_still_resumes(data, tmp_path):
    from local_eval.run.record import RUN_FILE
    from local_eval.run.spec import RunSpec, check_out_dir

    generated, cifar, _ = data
    spec = RunSpec(config=preset_config("smoke"), data=generated, out=tmp_path / "old",
                   data_root=cifar)
    identity = spec.identity()
    assert (identity["downstream"], identity["downstream_path"]) == ("cifar100",
                                                                     str(cifar.resolve()))
    for name in NEW_FIELDS:  # run.json as written before these fields existed
        del identity["config"][name]
    spec.out.mkdir()
    (spec.out / RUN_FILE).write_text(json.dumps(identity))
    check_out_dir(spec)
    kit = RunSpec(config=spec.config.replace(pretrain_crop="random_crop"), data=generated,
                  out=spec.out, data_root=cifar)
    with pytest.raises(UserError, match="pretrain_crop 'random_resized_crop' -> 'random_crop'"):
        check_out_dir(kit)
