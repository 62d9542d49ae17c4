"""Reading a config from JSON: keys and JSON types checked against the dataclass fields before
anything is built (nested settings included), and the flat layout from before families were
nested moved under each family's name."""
from __future__ import annotations

import dataclasses
import sys
from typing import Any, Dict

from .errors import UserError
from .limits import _short


def nest_legacy_keys(data: Dict[str, Any], config_class: type,
                     family_configs: Dict[str, type]) -> Dict[str, Any]:
    """Top-level keys of a family's settings (the flat layout before families were nested, e.g.
    "points") moved under that family, with one deprecation line on stderr."""
    top = {f.name for f in dataclasses.fields(config_class)}
    moved: Dict[str, Dict[str, Any]] = {}
    for key in data:
        if key in top:
            continue
        owners = [name for name, cls in family_configs.items() if key in {f.name for f in dataclasses.fields(cls)}]
        if len(owners) == 1:
            moved.setdefault(owners[0], {})[key] = data[key]
    if not moved:
        return data
    data = {k: v for k, v in data.items() if not any(k in keys for keys in moved.values())}
    for name, keys in moved.items():
        nested = data.get(name, {})
        if isinstance(nested, dict):
            both = sorted(set(keys) & set(nested))
            if both:
                raise UserError(f"config gives {both} both at the top level and under {name!r}; keep the {name!r} ones")
            data[name] = {**keys, **nested}
    notes = "; ".join(f"{sorted(keys)} are {name!r} settings" for name, keys in moved.items())
    print(f"note: config keys at the top level are deprecated ({notes}): nest them under the family's name "
          "(read as such this time)", file=sys.stderr)
    return data


def from_json_dict(cls: type, data: Any, where: str) -> Any:
    """`cls` built from a JSON object, nested dataclasses included, keys and types checked first."""
    kwargs = _typed_kwargs(cls, data, where)
    defaults = cls()  # type: ignore[call-arg]
    for key, value in kwargs.items():
        default = getattr(defaults, key)
        if dataclasses.is_dataclass(default):
            kwargs[key] = from_json_dict(type(default), value, key)
    return cls(**kwargs)


def _typed_kwargs(cls: type, data: Any, where: str) -> Dict[str, Any]:
    """Check keys and JSON types against the dataclass fields before constructing it."""
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"unknown {where} key(s) {unknown}; known keys: {sorted(fields)}")
    defaults = cls()  # type: ignore[call-arg]
    out: Dict[str, Any] = {}
    for key, value in data.items():
        default = getattr(defaults, key)
        if dataclasses.is_dataclass(default):
            out[key] = value  # checked by the caller with the nested class
            continue
        expected = (int, float) if isinstance(default, float) else type(default)
        if default is None:  # Optional fields: None or the natural type
            expected = (type(None), int) if key == "workers" else (type(None), str)
        if isinstance(value, bool) and expected is not bool and bool not in (expected if isinstance(expected, tuple) else (expected,)):
            raise UserError(f"{where}.{key} must be {_type_name(expected)}, got a boolean")
        if not isinstance(value, expected):
            raise UserError(f"{where}.{key} must be {_type_name(expected)}, got {type(value).__name__} {_short(value)}")
        if isinstance(default, float):
            try:
                value = float(value)
            except OverflowError:
                raise UserError(f"{where}.{key} must be a finite number, got an integer of {len(str(value))} digits") from None
        out[key] = value
    return out


def _type_name(expected: Any) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)
