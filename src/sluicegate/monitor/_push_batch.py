"""Validate a push of metric data (CloudWatch PutMetricData's shape, in JSON; pure).

::

    {"metrics": [
      {"name": "checkout_latency", "dimensions": {"route": "/buy"}, "timestamp": 1700000000,
       "value": 12.5},
      {"name": "checkout_latency", "values": [10, 20], "counts": [3, 1]},
      {"name": "queue_depth", "statistic_values":
         {"sample_count": 4, "sum": 10, "minimum": 1, "maximum": 4}}
    ]}

Every problem is reported with its path (``metrics[3].value``) and nothing is stored when
there is one. Limits: CloudWatch's (1 000 entries per push, 150 values per entry, 30
dimensions, 255 characters per name), a count or sample_count of at most a billion (the
minute sums the rollups store are 64-bit); a timestamp (epoch seconds or ISO 8601, default
now) may be at most ``window`` old -- older seconds are already dropped, nothing could read
it -- and at most 5 minutes ahead: further is a clock or unit mistake (milliseconds for
seconds) whose data would sit unseen until its time came.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluicegate.errors import Problem, SpecError

__all__ = [
    "MAX_COUNT",
    "MAX_DIMENSIONS",
    "MAX_ENTRIES",
    "MAX_FUTURE",
    "MAX_VALUES",
    "Observation",
    "parse_batch",
]

MAX_ENTRIES = 1000
MAX_VALUES = 150
MAX_DIMENSIONS = 30
MAX_NAME = 255
MAX_FUTURE = 300
#: Samples one count or sample_count stands for: far above any real push, and low enough
#: that a minute's sums (64-bit in the store's rollups) cannot overflow.
MAX_COUNT = 10**9
_KEYS = {"name", "dimensions", "timestamp", "value", "values", "counts", "statistic_values"}
_STAT_KEYS = ("sample_count", "sum", "minimum", "maximum")


@dataclass(frozen=True)
class Observation:
    """One validated entry of a push, ready to store: values (with counts) or a statistic set.

    ``values`` given: ``counts`` (same length) or 1 each. Otherwise ``stats`` is
    (sample_count, sum, minimum, maximum).
    """

    name: str
    dimensions: Mapping[str, str]
    t: int
    values: Sequence[float] = ()
    counts: Sequence[int] | None = None
    stats: tuple[int, float, float, float] | None = None


def parse_batch(body: Any, now: float, window: int) -> list[Observation]:
    """The observations of a push body, or SpecError naming every bad field."""
    if not isinstance(body, dict) or set(body) != {"metrics"}:
        raise SpecError([Problem("", 'expected {"metrics": [...]}')])
    entries = body["metrics"]
    if not isinstance(entries, list) or not entries:
        raise SpecError([Problem("metrics", "must be a non-empty list")])
    if len(entries) > MAX_ENTRIES:
        raise SpecError(
            [Problem("metrics", f"{len(entries)} entries; at most {MAX_ENTRIES} per push")]
        )
    problems: list[Problem] = []
    out: list[Observation] = []
    for i, entry in enumerate(entries):
        found = _entry(entry, f"metrics[{i}]", now, window, problems)
        if found is not None:
            out.append(found)
    if problems:
        raise SpecError(problems)
    return out


def _entry(
    entry: Any, at: str, now: float, window: int, problems: list[Problem]
) -> Observation | None:
    if not isinstance(entry, dict):
        problems.append(Problem(at, "must be an object"))
        return None
    before = len(problems)
    for key in sorted(set(entry) - _KEYS):
        problems.append(Problem(f"{at}.{key}", "unknown key"))
    name = _name(entry.get("name"), f"{at}.name", problems)
    dims = _dimensions(entry.get("dimensions", {}), f"{at}.dimensions", problems)
    t = _timestamp(entry.get("timestamp"), f"{at}.timestamp", now, window, problems)
    kinds = [k for k in ("value", "values", "statistic_values") if k in entry]
    values: list[float] = []
    counts: list[int] | None = None
    stats: tuple[int, float, float, float] | None = None
    if len(kinds) != 1:
        problems.append(
            Problem(
                at, "give exactly one of value, values (with optional counts) or statistic_values"
            )
        )
    elif kinds[0] == "value":
        v = _number(entry["value"], f"{at}.value", problems)
        values = [] if v is None else [v]
    elif kinds[0] == "values":
        values, counts = _values(entry, at, problems)
    else:
        stats = _stats(entry["statistic_values"], f"{at}.statistic_values", problems)
    if "counts" in entry and (not kinds or kinds[0] != "values"):
        problems.append(Problem(f"{at}.counts", "counts go with values"))
    if len(problems) > before or name is None or t is None:
        return None
    return Observation(name, dims, t, values, counts, stats)


def _text(value: Any, at: str, what: str, problems: list[Problem]) -> str | None:
    if not isinstance(value, str) or not value:
        problems.append(Problem(at, f"{what} must be a non-empty string"))
        return None
    if len(value) > MAX_NAME:
        problems.append(Problem(at, f"{what} is {len(value)} characters; at most {MAX_NAME}"))
        return None
    if not value.isprintable():
        problems.append(Problem(at, f"{what} must not hold control characters"))
        return None
    return value


def _name(value: Any, at: str, problems: list[Problem]) -> str | None:
    if value is None:
        problems.append(Problem(at, "a metric needs a name"))
        return None
    return _text(value, at, "name", problems)


def _dimensions(value: Any, at: str, problems: list[Problem]) -> dict[str, str]:
    if not isinstance(value, dict):
        problems.append(Problem(at, "must be an object of name: value strings"))
        return {}
    if len(value) > MAX_DIMENSIONS:
        problems.append(Problem(at, f"{len(value)} dimensions; at most {MAX_DIMENSIONS}"))
        return {}
    out: dict[str, str] = {}
    for key, v in value.items():
        k = _text(key, at, "a dimension name", problems)
        text = _text(v, f"{at}.{key}", "a dimension value", problems)
        if k is not None and text is not None:
            out[k] = text
    return out


def _number(value: Any, at: str, problems: list[Problem]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(Problem(at, "must be a number"))
        return None
    if not math.isfinite(value):
        problems.append(Problem(at, "must be a finite number"))
        return None
    return float(value)


def _timestamp(value: Any, at: str, now: float, window: int, problems: list[Problem]) -> int | None:
    if value is None:
        return int(now)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.append(Problem(at, "not an ISO 8601 time or epoch seconds"))
            return None
        if parsed.tzinfo is None:
            problems.append(Problem(at, "an ISO 8601 time needs its offset (Z or +hh:mm)"))
            return None
        ts = parsed.timestamp()
    else:
        number = _number(value, at, problems)
        if number is None:
            return None
        ts = number
    if ts > now + MAX_FUTURE:
        hint = " (milliseconds? give seconds)" if ts > 1e11 else ""
        problems.append(Problem(at, f"{ts - now:.0f}s in the future; at most {MAX_FUTURE}s{hint}"))
        return None
    if ts < now - window:
        problems.append(Problem(at, f"{now - ts:.0f}s old; the store keeps {window}s"))
        return None
    return int(ts)


def _values(
    entry: dict[str, Any], at: str, problems: list[Problem]
) -> tuple[list[float], list[int] | None]:
    raw = entry["values"]
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(f"{at}.values", "must be a non-empty list of numbers"))
        return [], None
    if len(raw) > MAX_VALUES:
        problems.append(Problem(f"{at}.values", f"{len(raw)} values; at most {MAX_VALUES}"))
        return [], None
    values = [_number(v, f"{at}.values[{j}]", problems) for j, v in enumerate(raw)]
    if "counts" not in entry:
        return [v for v in values if v is not None], None
    counts_raw = entry["counts"]
    if not isinstance(counts_raw, list) or len(counts_raw) != len(raw):
        problems.append(Problem(f"{at}.counts", f"must be a list as long as values ({len(raw)})"))
        return [], None
    counts: list[int] = []
    for j, c in enumerate(counts_raw):
        if isinstance(c, bool) or not isinstance(c, int | float) or c < 0 or c != int(c):
            problems.append(Problem(f"{at}.counts[{j}]", "must be a whole number >= 0"))
        elif c > MAX_COUNT:
            problems.append(Problem(f"{at}.counts[{j}]", f"must be at most {MAX_COUNT:,}"))
        else:
            counts.append(int(c))
    return [v for v in values if v is not None], counts


def _stats(value: Any, at: str, problems: list[Problem]) -> tuple[int, float, float, float] | None:
    if not isinstance(value, dict):
        problems.append(Problem(at, f"must be an object with {', '.join(_STAT_KEYS)}"))
        return None
    before = len(problems)
    for key in sorted(set(value) - set(_STAT_KEYS)):
        problems.append(Problem(f"{at}.{key}", "unknown key"))
    nums: dict[str, float] = {}
    for key in _STAT_KEYS:
        if key not in value:
            problems.append(Problem(f"{at}.{key}", "required"))
            continue
        n = _number(value[key], f"{at}.{key}", problems)
        if n is not None:
            nums[key] = n
    if len(problems) > before:
        return None
    n, total, low, high = (nums[k] for k in _STAT_KEYS)
    if n < 1 or n != int(n):
        problems.append(Problem(f"{at}.sample_count", "must be a whole number >= 1"))
        return None
    if n > MAX_COUNT:
        problems.append(Problem(f"{at}.sample_count", f"must be at most {MAX_COUNT:,}"))
        return None
    if low > high:
        problems.append(Problem(f"{at}.minimum", f"is above maximum ({high:g})"))
        return None
    mean = total / n
    slack = 1e-9 * max(1.0, abs(low), abs(high))
    if not low - slack <= mean <= high + slack:
        problems.append(
            Problem(
                f"{at}.sum",
                f"sum / sample_count = {mean:g} lies outside"
                f" [minimum, maximum] = [{low:g}, {high:g}]",
            )
        )
        return None
    return int(n), total, low, high
