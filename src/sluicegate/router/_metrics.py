"""Per listener × target group × second request counters, kept in memory at the source.

The hot path does one ``Series.record`` per request: a few integer bumps on the current
second's counts, no lock, no allocation. A once-a-second tick (``MetricsRegistry.rotate``)
closes the second into a bounded ring. Memory: about 2.3 KB per series-second (272 histogram
slots), so 300 s × 4 series ≈ 2.8 MB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sluicegate.router._histogram import MAX_US, NUM_BUCKETS

__all__ = ["Counts", "MetricsRegistry", "Series", "SeriesKey"]

# Requests routed before a target group was chosen (malformed requests, no match).
NO_GROUP = "-"


class Counts:
    """One second (or a running total) of one series."""

    __slots__ = ("hist", "latency_sum", "r502", "r504", "requests", "status")

    def __init__(self) -> None:
        self.requests = 0
        self.status = [0, 0, 0, 0, 0, 0]  # index = status // 100
        self.r502 = 0  # router-generated 502 (upstream failed)
        self.r504 = 0  # router-generated 504 (upstream timed out)
        self.latency_sum = 0.0
        self.hist = [0] * NUM_BUCKETS

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.r502 += other.r502
        self.r504 += other.r504
        self.latency_sum += other.latency_sum
        for i, n in enumerate(other.status):
            self.status[i] += n
        hist = self.hist
        for i, n in enumerate(other.hist):
            if n:
                hist[i] += n

    def to_json(self) -> dict[str, Any]:
        s = self.status
        return {
            "requests": self.requests,
            "1xx": s[1],
            "2xx": s[2],
            "3xx": s[3],
            "4xx": s[4],
            "5xx": s[5],
            "router_502": self.r502,
            "router_504": self.r504,
            "latency_sum": round(self.latency_sum, 6),
            "hist": {str(i): n for i, n in enumerate(self.hist) if n},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        c = cls()
        c.requests = int(data["requests"])
        c.status = [0, data["1xx"], data["2xx"], data["3xx"], data["4xx"], data["5xx"]]
        c.r502 = int(data["router_502"])
        c.r504 = int(data["router_504"])
        c.latency_sum = float(data["latency_sum"])
        for i, n in data["hist"].items():
            c.hist[int(i)] = int(n)
        return c


@dataclass(frozen=True, order=True)
class SeriesKey:
    listener: str
    target_group: str


class Series:
    """The counters of one listener × target group."""

    __slots__ = ("cur", "key", "ring", "total")

    def __init__(self, key: SeriesKey, window: int) -> None:
        self.key = key
        self.cur = Counts()
        self.total = Counts()  # everything before `cur`, for Prometheus counters
        self.ring: deque[tuple[int, Counts]] = deque(maxlen=window)

    def record(self, status: int, latency: float) -> None:
        c = self.cur
        c.requests += 1
        c.status[status // 100 if 100 <= status < 600 else 5] += 1
        c.latency_sum += latency
        # bucket_index, inlined: this runs once per request.
        us = int(latency * 1e6)
        if us < 16:
            c.hist[us if us > 0 else 0] += 1
        else:
            us = min(us, MAX_US)
            bl = us.bit_length()
            c.hist[16 + ((bl - 5) << 3) + ((us >> (bl - 4)) - 8)] += 1

    def record_router_error(self, status: int, latency: float) -> None:
        self.record(status, latency)
        if status == 504:
            self.cur.r504 += 1
        else:
            self.cur.r502 += 1

    def close_second(self, second: int) -> None:
        done, self.cur = self.cur, Counts()
        if done.requests:
            self.total.add(done)
        self.ring.append((second, done))


class _UncountedSeries(Series):
    """What a registry with metrics switched off hands out (``SLUICE_ROUTER_METRICS=0``, to
    measure their cost): the same call on the hot path, no counting."""

    __slots__ = ()

    def record(self, status: int, latency: float) -> None:
        return None

    def record_router_error(self, status: int, latency: float) -> None:
        return None


class MetricsRegistry:
    """All series of one process, rotated once a second by the data plane's tick."""

    def __init__(self, window_seconds: int = 300, enabled: bool = True) -> None:
        self.window = window_seconds
        self.enabled = enabled
        self.series: dict[SeriesKey, Series] = {}
        self.current_second = 0

    def get(self, listener: str, target_group: str) -> Series:
        key = SeriesKey(listener, target_group)
        s = self.series.get(key)
        if s is None:
            cls = Series if self.enabled else _UncountedSeries
            s = self.series[key] = cls(key, self.window)
        return s

    def rotate(self, second: int) -> None:
        """Close the current second for every series; called when the wall second changes."""
        if self.current_second == 0:
            self.current_second = second
            return
        closing = self.current_second
        for s in self.series.values():
            s.close_second(closing)
        self.current_second = second

    def snapshot(self, window: int) -> dict[str, Any]:
        """Closed seconds within ``window`` plus running totals, JSON-ready and mergeable.

        ``open`` is the current, still-counting second: the canary guard judges it too (half
        a second sooner on average), alarms use only closed seconds."""
        since = self.current_second - window
        out = []
        for s in self.series.values():
            total = Counts()
            total.add(s.total)
            total.add(s.cur)
            seconds = [[t, c.to_json()] for t, c in s.ring if t >= since and c.requests]
            out.append(
                {
                    "listener": s.key.listener,
                    "target_group": s.key.target_group,
                    "total": total.to_json(),
                    "seconds": seconds,
                    "open": s.cur.to_json(),
                }
            )
        return {"current_second": self.current_second, "series": out}


def merge_snapshots(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum snapshots from several worker processes, series by series and second by second."""
    totals: dict[tuple[str, str], Counts] = {}
    seconds: dict[tuple[str, str], dict[int, Counts]] = {}
    opened: dict[tuple[str, str], Counts] = {}
    current = 0
    for snap in snapshots:
        current = max(current, int(snap["current_second"]))
        for s in snap["series"]:
            key = (s["listener"], s["target_group"])
            totals.setdefault(key, Counts()).add(Counts.from_json(s["total"]))
            per = seconds.setdefault(key, {})
            for t, c in s["seconds"]:
                per.setdefault(int(t), Counts()).add(Counts.from_json(c))
            opened.setdefault(key, Counts()).add(Counts.from_json(s["open"]))
    series = [
        {
            "listener": k[0],
            "target_group": k[1],
            "total": totals[k].to_json(),
            "seconds": [[t, c.to_json()] for t, c in sorted(seconds[k].items())],
            "open": opened.get(k, Counts()).to_json(),
        }
        for k in sorted(totals)
    ]
    return {"current_second": current, "series": series}
