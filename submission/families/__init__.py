"""Data families behind one registry: a family is the one part that turns (seed, class, image
index) into an image. Config, pipeline, writer, resume, sharding, byte-determinism, pack, rehearse
and verify serve every family unchanged.

Each family is a package `submission/families/<name>/` holding everything it needs: a frozen
settings class (`config.py`), nested in `GenerationConfig` under the family's name, and the
`families.base.Family` that renders (`family.py`). Adding a family is one package and one line here.

    family = create_family("fractal")      # an unknown name raises, listing the known ones

Modules load lazily by name (this file imports no family), so the config layer can read the
settings classes without loading any renderer.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from ..errors import UserError

# name -> ("module:settings class", "module:Family class")
FAMILIES: Dict[str, Tuple[str, str]] = {
    "fractal": ("submission.families.fractal.config:FractalConfig", "submission.families.fractal.family:FractalFamily"),
    "glyphs": ("submission.families.glyphs.config:GlyphConfig", "submission.families.glyphs.family:GlyphFamily"),
    "visualatom": ("submission.families.visualatom.config:VisualAtomConfig",
                   "submission.families.visualatom.family:VisualAtomFamily"),
    "mix": ("submission.families.mix.config:MixConfig", "submission.families.mix.family:MixFamily"),
}
FAMILY_NAMES = tuple(FAMILIES)


def _load(path: str) -> Any:
    module_name, name = path.split(":")
    return getattr(importlib.import_module(module_name), name)


def family_config_classes() -> Dict[str, type]:
    """name -> the family's frozen settings class (a dataclass whose defaults are the family's recipe)."""
    return {name: _load(config_path) for name, (config_path, _) in FAMILIES.items()}


def create_family(name: str) -> Any:
    """The `families.base.Family` registered as `name` (typed loosely: this module stays a leaf that
    the config layer can import, with no arrow back to the plan and config)."""
    if name not in FAMILIES:
        raise UserError(f"unknown data family {name!r}; known families: {', '.join(FAMILY_NAMES)}")
    return _load(FAMILIES[name][1])()


__all__ = ["FAMILIES", "FAMILY_NAMES", "create_family", "family_config_classes"]
