"""Metric history: one-minute rollups of pushed series and of the router's main series,
written to the store, and datapoints computed from them.

Once a minute (5 s after it closes, so late pushes and the router's last second are in),
:meth:`RollupWriter.roll` stores for the minute just closed:

- every pushed series with data: count, sum, min, max and its histogram;
- per router listener x target group with traffic: ``requests`` and ``5xx`` (counters) and
  ``latency`` (ms, with the router's histogram).

Minutes older than ``retention`` (14 days) are deleted, the flag exposure minutes agents
reported (``store.flag_exposures``) with them. :func:`rollup_datapoints` turns
rows back into CloudWatch-style datapoints for any period that is a whole number of
minutes, with the same statistics as alarms (percentiles from the merged histograms).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any

from sluicegate.clock import Clock
from sluicegate.errors import SluicegateError
from sluicegate.monitor._router_datapoints import histogram_ms, percentile_ms, router_seconds
from sluicegate.monitor.alarms import (
    Datapoint,
    PercentileFn,
    StatSet,
    aggregate,
    aggregate_percentile,
)
from sluicegate.monitor.series import SeriesStore, hist_quantile
from sluicegate.router.traffic import RouterMetrics
from sluicegate.spec import parse_statistic
from sluicegate.store import MetricRollup, Store

__all__ = ["DEFAULT_RETENTION", "RollupWriter", "rollup_datapoints"]

log = logging.getLogger(__name__)

DEFAULT_RETENTION = 14 * 86400
MINUTE = 60


class RollupWriter:
    """Writes the minute just closed; ``router`` reads the router's per-second metrics (the
    traffic driver), None when there is no router."""

    def __init__(
        self,
        store: Store,
        series: SeriesStore,
        router: RouterMetrics | None,
        clock: Clock,
        retention: int = DEFAULT_RETENTION,
        delay: float = 5.0,
    ) -> None:
        self.store = store
        self.series = series
        self.router = router
        self.clock = clock
        self.retention = retention
        self.delay = delay
        self._rolled: int | None = None

    async def wait_next(self) -> None:
        """Until ``delay`` seconds after the next minute starts (the supervisor's wait)."""
        now = self.clock.now()
        target = math.floor(now / MINUTE) * MINUTE + self.delay
        if target <= now:
            target += MINUTE
        await asyncio.sleep(target - now)

    async def tick(self) -> int:
        """Roll the newest minute closed ``delay`` seconds ago, once; returns rows written."""
        minute = math.floor((self.clock.now() - self.delay) / MINUTE) * MINUTE - MINUTE
        if minute == self._rolled:
            return 0
        written = await self.roll(minute)
        self._rolled = minute
        return written

    async def roll(self, minute: int) -> int:
        """Store the minute starting at ``minute``; returns how many rows were written."""
        rows = [
            MetricRollup(
                "push",
                name,
                dict(dims),
                minute,
                s.count,
                s.total,
                _finite(s.minimum),
                _finite(s.maximum),
                hist,
            )
            for (name, dims), s, hist in self.series.summaries(minute, minute + MINUTE)
        ]
        rows += await self._router_rows(minute)
        self.store.metric_rollups.write(rows)
        self.store.metric_rollups.delete_before(minute - self.retention)
        self.store.flag_exposures.delete_before(minute - self.retention)
        return len(rows)

    async def _router_rows(self, minute: int) -> list[MetricRollup]:
        client = self.router
        if client is None:
            return []
        try:
            data = await client.metrics(2 * MINUTE + 30, hist=True)
        except SluicegateError as exc:
            log.warning("metric rollup: the router did not answer (%s)", exc)
            return []
        groups = {(s["listener"], s["target_group"]) for s in data["series"]}
        rows: list[MetricRollup] = []
        for listener, group in sorted(groups):
            seconds = {
                t: s
                for t, s in router_seconds(data, listener, group).items()
                if minute <= t < minute + MINUTE
            }
            if not seconds:
                continue
            dims = {"listener": listener, "target_group": group}
            for name in ("requests", "5xx"):
                n = sum(int(s[name]) for s in seconds.values())
                stats = StatSet.events(n)
                rows.append(
                    MetricRollup(
                        "router",
                        name,
                        dims,
                        minute,
                        stats.count,
                        stats.total,
                        _finite(stats.minimum),
                        _finite(stats.maximum),
                        {},
                    )
                )
            latency = StatSet(0)
            hist: dict[int, int] = {}
            for s in seconds.values():
                latency = latency.merge(histogram_ms(s))
                for k, c in s["hist"].items():
                    hist[int(k)] = hist.get(int(k), 0) + int(c)
            rows.append(
                MetricRollup(
                    "router",
                    "latency",
                    dims,
                    minute,
                    latency.count,
                    latency.total,
                    _finite(latency.minimum),
                    _finite(latency.maximum),
                    hist,
                )
            )
        return rows


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def rollup_datapoints(
    rows: Sequence[MetricRollup], statistic: str, *, end: int, period: int, count: int
) -> list[Datapoint]:
    """Datapoints of ``period`` seconds (a multiple of 60) from one series' minutes."""
    if period % MINUTE:
        raise ValueError("a rollup period is a whole number of minutes")
    stat, q = parse_statistic(statistic)
    if q is not None:
        fn: PercentileFn = _percentile_fn(rows[0].source if rows else "push")
        hists: dict[int, Any] = {r.minute: r.hist for r in rows}
        return aggregate_percentile(q, hists, end=end, period=period, count=count, percentile=fn)
    stats = {
        r.minute: StatSet(
            r.count,
            r.total,
            math.inf if r.minimum is None else r.minimum,
            -math.inf if r.maximum is None else r.maximum,
        )
        for r in rows
    }
    return aggregate(stat, stats, end=end, period=period, count=count)


def _percentile_fn(source: str) -> PercentileFn:
    if source == "router":
        return percentile_ms
    return hist_quantile
