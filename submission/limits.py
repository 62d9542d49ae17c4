"""The size bounds and value checks that the generation config and every family's config share."""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Optional

from .errors import UserError

MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 4096  # 16.8 Mpx: one float32 RGB render is already 200 MB
DEFAULT_IMAGE_SIZE = 384  # the 4th place's generator.py:124 (the contest default is their recipe, exactly)
MAX_SEED = 2**56 - 1  # the largest seed whose counter-RNG key (seed * 256 + stream) fits in 64 bits


def _short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters so an error message stays one readable line."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for str() (sys.set_int_max_str_digits)
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def need(ok: bool, message: str) -> None:
    """Raise `UserError(message)` unless `ok`."""
    if not ok:
        raise UserError(message)


def need_int(name: str, value: Any, low: int, low_message: str, high: Optional[int] = None, how: str = "") -> None:
    """An integer of at least `low` (else `low_message`) and at most `high` when given."""
    need(_is_int(value), f"{name} must be an integer, got {type(value).__name__} {_short(value)}")
    need(value >= low, low_message)
    if high is not None:
        need(value <= high, f"{name} must be at most {high}, got {_short(value)}{how}")


def need_number(name: str, value: Any, ok: Callable[[float], bool], rule: str) -> None:
    """A finite number for which `ok(value)` holds, described by `rule`."""
    need(_is_finite(value) and ok(value), f"{name} must be a finite number {rule}, got {_short(value)}")
