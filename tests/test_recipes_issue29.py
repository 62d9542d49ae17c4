"""The recipes beyond the published ones (issue 29): fractal-perturbed-* (1p-frac), fractal-color
fractal-color-fill and fractal-fill (Anderson & Farrell), the mix family (mix-*). Each lever is off in the published recipes (their
bytes stay pinned by tests/test_pinned_bytes.py); each new recipe is byte-deterministic and pinned here."""
import dataclasses
import hashlib
import json

import numpy as np
import pytest

from submission import GenerationConfig, generate
from submission.errors import UserError
from submission.families.fractal.bank import build_bank
from submission.families.fractal.perturb import perturbed_clouds, perturbed_maps
from submission.families.mix.components import class_counts, components
from submission.families.mix.config import MixConfig
from submission.recipes import create_recipe, list_recipes

from .conftest import run_cli
from .test_glyphs import needs_all_fonts

NEW_RECIPES = ("fractal-perturbed-0.05", "fractal-perturbed-0.1", "fractal-color", "fractal-color-fill",
               "fractal-fill", "mix-fractal-glyphs", "mix-blend-fractal-glyphs")
FRACTAL_RECIPES = NEW_RECIPES[:5]
MIX_RECIPES = NEW_RECIPES[5:]


def tiny(name: str) -> GenerationConfig:
    """A recipe at test size (the fractal ones with 2000 points; a mix's components keep their own)."""
    if name.startswith("mix"):
        return create_recipe(name, classes=2, images_per_class=2, image_size=64, workers=1)
    return create_recipe(name, classes=2, images_per_class=2, image_size=64, workers=1, points=2000)


def hashes(root) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(root.rglob("*.*"))}


def test_the_new_recipes_are_registered_and_their_levers_are_off_in_the_published_ones():
    assert set(NEW_RECIPES) <= set(list_recipes())
    for name in ("fractal", "glyphs", "visualatom", "fractal-ours"):
        fc = create_recipe(name).fractal
        assert (fc.perturb_delta, fc.instances, fc.point_augment.background in ("black", "diamond_square")) == (0.0, 0, True)
    assert create_recipe("fractal-perturbed-0.1").fractal.perturb_delta == 0.1
    assert create_recipe("fractal-color").fractal.instances == 5
    fill = create_recipe("fractal-color-fill").fractal
    assert (fill.instances, fill.instance_size_min, fill.instance_size_max) == (2, 0.5, 1.5)
    white = create_recipe("fractal-fill").fractal  # the same framing, fractal's colour and background
    assert dataclasses.replace(white, instance_color="random_hue", point_augment=fill.point_augment) == fill
    assert (white.instance_color, white.point_augment.background) == ("white", "black")


def test_an_instance_up_to_the_frame_stays_inside_it_and_a_larger_one_covers_it():
    """frame_view: size <= 1 keeps the instance's box inside the frame [-w, w]^2 (the draws of sizes
    up to 1 are unchanged by allowing more); size > 1 keeps the frame inside the box, no empty margin."""
    from submission.families.fractal.instances import frame_view

    cloud = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    for size in (0.15, 0.6, 1.0, 1.5, 4.0):
        for seed in range(20):
            view = frame_view(cloud, size, 2.0, np.random.default_rng(seed))
            lo, hi = view[:, :2].min(axis=0), view[:, :2].max(axis=0)
            assert np.isclose((hi - lo).max(), size * 4.0, rtol=1e-5)
            if size <= 1:
                assert np.all(lo >= -2.0 - 1e-5) and np.all(hi <= 2.0 + 1e-5), (size, seed)
            else:  # the box's shorter side may fall short of the frame; its longer side covers it
                long_axis = int(np.argmax(hi - lo))
                assert lo[long_axis] <= -2.0 + 1e-5 and hi[long_axis] >= 2.0 - 1e-5, (size, seed)


def test_a_lever_left_off_is_not_part_of_the_content_identity():
    """Configs written before the levers existed keep their resume and cache identity."""
    content = GenerationConfig().content_dict()["fractal"]
    assert not {"perturb_delta", "instances", "instance_color"} & set(content)
    assert create_recipe("fractal-perturbed-0.1").content_dict()["fractal"]["perturb_delta"] == 0.1
    assert create_recipe("fractal-color").content_dict()["fractal"]["instance_color"] == "random_hue"


def test_a_perturbation_moves_every_used_parameter_by_at_most_delta_and_leaves_unused_maps_zero():
    maps = np.zeros((7, 3, 4))
    maps[:3] = np.random.default_rng(0).uniform(-1, 1, (3, 3, 4))
    moved = perturbed_maps(maps, 0.05, np.random.default_rng(1))
    assert np.all(moved[3:] == 0) and 0 < np.abs(moved[:3] - maps[:3]).max() <= 0.05
    assert np.all(moved[:3] != maps[:3])


