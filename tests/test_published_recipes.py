"""The published recipes, exactly (issue 18): `fractal-4th` sets every quirk of the 4th place's best
entry (exp 009) and nothing else; it generates the same bytes with any worker count, packs, and its
images show what theirs show (a faint tint on a quarter of them, stored blue-leaning). The per-field
behaviour is tested beside each field (test_fractal.py, test_augment.py); the server-stack rehearsal
of every recipe is test_server_stack.py's."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

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
    assert changed_fields(config) == set(FRACTAL_4TH_FIELDS)
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


def coloured_fraction(image: np.ndarray) -> float:
    return float((np.ptp(image.astype(int), axis=2) > 4).mean())


def test_fractal_4th_images_carry_their_tint_stored_blue_leaning(tmp_path):
    """docs/published-recipes.md 5.2: 24.5% of their exp-009 images have more than 1% coloured
    pixels (HSV p 0.5 x a positive saturation shift 0.5), and R - B over coloured pixels is -11 (the
    red-leaning tint written with red and blue swapped). `fractal-ours` has no colour at all."""
    config = create_recipe("fractal-4th", classes=16, images_per_class=4, image_size=96, workers=1, device="cpu")
    root = generate(tmp_path / "4th", config, progress=False)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(root.rglob("*.png"))]
    tinted = [im for im in images if coloured_fraction(im) > 0.01]
    assert len(images) == 64 and 5 <= len(tinted) <= 29  # 0.25 x 64 = 16, a 99.9% binomial band
    pixels = np.concatenate([im.reshape(-1, 3)[np.ptp(im.reshape(-1, 3).astype(int), axis=1) > 4] for im in tinted])
    assert pixels[:, 0].astype(int).mean() - pixels[:, 2].astype(int).mean() < -3
    plain = generate(tmp_path / "ours", config.replace(channel_order="rgb", image_augment=create_recipe(
        "fractal-ours").image_augment), progress=False)
    assert all(coloured_fraction(np.asarray(Image.open(p).convert("RGB"))) == 0 for p in plain.rglob("*.png"))


def test_fractal_4th_packs_and_rehearses(tmp_path):
    packed = tmp_path / "fractal-4th.zip"
    result = cli("pack", str(packed), "--recipe", "fractal-4th", "--classes", "2", "--images-per-class", "2",
                 "--image-size", "64", "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "dataset"
    result = cli("rehearse", str(packed), str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_dataset(out, classes=2, images_per_class=2, size=64)


# --- fractal-4th-*: the best entry plus one published experiment's certain changes ----------------

NO_IMAGE_AUGMENT = {f"image_augment.{name}" for name in ("transpose_p", "hflip_p", "vflip_p", "affine_p",
                                                         "brightness_contrast_p", "hsv_p")}
FRACTAL_4TH_VARIANTS = {
    "fractal-4th-aug-none": NO_IMAGE_AUGMENT,
    "fractal-4th-aug-flips-ssr-bc": {"image_augment.hsv_p"},
    "fractal-4th-aug-trivialaugment": NO_IMAGE_AUGMENT | {"image_augment.trivialaugment_p"},
    "fractal-4th-pc-base": {"fractal.point_augment.subsample"},
    "fractal-4th-pc-50k": {"fractal.point_augment.subsample", "fractal.points"},
}


def changed_from(config: GenerationConfig, base: GenerationConfig) -> set:
    def changed(ours: dict, other: dict, prefix: str) -> set:
        out = set()
        for key, value in ours.items():
            if isinstance(value, dict):
                out |= changed(value, other[key], f"{prefix}{key}.")
            elif value != other[key]:
                out.add(prefix + key)
        return out

    return changed(config.to_dict(), base.to_dict(), "")


def test_fractal_4th_variants_change_only_their_experiment():
    from submission.recipes import list_recipes
    base = create_recipe("fractal-4th")
    assert {n for n in list_recipes() if n.startswith("fractal-4th-")} == set(FRACTAL_4TH_VARIANTS)
    assert {n: changed_from(create_recipe(n), base) for n in FRACTAL_4TH_VARIANTS} == FRACTAL_4TH_VARIANTS
    assert create_recipe("fractal-4th-pc-50k").fractal.points == 50_000
    assert not create_recipe("fractal-4th-aug-none").image_augment.enabled
    for name in FRACTAL_4TH_VARIANTS:
        assert GenerationConfig.from_json(create_recipe(name).to_json()) == create_recipe(name)


def test_fractal_4th_variants_generate_deterministically(tmp_path):
    for name in ("fractal-4th-aug-none", "fractal-4th-aug-trivialaugment", "fractal-4th-pc-base"):
        config = create_recipe(name, classes=1, images_per_class=2, image_size=64, device="cpu", workers=1)
        first = tree_hashes(generate(tmp_path / name / "a", config, progress=False))
        again = tree_hashes(generate(tmp_path / name / "b", config.replace(batch_size=1), progress=False))
        assert len(first) == 2 and first == again
