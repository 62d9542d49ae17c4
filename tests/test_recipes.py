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
    result = run_cli("generate", tmp_path / "out", "--recipe", "nope", "--classes", "1")
    assert result.returncode == 2 and result.stderr.startswith("error: unknown recipe 'nope'")
    assert not (tmp_path / "out").exists()
    both = run_cli("generate", tmp_path / "out", "--recipe", "fractal", "--config", "x.json")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
