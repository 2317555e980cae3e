"""Pushed metrics: per-second series in memory, and the ``PushSource`` alarms read them from.

A series is a metric name plus its full set of dimensions (as in CloudWatch: ``{route: /buy}``
and ``{}`` are two series). Each second holds a summary (count, sum, min, max) and, when
values were given one by one, a log-bucketed histogram for percentiles; a pushed statistic
set (CloudWatch's ``StatisticValues``) has no distribution, so it adds to Sum/Average/
Minimum/Maximum/SampleCount but not to percentiles.

Histogram buckets: 8 per power of two of the absolute value (each at most 1/8 of its lower
bound wide), zero its own bucket, negatives mirrored; a percentile is its bucket's midpoint
clamped into the period's [Minimum, Maximum], so it is within 6.25 % of a true sample value
(and exact when the period saw one distinct value).

Bounds: seconds older than ``window`` (3 h by default) are dropped (once a minute), at most
``max_series`` series exist; a push that would create more is refused whole
(:class:`SeriesLimitError`). A series with no second left in the window is forgotten.

Memory (CPython 3.11, tracemalloc, ``bench/series_memory.py``, bytes per series-second):
one value in the second 186 B (2.0 MB per series for a full 3 h window), 10 values in about
3 buckets 305 B (3.3 MB), 100 values in about 40 buckets 909 B (9.8 MB). Only seconds with
data cost anything, so the worst case is ``max_series`` x the per-series figure: 1 000
series pushed every second for 3 h take 2 to 10 GB. Lower the window or the series limit
when pushing every second (an alarm needs only period x (N + 2)).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence

from sluicegate.errors import SluicegateError
from sluicegate.monitor._push_batch import Observation
from sluicegate.monitor.alarms import Datapoint, StatSet, aggregate, period_starts
from sluicegate.spec import MetricSpec, parse_statistic

__all__ = [
    "DEFAULT_MAX_SERIES",
    "DEFAULT_WINDOW",
    "Observation",
    "PushSource",
    "SeriesKey",
    "SeriesLimitError",
    "SeriesStore",
    "bucket_of",
    "bucket_value",
    "hist_quantile",
    "series_key",
]

DEFAULT_WINDOW = 3 * 3600
DEFAULT_MAX_SERIES = 1000
_PRUNE_EVERY = 60  # seconds between prunes

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def series_key(name: str, dimensions: Mapping[str, str]) -> SeriesKey:
    """A series' identity: the name and its dimensions, sorted."""
    return name, tuple(sorted(dimensions.items()))


class SeriesLimitError(SluicegateError):
    """A push would create more series than the store allows."""


# --- buckets (pure) ----------------------------------------------------------------------------

_SUB = 8  # buckets per power of two
_OFFSET = 1100  # frexp's exponent is >= -1073 for doubles, so positive keys stay above 0


def bucket_of(value: float) -> int:
    """The bucket key of a finite value: 0 for zero, > 0 for positives, < 0 for negatives."""
    if value == 0:
        return 0
    mantissa, exponent = math.frexp(abs(value))  # abs(value) = mantissa * 2**exponent
    sub = min(int((mantissa * 2 - 1) * _SUB), _SUB - 1)
    key = (exponent + _OFFSET) * _SUB + sub + 1
    return key if value > 0 else -key


def bucket_value(key: int) -> float:
    """The value standing for a bucket: the midpoint of its range."""
    if key == 0:
        return 0.0
    k = abs(key) - 1
    exponent, sub = divmod(k, _SUB)
    low = math.ldexp(1 + sub / _SUB, exponent - _OFFSET - 1)
    high = math.ldexp(1 + (sub + 1) / _SUB, exponent - _OFFSET - 1)
    mid = (low + high) / 2
    return mid if key > 0 else -mid


# --- storage -----------------------------------------------------------------------------------


class _Second:
    """One series' second. ``hist`` is None (no distribution), one bucket key (every
    sample in that bucket: the common one-value second; see ``_histogram``), or the
    buckets packed as ``array('q', [key, count, key, count, ...])`` (16 bytes a bucket,
    a quarter of a dict's cost)."""

    __slots__ = ("count", "hist", "maximum", "minimum", "total")

    def __init__(
        self,
        count: int,
        total: float,
        minimum: float,
        maximum: float,
        hist: int | array[int] | None,
    ) -> None:
        self.count = count
        self.total = total
        self.minimum = minimum
        self.maximum = maximum
        self.hist = hist


