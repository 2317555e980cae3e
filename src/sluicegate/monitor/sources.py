"""Metric sources behind one query interface.

Two seams live here:

- :class:`MetricSource` (``seconds``): per-second samples of a listener's target groups, what
  the canary guards compare green against blue with. ``RouterSource`` reads the router's own
  per-second counters and latency histograms over its admin API (the router may be another
  process). Only closed seconds are returned, oldest first, so two calls never disagree.
- :class:`DatapointSource` (``datapoints``): what an alarm reads -- one
  :class:`~sluicegate.monitor.alarms.Datapoint` per period for one metric and statistic,
  CloudWatch's GetMetricData in miniature. Every source (router, push, prometheus) implements
  it; :class:`Sources` dispatches on ``MetricSpec.source``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sluicegate.errors import NotFoundError
from sluicegate.monitor.alarms import Datapoint
from sluicegate.router.traffic import RouterMetrics
from sluicegate.spec import MetricSpec

__all__ = ["DatapointSource", "MetricSource", "RouterSource", "Second", "Sources"]


@dataclass(frozen=True)
class Second:
    """One target group's traffic in one wall-clock second."""

    t: int
    requests: int
    errors: int  # 5xx answers, the router's own 502/504 included
    router_errors: int  # 502/504 the router generated (the target failed or timed out)
    hist: dict[int, int] = field(default_factory=dict)  # latency buckets (router scheme)
    open: bool = False  # the router's current second, still counting


class MetricSource(Protocol):
    async def seconds(self, listener: str, window: int) -> dict[str, list[Second]]:
        """Target group -> its closed seconds within ``window``, oldest first."""
        ...


class DatapointSource(Protocol):
    async def datapoints(
        self, metric: MetricSpec, statistic: str, *, end: int, period: int, count: int
    ) -> list[Datapoint]:
        """``count`` datapoints, oldest first, for the periods ending at ``end`` (exclusive,
        epoch seconds, see ``alarms.period_starts``); a period without data has
        ``value=None``. ``statistic`` is an alarm statistic (Sum, Average, p99, ...).
        Raises a :class:`~sluicegate.errors.SluicegateError` subclass when the source cannot
        answer (unreachable, bad query); the alarm loop records that, never crashes."""
        ...


class Sources:
    """One ``DatapointSource`` per ``MetricSpec.source`` name (router, push, prometheus)."""

    def __init__(self, **by_name: DatapointSource) -> None:
        self.by_name = dict(by_name)

    async def datapoints(
        self, metric: MetricSpec, statistic: str, *, end: int, period: int, count: int
    ) -> list[Datapoint]:
        source = self.by_name.get(metric.source)
        if source is None:
            known = ", ".join(sorted(self.by_name)) or "none"
            raise NotFoundError(
                f"metric source {metric.source!r} is not configured on"
                f" this server (configured: {known})"
            )
        return await source.datapoints(metric, statistic, end=end, period=period, count=count)


class RouterSource:
    """Per-second counts of one listener's target groups, read through the traffic driver
    (or straight from a router client)."""

    def __init__(self, client: RouterMetrics) -> None:
        self.client = client

    async def seconds(
        self, listener: str, window: int, *, include_open: bool = False
    ) -> dict[str, list[Second]]:
        data = await self.client.metrics(
            window, listener=listener, hist=True, include_open=include_open
        )
        out: dict[str, list[Second]] = {}
        for series in data["series"]:
            if series["listener"] != listener or series["target_group"] == "-":
                continue
            out[series["target_group"]] = [
                Second(
                    int(p["t"]),
                    int(p["requests"]),
                    int(p["5xx"]),
                    int(p["router_502"]) + int(p["router_504"]),
                    {int(k): int(v) for k, v in p.get("hist", {}).items()},
                    bool(p.get("open", False)),
                )
                for p in series["seconds"]
            ]
        return out
