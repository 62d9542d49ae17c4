"""The size bounds and value checks that config.py and family_config.py share."""
from __future__ import annotations

import math
import numbers
from typing import Any

MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 4096  # 16.8 Mpx: one float32 RGB render is already 200 MB


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