class _Series:
    __slots__ = ("hist_counts", "seconds")

    def __init__(self) -> None:
        self.seconds: dict[int, _Second] = {}
        # Samples in a single-bucket histogram, where it differs from the second's count
        # (a statistic set was merged in): rare, so kept aside instead of on every second.
        self.hist_counts: dict[int, int] = {}


class SeriesStore:
    """Per-second series of pushed metrics, bounded by ``window`` seconds and ``max_series``.

    Not thread-safe: used from one event loop (the API's handlers and the alarm loop).
    """

    def __init__(self, window: int = DEFAULT_WINDOW, max_series: int = DEFAULT_MAX_SERIES) -> None:
        if window < 1 or max_series < 1:
            raise ValueError("window and max_series must be at least 1")
        self.window = window
        self.max_series = max_series
        self._series: dict[SeriesKey, _Series] = {}
        self._pruned_at = 0

    def __len__(self) -> int:
        return len(self._series)

    def seconds_held(self) -> int:
        """Series-seconds held (for the memory estimate)."""
        return sum(len(s.seconds) for s in self._series.values())

    def keys(self) -> list[SeriesKey]:
        return sorted(self._series)

    def put(self, batch: Sequence[Observation], now: float) -> int:
        """Store a validated batch, all or nothing; returns how many new series it made.

        Raises :class:`SeriesLimitError` (storing nothing) when the batch would create
        series beyond ``max_series``.
        """
        self.prune(now)
        keys = {series_key(o.name, o.dimensions) for o in batch}
        fresh = keys - self._series.keys()
        if len(self._series) + len(fresh) > self.max_series:
            self.prune(now, force=True)  # expired series must not count against the limit
            fresh = keys - self._series.keys()
        if len(self._series) + len(fresh) > self.max_series:
            raise SeriesLimitError(
                f"this push would create {len(fresh)} new series, but the store holds"
                f" {len(self._series)} of at most {self.max_series}; reuse dimensions"
                " (one series per name and dimension set) or raise --push-max-series"
            )
        for o in batch:
            key = series_key(o.name, o.dimensions)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            _add(series, o)
        return len(fresh)

    def prune(self, now: float, *, force: bool = False) -> None:
        """Drop seconds older than the window and the series left empty. Runs at most once a
        minute (``force``: now): the store may hold a minute more than the window."""
        second = int(now)
        if not force and second - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = second
        oldest = second - self.window
        for key in list(self._series):
            series = self._series[key]
            doomed = []
            # Mostly in time order: collect from the front until a second in the window.
            for t in series.seconds:
                if t >= oldest:
                    break
                doomed.append(t)
            for t in doomed:
                del series.seconds[t]
                series.hist_counts.pop(t, None)
            if not series.seconds:
                del self._series[key]

    def summaries(self, start: int, end: int) -> list[tuple[SeriesKey, StatSet, dict[int, int]]]:
        """Every series' seconds in [start, end) merged: (key, stats, buckets), for rollups.
        Series without data there are left out."""
        out = []
        for key, series in self._series.items():
            merged = StatSet(0)
            hist: dict[int, int] = {}
            for t, s in series.seconds.items():
                if start <= t < end:
                    merged = merged.merge(StatSet(s.count, s.total, s.minimum, s.maximum))
                    for k, c in _histogram(series, t, s).items():
                        hist[k] = hist.get(k, 0) + c
            if merged.count:
                out.append((key, merged, hist))
        return out

    def datapoints(
        self,
        name: str,
        dimensions: Mapping[str, str],
        statistic: str,
        *,
        end: int,
        period: int,
        count: int,
    ) -> list[Datapoint]:
        """One datapoint per period (see ``alarms.period_starts``); missing where no data."""
        series = self._series.get(series_key(name, dimensions))
        start = end - period * count
        stat, q = parse_statistic(statistic)
        if series is None:
            return [Datapoint(t, None, 0) for t in period_starts(end, period, count)]
        window = {t: s for t, s in series.seconds.items() if start <= t < end}
        if q is None:
            stats = {t: StatSet(s.count, s.total, s.minimum, s.maximum) for t, s in window.items()}
            return aggregate(stat, stats, end=end, period=period, count=count)
        return _percentiles(series, window, q, end=end, period=period, count=count)


