"""`MixConfig`: the mix family's settings, nested in `GenerationConfig` as `mix`.

A mix names other recipes with shares, "NAME:SHARE,NAME:SHARE" (shares sum to 1), so any recipe of
any family, present or future, mixes without code:

  mode "classes": class c of the mix is a class of one component; component k holds a share_k part
                  of the classes (largest remainder), in the order given (classes 0..n_0-1 are the
                  first recipe's classes 0..n_0-1, and so on).
  mode "blend":   every component draws every class; image j of class c is the convex mix
                  sum_k share_k x (component k's image j of class c), as the 3rd place mixes the
                  channels of their glyph layers.

Each component's image is exactly what its recipe writes (its family's drawing, its baked image
augmentation, its channel order on disk), drawn at the recipe's own image_size from a seed derived
from the mix's (seed, component), then resized to the mix's image_size: OpenCV INTER_AREA to
shrink, INTER_CUBIC to enlarge, at most `MAX_UPSCALE` times (a larger enlargement is refused: the
sizes cannot be reconciled without inventing detail).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ...errors import UserError
from ...limits import _short, need

MODES = ("classes", "blend")
MAX_UPSCALE = 2.0
MAX_COMPONENTS = 16
SHARE_TOLERANCE = 1e-6


def parse_recipes(text: Any) -> List[Tuple[str, float]]:
    """"NAME:SHARE,NAME:SHARE" -> [(name, share)], checked: names given once, shares in (0, 1] summing to 1."""
    need(isinstance(text, str) and text.strip() != "",
         f"mix.recipes must be a string like 'fractal:0.5,glyphs:0.5', got {_short(text)}")
    parts: List[Tuple[str, float]] = []
    for item in text.split(","):
        name, sep, share_text = item.strip().rpartition(":")
        need(sep == ":" and name.strip() != "", f"mix.recipes item {_short(item.strip())} must be NAME:SHARE "
                                                "(e.g. 'fractal:0.5,glyphs:0.5')")
        try:
            share = float(share_text)
        except ValueError:
            raise UserError(f"mix.recipes share {_short(share_text)} of {name.strip()!r} is not a number") from None
        need(math.isfinite(share) and 0 < share <= 1, f"mix.recipes share of {name.strip()!r} must be in (0, 1], "
                                                       f"got {_short(share_text)}")
        parts.append((name.strip(), share))
    names = [name for name, _ in parts]
    need(len(set(names)) == len(names), f"mix.recipes names a recipe twice ({names}); give each once with its share")
    need(len(parts) <= MAX_COMPONENTS, f"mix.recipes holds {len(parts)} recipes, at most {MAX_COMPONENTS}")
    total = sum(share for _, share in parts)
    need(abs(total - 1) <= SHARE_TOLERANCE, f"mix.recipes shares must sum to 1, got {total:g} ({text}); "
                                             "e.g. 'fractal:0.5,glyphs:0.5'")
    return parts


@dataclass(frozen=True)
class MixConfig:
    """The mix family (see the module docstring)."""

    recipes: str = "fractal:0.5,glyphs:0.5"  # NAME:SHARE,... (shares sum to 1)
    mode: str = "classes"  # "classes" or "blend"
    # Where the components' packed files are (params/component<k>/); set on the server by
    # `from_params`, null in a packed config. Execution only: not part of the content.
    params_dir: Optional[str] = None

    def __post_init__(self) -> None:
        parse_recipes(self.recipes)
        need(self.mode in MODES, f"unknown mix.mode {_short(self.mode)}; choose one of {list(MODES)}")
        need(self.params_dir is None or (isinstance(self.params_dir, str) and self.params_dir != ""),
             f"mix.params_dir must be a path or null, got {_short(self.params_dir)}")

    def content_dict(self) -> Dict[str, Any]:
        """The mix's settings and each named recipe's content as the code defines it now, so a change
        of a component recipe is a change of the mix (the resume and cache identity)."""
        from ...recipes import create_recipe  # here, not at the top: recipes imports the config layer

        data = dataclasses.asdict(self)
        data.pop("params_dir")
        data["components"] = {name: create_recipe(name).content_dict() for name, _ in parse_recipes(self.recipes)}
        return data

    def check_with(self, config: Any) -> None:
        """The components resolve (known recipes, not mixes, enough classes, sizes that reconcile)."""
        from .components import components

        components(config)
