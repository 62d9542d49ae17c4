"""A mix's components: each named recipe's config as the mix draws it (see config.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import numpy as np

from ...config import GenerationConfig
from ...errors import UserError
from ...seeding import STREAM_MIX, int_seed
from .config import MAX_UPSCALE, parse_recipes


@dataclass(frozen=True)
class Component:
    index: int
    recipe: str
    share: float
    config: GenerationConfig  # the recipe's config with the mix's class count, images per class and derived seed
    first_class: int  # mode "classes": mix classes first_class .. first_class + config.classes - 1


def class_counts(shares: Sequence[float], classes: int) -> List[int]:
    """Classes per component: floor(share x classes), the remainder to the largest fractions (ties: first)."""
    exact = [share * classes for share in shares]
    counts = [int(np.floor(value + 1e-9)) for value in exact]
    order = sorted(range(len(shares)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[:classes - sum(counts)]:
        counts[k] += 1
    return counts


def components(config: Any, with_params: bool = False) -> List[Component]:
    """The components of `config` (a mix `GenerationConfig`); every problem is a one-line `UserError`.
    `with_params`: point each at its packed files under mix.params_dir (the family's `from_params`)."""
    from ...recipes import create_recipe  # here: recipes imports the config layer

    mix = config.mix
    parts = parse_recipes(mix.recipes)
    counts = class_counts([share for _, share in parts], config.classes) if mix.mode == "classes" else \
        [config.classes] * len(parts)
    result, first = [], 0
    for k, ((name, share), count) in enumerate(zip(parts, counts)):
        base = create_recipe(name)
        if base.family == "mix":
            raise UserError(f"mix.recipes names {name!r}, itself a mix; name its recipes instead")
        if count < 1:
            raise UserError(f"mix.recipes gives {name!r} a share of {share:g} of {config.classes} classes, "
                            "less than one class; raise --classes or its share")
        if config.image_size > base.image_size * MAX_UPSCALE:
            raise UserError(f"mix image_size {config.image_size} cannot be reconciled with the {base.image_size} px images "
                            f"of {name!r}: that enlarges them more than {MAX_UPSCALE:g}x; use --image-size "
                            f"{int(base.image_size * MAX_UPSCALE)} or less")
        part = base.replace(classes=count, images_per_class=config.images_per_class,
                            seed=int_seed(config.seed, STREAM_MIX, k), shard_index=0, shard_count=1,
                            device=config.device, workers=config.workers)
        if with_params and mix.params_dir is not None:  # on the server: the component's packed files
            from .. import create_family

            part = create_family(part.family).from_params(part, Path(mix.params_dir) / component_dirname(k))
        result.append(Component(index=k, recipe=name, share=share, config=part, first_class=first))
        first += count if mix.mode == "classes" else 0
    return result


def component_dirname(index: int) -> str:
    """The folder of component `index`'s files: in params/ (pack) and in the state folder (a run)."""
    return f"component{index}"


def locate(parts: Sequence[Component], category: int) -> Tuple[Component, int]:
    """Mode "classes": the component that draws mix class `category`, and its class there."""
    for part in parts:
        if part.first_class <= category < part.first_class + part.config.classes:
            return part, category - part.first_class
    raise ValueError(f"class {category} is outside the mix's {sum(p.config.classes for p in parts)} classes")
