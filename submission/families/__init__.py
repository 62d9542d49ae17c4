"""Data families behind one registry: a family is the one part that turns (seed, class, image
index) into an image. Config, pipeline, writer, resume, sharding, byte-determinism, pack, rehearse
and verify serve every family unchanged.

    family = create_family("fractal")      # an unknown name raises, listing the known ones

Modules load lazily (this file imports nothing heavy), so the config layer can validate names.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict

from ..errors import UserError

# name -> "module:class"
FAMILIES: Dict[str, str] = {
    "fractal": "submission.families.fractal.family:FractalFamily",
    "glyphs": "submission.families.glyphs.family:GlyphFamily",
    "visualatom": "submission.families.visualatom.family:VisualAtomFamily",
}
FAMILY_NAMES = tuple(FAMILIES)


def create_family(name: str) -> Any:
    """The `families.base.Family` registered as `name` (typed loosely: this module stays a leaf that
    the config layer can import, with no arrow back to the plan and config)."""
    if name not in FAMILIES:
        raise UserError(f"unknown data family {name!r}; known families: {', '.join(FAMILY_NAMES)}")
    module_name, class_name = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


__all__ = ["FAMILIES", "FAMILY_NAMES", "create_family"]