def _add(series: _Series, o: Observation) -> None:
    t = o.t
    if o.stats is not None:
        n, total, low, high = o.stats
        _merge(series, t, n, total, low, high, None, 0)
        return
    counts = o.counts if o.counts is not None else [1] * len(o.values)
    hist: dict[int, int] = {}
    n, total = 0, 0.0
    for v, c in zip(o.values, counts, strict=True):
        if c <= 0:
            continue
        n += c
        total += v * c
        key = bucket_of(v)
        hist[key] = hist.get(key, 0) + c
    if n:
        used = [v for v, c in zip(o.values, counts, strict=True) if c > 0]
        _merge(series, t, n, total, min(used), max(used), hist, n)


def _merge(
    series: _Series,
    t: int,
    n: int,
    total: float,
    low: float,
    high: float,
    hist: dict[int, int] | None,
    hist_n: int,
) -> None:
    old = series.seconds.get(t)
    if old is not None:
        merged = dict(_histogram(series, t, old))
        hist_n += sum(merged.values())
        for key, c in (hist or {}).items():
            merged[key] = merged.get(key, 0) + c
        hist = merged or None
        n, total = n + old.count, total + old.total
        low, high = min(old.minimum, low), max(old.maximum, high)
    series.hist_counts.pop(t, None)
    compact: int | array[int] | None = None
    if hist is not None and len(hist) == 1:
        compact = next(iter(hist))
        if hist_n != n:
            series.hist_counts[t] = hist_n
    elif hist:
        compact = array("q", [x for key in sorted(hist) for x in (key, hist[key])])
    series.seconds[t] = _Second(n, total, low, high, compact)


def _histogram(series: _Series, t: int, s: _Second) -> dict[int, int]:
    if s.hist is None:
        return {}
    if isinstance(s.hist, int):
        return {s.hist: series.hist_counts.get(t, s.count)}
    packed = s.hist
    return {packed[i]: packed[i + 1] for i in range(0, len(packed), 2)}


def _percentiles(
    series: _Series, seconds: Mapping[int, _Second], q: float, *, end: int, period: int, count: int
) -> list[Datapoint]:
    out: list[Datapoint] = []
    for start in period_starts(end, period, count):
        merged: dict[int, int] = {}
        low, high = math.inf, -math.inf
        for t in range(start, start + period):
            s = seconds.get(t)
            if s is None:
                continue
            for key, c in _histogram(series, t, s).items():
                merged[key] = merged.get(key, 0) + c
            low, high = min(low, s.minimum), max(high, s.maximum)
        total = sum(merged.values())
        if not total:
            out.append(Datapoint(start, None, 0))
            continue
        value = hist_quantile(merged, q)
        assert value is not None
        out.append(Datapoint(start, min(max(value, low), high), total))
    return out


def hist_quantile(hist: Mapping[int, int], q: float) -> float | None:
    """The q-quantile of buckets in this module's scheme (a bucket's midpoint); None if
    empty."""
    total = sum(hist.values())
    if not total:
        return None
    rank, seen = q * total, 0
    keys = sorted(k for k, c in hist.items() if c)
    for key in keys:
        seen += hist[key]
        if seen >= rank:
            return bucket_value(key)
    return bucket_value(keys[-1])


class PushSource:
    """``DatapointSource`` over a :class:`SeriesStore` (metrics apps push to the API)."""

    def __init__(self, store: SeriesStore) -> None:
        self.store = store

    async def datapoints(
        self, metric: MetricSpec, statistic: str, *, end: int, period: int, count: int
    ) -> list[Datapoint]:
        assert metric.name is not None
        return self.store.datapoints(
            metric.name, metric.dimensions, statistic, end=end, period=period, count=count
        )
