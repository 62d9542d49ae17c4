"""The recipe registry (timm-style factories) and the family registry behind it."""
import pytest

from submission import GenerationConfig
from submission.errors import UserError
from submission.families import FAMILY_NAMES, create_family
from submission.recipes import create_recipe, describe_recipe, list_recipes

from .conftest import run_cli


def test_default_recipe_is_the_contest_config():
    assert "fractal" in list_recipes()
    assert create_recipe("fractal") == GenerationConfig()
    assert create_recipe("fractal", classes=3, seed=None) == GenerationConfig(classes=3)
    assert describe_recipe("fractal")


# issue 18: the default names are the exact published recipes; the old names' configs live on as ours
EXACT = {"fractal": "fractal-4th", "glyphs": "glyphs-3rd", "visualatom": "visualatom-paper"}
OURS = {"fractal": ("fractal-ours", 224), "glyphs": ("glyphs-ours", 256), "visualatom": ("visualatom-224", 224)}


def test_default_names_are_the_exact_published_recipes():
    assert create_recipe("fractal") == GenerationConfig() == create_recipe("fractal-4th")
    for name, exact in EXACT.items():
        assert create_recipe(name) == create_recipe(exact), name
        assert describe_recipe(exact).startswith(f"same as {name}"), exact
    assert "1157.03" in describe_recipe("fractal") and "384 px" in describe_recipe("fractal")
    for name, (ours, size) in OURS.items():
        config = create_recipe(ours)
        assert config != create_recipe(name) and config.family == name and config.image_size == size, ours
        assert config.channel_order == "rgb" and "before the switch" in describe_recipe(ours), ours


def test_another_family_without_a_recipe_keeps_the_shared_defaults(tmp_path):
    """`GenerationConfig(family=...)` has no per-family defaults: it keeps the shared ones (the fractal
    recipe's 384 px, red/blue swap and image augmentation) and the family's own settings' defaults."""
    from PIL import Image

    from submission import generate

    config = GenerationConfig(family="visualatom", classes=1, images_per_class=2, workers=1)
    assert (config.image_size, config.channel_order, config.image_augment) == (384, "bgr", GenerationConfig().image_augment)
    assert config.visualatom == create_recipe("visualatom").visualatom
    assert GenerationConfig(family="glyphs").glyphs == create_recipe("glyphs-ours").glyphs  # GlyphConfig defaults: ours
    root = generate(tmp_path / "atoms", config, progress=False)
    sizes = [Image.open(p).size for p in sorted(root.rglob("*.png"))]
    assert sizes == [(384, 384)] * 2


def test_unknown_recipe_and_family_list_the_known_ones():
    with pytest.raises(UserError, match="unknown recipe 'nope'; known recipes: .*fractal"):
        create_recipe("nope")
    with pytest.raises(UserError, match="unknown data family 'nope'; known families: fractal"):
        create_family("nope")
    with pytest.raises(UserError, match="unknown data family"):
        GenerationConfig(family="nope")
    assert "fractal" in FAMILY_NAMES


def test_cli_lists_recipes_and_refuses_an_unknown_one(tmp_path):
    listed = run_cli("recipes")
    assert listed.returncode == 0 and "fractal" in listed.stdout
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert lines["fractal"].endswith("[family fractal, 384 px]") and lines["fractal-ours"].endswith("224 px]")
    assert lines["visualatom"].endswith("512 px]") and lines["glyphs"].endswith("[family glyphs, 256 px]")
    result = run_cli("generate", tmp_path / "out", "--recipe", "nope", "--classes", "1")
    assert result.returncode == 2 and result.stderr.startswith("error: unknown recipe 'nope'")
    assert not (tmp_path / "out").exists()
    both = run_cli("generate", tmp_path / "out", "--recipe", "fractal", "--config", "x.json")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
