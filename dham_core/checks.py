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
