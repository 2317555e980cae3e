"""The router's per-second metrics as alarm datapoints (a ``DatapointSource``).

Metric names, ALB's in Sluicegate's words (dimensions ``listener``, required, and
``target_group``, optional: without it the listener's groups are summed, including ``-``,
the requests the router refused before routing):

- counters ``requests``, ``1xx`` .. ``5xx``, ``router_502``, ``router_504``: each second with
  traffic on the series is ``StatSet.events(n)``, so Sum = the count, and a second with
  requests but no 5xx is present with Sum 0 (an ``e / r`` ratio gets a value, with r's
  requests as its samples);
- ``latency``: per-request latency in **milliseconds**: Average is exact (the router's
  latency sum), Minimum/Maximum/pNN come from the histogram (bucket midpoints, within
  6.25 %).

A second without traffic on the series is absent: missing data, as on ALB. The router keeps
its last ``metrics_window`` seconds (5 min by default); periods older than that are missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sluicegate.errors import Problem, SpecError
from sluicegate.monitor.alarms import Datapoint, StatSet, aggregate, aggregate_percentile
from sluicegate.router import bucket_bounds, percentile
from sluicegate.router.traffic import RouterMetrics
from sluicegate.spec import ROUTER_COUNTERS, MetricSpec, parse_statistic

__all__ = [
    "COUNTERS",
    "RouterDatapoints",
    "histogram_ms",
    "percentile_ms",
    "router_seconds",
]

COUNTERS = ROUTER_COUNTERS
_SLACK = 5  # seconds asked for beyond the range: the router's current second may run ahead


def router_seconds(
    data: Mapping[str, Any],
    listener: str,
    target_group: str | None,
) -> dict[int, dict[str, Any]]:
    """Per second, the summed points of the matching series (pure; the admin API's JSON).

    Each value holds the counters, ``latency_sum`` (s) and ``hist`` (bucket -> count).
    Seconds without requests are left out.
    """
    out: dict[int, dict[str, Any]] = {}
    for series in data["series"]:
        if series["listener"] != listener:
            continue
        if target_group is not None and series["target_group"] != target_group:
            continue
        for p in series["seconds"]:
            if not p["requests"]:
                continue
            t = int(p["t"])
            acc = out.setdefault(t, {k: 0 for k in COUNTERS} | {"latency_sum": 0.0, "hist": {}})
            for k in COUNTERS:
                acc[k] += int(p[k])
            acc["latency_sum"] += float(p.get("latency_sum", 0.0))
            hist: dict[int, int] = acc["hist"]
            for index, n in p.get("hist", {}).items():
                hist[int(index)] = hist.get(int(index), 0) + int(n)
    return out


def _midpoint_ms(index: int) -> float:
    lo, hi = bucket_bounds(index)
    return (lo + hi) / 2 / 1000


def histogram_ms(second: Mapping[str, Any]) -> StatSet:
    """One second's latency as a StatSet in ms: exact sum, min/max from the histogram."""
    n = int(second["requests"])
    if not n:
        return StatSet(0)
    indexes = [i for i, c in second["hist"].items() if c]
    low = _midpoint_ms(min(indexes)) if indexes else math.inf
    high = _midpoint_ms(max(indexes)) if indexes else -math.inf
    return StatSet(n, float(second["latency_sum"]) * 1000, low, high)


def percentile_ms(hist: dict[int, int], q: float) -> float | None:
    """The q-quantile of a router histogram in ms, as its bucket's midpoint (the router's
    own ``percentile``, which is in seconds)."""
    seconds = percentile(hist, q)
    return None if seconds is None else seconds * 1000


def _datapoints(
    seconds: Mapping[int, Mapping[str, Any]],
    name: str,
    statistic: str,
    *,
    end: int,
    period: int,
    count: int,
) -> list[Datapoint]:
    stat, q = parse_statistic(statistic)
    if name == "latency":
        if q is not None:
            hists = {t: s["hist"] for t, s in seconds.items()}
            return aggregate_percentile(
                q, hists, end=end, period=period, count=count, percentile=percentile_ms
            )
        stats = {t: histogram_ms(s) for t, s in seconds.items()}
        return aggregate(stat, stats, end=end, period=period, count=count)
    counts = {t: StatSet.events(int(s[name])) for t, s in seconds.items()}
    return aggregate(stat, counts, end=end, period=period, count=count)


class RouterDatapoints:
    """``DatapointSource`` over the router's admin API (``GET /v1/metrics?hist=1``).

    One read per listener and evaluation second serves every alarm on that listener: the
    last answer is reused while it covers the range asked for.
    """

    def __init__(self, client: RouterMetrics, max_window: int = 300) -> None:
        self.client = client
        self.max_window = max_window
        self._cache: dict[str, tuple[int, int, dict[str, Any]]] = {}  # listener -> end, window

    async def datapoints(
        self, metric: MetricSpec, statistic: str, *, end: int, period: int, count: int
    ) -> list[Datapoint]:
        assert metric.name is not None  # MetricSpec checked the name and the dimensions
        if metric.name != "latency" and parse_statistic(statistic)[1] is not None:
            raise SpecError(
                [
                    Problem(
                        "statistic",
                        f"{statistic} needs a distribution; the"
                        f" router counter {metric.name!r} has none (use Sum)",
                    )
                ]
            )
        listener = metric.dimensions["listener"]
        window = min(self.max_window, period * count + _SLACK)
        data = await self._read(listener, end, window)
        seconds = router_seconds(data, listener, metric.dimensions.get("target_group"))
        return _datapoints(seconds, metric.name, statistic, end=end, period=period, count=count)

    async def _read(self, listener: str, end: int, window: int) -> dict[str, Any]:
        cached = self._cache.get(listener)
        if cached is not None and cached[0] == end and cached[1] >= window:
            return cached[2]
        data = await self.client.metrics(window, listener=listener, hist=True)
        self._cache[listener] = (end, window, data)
        return data

    def forget(self, listeners: Iterable[str] = ()) -> None:
        """Drop cached reads (all, or of some listeners)."""
        for name in list(listeners) or list(self._cache):
            self._cache.pop(name, None)
