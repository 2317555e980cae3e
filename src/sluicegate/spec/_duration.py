"""Durations as users write them: ``500ms``, ``5s``, ``2m``, ``1h``, ``7d`` or plain seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Duration", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """Seconds as a float; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 500ms, 5s, 2m, 1h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _PATTERN.match(value)):
        number, unit = float(m.group(1)), m.group(2) or "s"
        # Divide for milliseconds: 9 / 1000 is exactly the float 0.009, 9 * 0.001 is not.
        seconds = number / 1000 if unit == "ms" else number * _UNITS[unit]
    else:
        raise ValueError(f"{value!r} is not a duration; write 500ms, 5s, 2m, 1h or 7d")
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration, for messages and round-trips."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[float, BeforeValidator(parse_duration)]
