"""The published recipes, exactly (issue 18): `fractal-4th` sets every quirk of the 4th place's best
entry (exp 009) and nothing else; it generates the same bytes with any worker count and packs (its
images' statistics against theirs are test_recipe_statistics.py's). The per-field
behaviour is tested beside each field (test_fractal.py, test_augment.py); the server-stack rehearsal
of every recipe is test_server_stack.py's."""
from __future__ import annotations

import hashlib
from pathlib import Path

from submission import GenerationConfig, generate
from submission.recipes import create_recipe, describe_recipe

from .test_pack import assert_dataset, cli
from .test_variants import changed_fields

FRACTAL_4TH_FIELDS = {
    "image_size": 384,
    "channel_order": "bgr",
    "fractal.normalization": "global_minmax_mean",
    "fractal.point_augment.scale_shift_p": 0.5,
    "fractal.point_augment.isotropic_scale": True,
    "fractal.point_augment.scale_shift_first": True,
    "image_augment.affine_kind": "shift_scale_rotate",
    "image_augment.affine_border": "reflect101",
    "image_augment.hsv_grey_tint": True,
}


def dotted(config: GenerationConfig, name: str):
    value = config
    for part in name.split("."):
        value = getattr(value, part)
    return value


def tree_hashes(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png"))}


def test_fractal_4th_changes_exactly_the_published_quirks():
    config = create_recipe("fractal-4th")
    assert config == GenerationConfig()  # the contest default since the switch
    assert changed_fields(config, create_recipe("fractal-ours")) == set(FRACTAL_4TH_FIELDS)
    assert {name: dotted(config, name) for name in FRACTAL_4TH_FIELDS} == FRACTAL_4TH_FIELDS
    assert config.image_augment.distortion_p == 0 and config.image_augment.hsv_p == 0.5  # exp 009: HSV, no distortion
    assert GenerationConfig.from_json(config.to_json()) == config  # what pack ships and the server reads
    assert "1157.03" in describe_recipe("fractal-4th")


def test_fractal_4th_bytes_do_not_depend_on_workers(tmp_path):
    config = create_recipe("fractal-4th", classes=2, images_per_class=2, device="cpu")
    one = generate(tmp_path / "one", config.replace(workers=1), progress=False)
    two = generate(tmp_path / "two", config.replace(workers=2, batch_size=1), progress=False)
    hashes = tree_hashes(one)
    assert len(hashes) == 4 and hashes == tree_hashes(two)
    assert_dataset(one, classes=2, images_per_class=2, size=384)


def test_fractal_4th_runs_on_a_bank_of_its_normalisation(tmp_path):
    from submission.families import create_family
    from submission.families.fractal.bank import CategoryBank
    from submission.plan import RunPlan
    config = create_recipe("fractal-4th", classes=2, images_per_class=1, device="cpu", workers=1)
    family = create_family("fractal")
    assert family.prepare(RunPlan.resolve(config), categories=2).asset.normalization == "global_minmax_mean"
    plan = RunPlan.resolve(config, output_dir=tmp_path / "out")
    plan.state_dir.mkdir(parents=True)
    plan = family.prepare(plan)
    assert CategoryBank.load(plan.asset).normalization == "global_minmax_mean"


# Its images' statistics against theirs (the tint, the swap, the cloud extent): test_recipe_statistics.py.


def test_fractal_4th_packs_and_rehearses(tmp_path):
    packed = tmp_path / "fractal-4th.zip"
    result = cli("pack", str(packed), "--recipe", "fractal-4th", "--classes", "2", "--images-per-class", "2",
                 "--image-size", "64", "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "dataset"
    result = cli("rehearse", str(packed), str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_dataset(out, classes=2, images_per_class=2, size=64)


# --- the calibration variants (fractal-aug-*, fractal-pc-*) are fractal-4th + one experiment -------
# (which fields each changes: test_variants.py); they generate the same bytes at any batch size.

def test_calibration_variants_of_fractal_4th_generate_deterministically(tmp_path):
    for name in ("fractal-aug-cutout", "fractal-aug-distortion", "fractal-pc-pointwolf"):
        config = create_recipe(name, classes=1, images_per_class=2, image_size=64, device="cpu", workers=1)
        assert config.image_augment.affine_kind == "shift_scale_rotate" and config.channel_order == "bgr"  # 4th's
        first = tree_hashes(generate(tmp_path / name / "a", config, progress=False))
        again = tree_hashes(generate(tmp_path / name / "b", config.replace(batch_size=1), progress=False))
        assert len(first) == 2 and first == again