def test_perturbed_clouds_differ_per_image_and_do_not_depend_on_the_batch():
    bank = build_bank(1, seed=0, points=500, normalization="global_minmax_mean")
    base = bank.point_cloud(0)
    tally = {}
    together = perturbed_clouds(0, 0, [0, 1, 2], bank.maps[0], 0.1, 500, "global_minmax_mean", base, tally)
    alone = perturbed_clouds(0, 0, [2], bank.maps[0], 0.1, 500, "global_minmax_mean", base)
    assert np.array_equal(together[2], alone[0])
    assert not np.array_equal(together[0], together[1]) and not np.array_equal(together[0], base)
    assert tally["accepted"] + tally["fallback"] == 3
    assert perturbed_clouds(0, 0, [0], bank.maps[0], 1e-12, 500, "global_minmax_mean", base)[0].shape == base.shape


def test_mix_classes_are_split_by_largest_remainder():
    assert class_counts([0.5, 0.5], 1000) == [500, 500]
    assert class_counts([0.3, 0.3, 0.4], 10) == [3, 3, 4]
    assert class_counts([1 / 3, 1 / 3, 1 / 3], 10) == [4, 3, 3]
    parts = components(create_recipe("mix-fractal-glyphs", classes=5))
    assert [(p.recipe, p.first_class, p.config.classes) for p in parts] == [("fractal", 0, 3), ("glyphs", 3, 2)]
    assert parts[0].config.seed != parts[1].config.seed  # each component draws from its own derived seed


@pytest.mark.parametrize("recipes, message", [
    ("fractal:0.5,glyphs:0.4", "sum to 1"),
    ("fractal:0.5,fractal:0.5", "twice"),
    ("fractal", "NAME:SHARE"),
    ("fractal:-1,glyphs:2", "(0, 1]"),
])
def test_bad_mix_recipes_fail_when_the_config_is_built(recipes, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("]", r"\]")):
        MixConfig(recipes=recipes)


