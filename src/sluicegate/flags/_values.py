"""Value parsing shared by validation and compilation: semantic versions, instants, JSON
kinds. Standard library only (the evaluator imports it)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, TypeGuard

__all__ = [
    "SemVer",
    "is_number",
    "is_scalar",
    "json_kind",
    "parse_instant",
    "parse_semver",
]

# semver.org 2.0.0, with a leading "v" and a missing minor/patch (read as 0) tolerated.
_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)

# A comparable key: (major, minor, patch, 1, ()) for a release, (…, 0, identifiers) for a
# pre-release, identifiers as (0, number) or (1, text) so numbers sort before text.
SemVer = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def parse_semver(text: object) -> SemVer | None:
    """The precedence key of a semantic version (build metadata ignored), or None."""
    if type(text) is not str or len(text) > 256:
        return None
    m = _SEMVER.match(text)
    if m is None:
        return None
    major, minor, patch, pre = m.group(1), m.group(2), m.group(3), m.group(4)
    if pre is None:
        return (int(major), int(minor or 0), int(patch or 0), 1, ())
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (int(major), int(minor or 0), int(patch or 0), 0, ids)


def parse_instant(value: object) -> float | None:
    """Seconds since the Unix epoch of an ISO 8601 string (no offset = UTC; a date alone is
    midnight UTC) or of a number (already seconds); None for anything else."""
    if type(value) is str:
        if len(value) > 64:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if is_number(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or float, not a bool (``True == 1`` must never make a number match)."""
    return (
        type(value) is int
        or type(value) is float
        or (isinstance(value, int | float) and not isinstance(value, bool))
    )


def is_scalar(value: object) -> bool:
    """A string, a finite number or a bool: what ``eq``/``in`` compare."""
    if isinstance(value, str | bool):
        return True
    return is_number(value) and math.isfinite(value)


def json_kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__
