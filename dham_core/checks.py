"""Argument checks shared by the configs: every refusal names the field and what is allowed."""
from __future__ import annotations

import math
import numbers


def is_int(value) -> bool:
    """A Python or NumPy integer, not a bool (what sweeps and JSON hand over)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def refuse(config, name: str, allowed: str) -> None:
    """Raise ``ValueError("<name> must be <allowed> (got <name>=<value>)")`` for ``config``."""
    raise ValueError(f"{name} must be {allowed} (got {name}={getattr(config, name)!r})")


def positive_int(name: str, value) -> int:
    """``value`` as an ``int`` if it is an integer >= 1, else ``ValueError`` naming ``name``.

    For plain arguments (no config object to hand to :func:`refuse`)."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1 (got {name}={value!r})")
    return int(value)


def is_int_list(values, low: int) -> bool:
    """A non-empty list or tuple of integers (not bools), each >= ``low``."""
    return isinstance(values, (list, tuple)) and len(values) > 0 and all(is_int(v) and v >= low for v in values)
