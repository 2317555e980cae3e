"""Metric sources behind one query: per-second samples of a listener's target groups.

``RouterSource`` reads the router's own per-second counters and latency histograms over its
admin API (the router may be another process). Only closed seconds are returned, oldest
first, so two calls never disagree about a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sluicegate.router.client import RouterClient

__all__ = ["MetricSource", "RouterSource", "Second"]


@dataclass(frozen=True)
class Second:
    """One target group's traffic in one wall-clock second."""

    t: int
    requests: int
    errors: int  # 5xx answers, the router's own 502/504 included
    router_errors: int  # 502/504 the router generated (the target failed or timed out)
    hist: dict[int, int] = field(default_factory=dict)  # latency buckets (router scheme)


class MetricSource(Protocol):
    async def seconds(self, listener: str, window: int) -> dict[str, list[Second]]:
        """Target group -> its closed seconds within ``window``, oldest first."""
        ...


class RouterSource:
    def __init__(self, client: RouterClient) -> None:
        self.client = client

    async def seconds(self, listener: str, window: int) -> dict[str, list[Second]]:
        data = await self.client.metrics(window, listener=listener, hist=True)
        out: dict[str, list[Second]] = {}
        for series in data["series"]:
            if series["listener"] != listener or series["target_group"] == "-":
                continue
            out[series["target_group"]] = [
                Second(int(p["t"]), int(p["requests"]), int(p["5xx"]),
                       int(p["router_502"]) + int(p["router_504"]),
                       {int(k): int(v) for k, v in p.get("hist", {}).items()})
                for p in series["seconds"]
            ]
        return out