def bad_config_files(tmp_path):
    """name -> a config JSON that must be refused, each with one wrong field."""
    mix = json.loads(create_recipe("mix-fractal-glyphs", classes=4, images_per_class=1).to_json())
    fractal = json.loads(create_recipe("fractal", classes=2, images_per_class=1).to_json())
    cases = {
        "negative delta": ({**fractal, "fractal": {**fractal["fractal"], "perturb_delta": -0.1}}, "perturb_delta"),
        "instance too large": ({**fractal, "fractal": {**fractal["fractal"], "instances": 2, "instance_size_max": 5}},
                               "instance_size_max <= 4"),
        "instance sizes reversed": ({**fractal, "fractal": {**fractal["fractal"], "instances": 2,
                                                          "instance_size_min": 0.9, "instance_size_max": 0.5}},
                                    "got 0.9..0.5"),
        "shares": ({**mix, "mix": {**mix["mix"], "recipes": "fractal:0.7,glyphs:0.7"}}, "sum to 1"),
        "unknown recipe": ({**mix, "mix": {**mix["mix"], "recipes": "fractal:0.5,nosuch:0.5"}}, "unknown recipe 'nosuch'"),
        "sizes": ({**mix, "image_size": 1024}, "cannot be reconciled"),
        "mix of a mix": ({**mix, "mix": {**mix["mix"], "recipes": "fractal:0.5,mix-fractal-glyphs:0.5"}}, "itself a mix"),
        "too few classes": ({**mix, "classes": 1}, "less than one class"),
    }
    files = {}
    for name, (data, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.json"
        path.write_text(json.dumps(data))
        files[name] = (path, message)
    return files


def test_bad_inputs_end_in_one_error_line_and_exit_2_before_any_folder_is_written(tmp_path):
    for name, (path, message) in bad_config_files(tmp_path).items():
        out = tmp_path / f"out_{path.stem}"
        result = run_cli("generate", "--config", path, out)
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (name, lines)
        assert not out.exists(), name


def test_a_mix_whose_family_is_not_installed_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import submission.families as families

    monkeypatch.delitem(families.FAMILIES, "glyphs")
    with pytest.raises(UserError, match="unknown data family 'glyphs'"):
        generate(tmp_path / "out", create_recipe("mix-fractal-glyphs", classes=2, images_per_class=1), progress=False)
    assert not (tmp_path / "out").exists()


def test_a_mix_of_classes_writes_each_component_recipes_own_images(tmp_path):
    """Mode "classes": mix class 1 is the second recipe's class 0, drawn with the component's derived
    seed, byte for byte what that recipe writes (equal sizes: no resize; both recipes write RGB)."""
    mix = create_recipe("mix-fractal-glyphs", classes=2, images_per_class=2, image_size=224, workers=1)
    mix = mix.replace(mix=dataclasses.replace(mix.mix, recipes="fractal-ours:0.5,visualatom-224:0.5"))
    parts = components(mix)
    out = generate(tmp_path / "mix", mix, progress=False)
    alone = generate(tmp_path / "alone", parts[1].config.replace(classes=1), progress=False)
    assert (out / "00001" / "00001_00001.png").read_bytes() != b""
    import cv2
    mixed = cv2.imread(str(out / "00001" / "00001_00001.png"))
    own = cv2.imread(str(alone / "00000" / "00000_00001.png"))
    assert np.array_equal(mixed, own)


# Computed when the recipes were added (issue 29). fractal-perturbed-0.1's 00001_00000 equals
# test_pinned_bytes' fractal_default_64px image: at 2000 points every draw of that image failed the
# filter and it shows the class's own cloud (the documented fallback).
PINNED = {
    "fractal-perturbed-0.05": {
        "00000/00000_00000.png": "a46100c4e5673cd2",
        "00000/00000_00001.png": "51139048b7b23614",
        "00001/00001_00000.png": "c7c5d3b9aa962caf",
        "00001/00001_00001.png": "2d5500413852d10a"
    },
    "fractal-perturbed-0.1": {
        "00000/00000_00000.png": "1841dc15307ddfdd",
        "00000/00000_00001.png": "6ea77ba54bfbb7be",
        "00001/00001_00000.png": "d6968e6137a69777",
        "00001/00001_00001.png": "0a98979eadceb4cf"
    },
    "fractal-color": {
        "00000/00000_00000.png": "f222eac89a76a3c1",
        "00000/00000_00001.png": "2b79cffc35eb9f90",
        "00001/00001_00000.png": "ba9a99ba98aec117",
        "00001/00001_00001.png": "a60a2dc8502b9002"
    },
    "fractal-color-fill": {  # added after the first sanity table: fractal-color framed to fill the crop
        "00000/00000_00000.png": "c68e6d5741562a14",
        "00000/00000_00001.png": "8d6c4f85ea3dba28",
        "00001/00001_00000.png": "36a67859ee4510a7",
        "00001/00001_00001.png": "235eb24e0d4464d7"
    },
    "fractal-fill": {  # fractal-color-fill's framing in fractal's white over black
        "00000/00000_00000.png": "c67dbfa6efffb1d0",
        "00000/00000_00001.png": "5f91474cdd4c8023",
        "00001/00001_00000.png": "2d82aaf841c8f2f8",
        "00001/00001_00001.png": "ea6d4cd06b8cf762"
    },
    "mix-fractal-glyphs": {
        "00000/00000_00000.png": "273619252cc39045",
        "00000/00000_00001.png": "57717562c82c166d",
        "00001/00001_00000.png": "b991d6e284793cd4",
        "00001/00001_00001.png": "ecf8ee0aa99581f3"
    },
    "mix-blend-fractal-glyphs": {
        "00000/00000_00000.png": "b658d4dc7b951ba5",
        "00000/00000_00001.png": "8bc7adcddbc564ca",
        "00001/00001_00000.png": "1047af2d2e900330",
        "00001/00001_00001.png": "4a0c55a1781e7cbb"
    }
}


@pytest.mark.parametrize("name", FRACTAL_RECIPES)
def test_new_fractal_recipes_are_byte_deterministic_and_pinned(name, tmp_path):
    first = hashes(generate(tmp_path / "a", tiny(name), progress=False))
    assert first == hashes(generate(tmp_path / "b", tiny(name).replace(batch_size=1), progress=False))
    assert first == PINNED[name]


@needs_all_fonts
@pytest.mark.parametrize("name", MIX_RECIPES)
def test_mix_recipes_are_byte_deterministic_and_pinned(name, tmp_path):
    first = hashes(generate(tmp_path / "a", tiny(name), progress=False))
    assert first == hashes(generate(tmp_path / "b", tiny(name).replace(batch_size=1), progress=False))
    assert first == PINNED[name]


@pytest.mark.slow
@needs_all_fonts
@pytest.mark.parametrize("name", ["fractal-perturbed-0.1", "mix-fractal-glyphs"])
def test_an_interrupted_run_of_a_new_recipe_resumes_to_the_same_bytes(name, tmp_path):
    """Half the classes (shard 0/2, as a run killed midway leaves its state), one image lost, then the
    whole config: the tree equals a run in one go (a mix keeps its components' state, e.g. the bank)."""
    config = tiny(name).replace(classes=4)
    reference = hashes(generate(tmp_path / "ref", config, progress=False))
    out = tmp_path / "resumed"
    generate(out, config.replace(shard_index=0, shard_count=2), progress=False)
    (out / "00002" / "00002_00001.png").unlink()
    generate(out, config, progress=False)
    assert hashes(out) == reference
