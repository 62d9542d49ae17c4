"""The layout is the architecture: the generic core knows no family, and every family is one
package behind one registry (checked on the source with `ast`, nothing imported)."""
from __future__ import annotations

import pytest

from .import_graph import PACKAGE, REPO, module_name, package_modules, submission_imports

# The generic core: what every family shares. It may reach the families only through the registry
# (`submission.families`, names as strings) and the interface they implement (`families.base`).
CORE = ("config", "config_json", "image_augment_config", "plan", "pipeline", "writer", "state", "fileio", "paths",
        "seeding", "layout")
ALLOWED_FAMILY_MODULES = {"submission.families", "submission.families.base"}


def family_modules_imported_by(name: str) -> set:
    path = PACKAGE / f"{name}.py"
    return {m for m in submission_imports(path) if m.startswith("submission.families")} - ALLOWED_FAMILY_MODULES


@pytest.mark.parametrize("name", CORE)
def test_core_module_imports_no_family(name):
    assert family_modules_imported_by(name) == set()


def test_the_import_check_sees_a_family_import(tmp_path, monkeypatch):
    """The check above can fail: a core module that imports a family module is caught, whether
    the import is relative, absolute or a string handed to importlib."""
    import tests.import_graph as graph

    fake_package = tmp_path / "submission"
    fake_package.mkdir()
    for source in ("from .families.fractal.bank import CategoryBank\n",
                   "import submission.families.glyphs.family\n",
                   "MODULE = 'submission.families.visualatom.family:VisualAtomFamily'\n"):
        (fake_package / "plan.py").write_text(source)
        monkeypatch.setattr(graph, "REPO", tmp_path)
        monkeypatch.setattr(graph, "PACKAGE", fake_package)
        assert graph.submission_imports(fake_package / "plan.py") & {
            "submission.families.fractal.bank", "submission.families.glyphs.family",
            "submission.families.visualatom.family"}, source


def test_each_registered_family_is_one_package_with_a_settings_class_nested_under_its_name():
    from submission.config import GenerationConfig
    from submission.families import FAMILIES, family_config_classes

    classes = family_config_classes()
    for name, (config_path, family_path) in FAMILIES.items():
        for path in (config_path, family_path):
            assert path.split(":")[0].startswith(f"submission.families.{name}."), path
        assert (PACKAGE / "families" / name / "__init__.py").is_file()
        assert isinstance(getattr(GenerationConfig(), name), classes[name])
    # Every module under families/ belongs to one registered family (or is the shared interface).
    for module in package_modules():
        if module.startswith("submission.families."):
            assert module == "submission.families.base" or module.split(".")[2] in FAMILIES, module


def test_a_family_package_imports_no_other_family():
    from submission.families import FAMILIES

    for name in FAMILIES:
        for path in (PACKAGE / "families" / name).rglob("*.py"):
            others = {m.split(".")[2] for m in submission_imports(path)
                      if m.startswith("submission.families.") and m != "submission.families.base"}
            assert others <= {name}, (module_name(path), others)


def test_no_module_imports_the_old_flat_fractal_modules():
    for old in ("fractal", "pointcloud", "backgrounds", "render", "family_config"):
        assert not (PACKAGE / f"{old}.py").exists() and not (PACKAGE / old).is_dir(), old
    assert REPO.joinpath("submission/families/glyphs/glyph_table.json").is_file()
