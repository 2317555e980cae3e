"""The last minute of a listener's seconds, kept up to date with small reads.

The canary guard judges several times a second. Reading the router's whole window each time
would ship the same closed seconds again and again; this keeps the closed ones and asks the
router only for what is new, plus the current (open) second, which changes on every read.
"""

from __future__ import annotations

import math

from sluicegate.clock import Clock
from sluicegate.monitor.sources import RouterSource, Second

__all__ = ["RecentSeconds"]

#: Seconds re-read on every call besides the time since the last read: a second closes in the
#: router a little after the wall clock turns, so the newest closed one may arrive late.
_OVERLAP = 2


class RecentSeconds:
    """``MetricSource`` over a ``RouterSource``: closed seconds within ``window`` plus the open
    one last, oldest first, read incrementally."""

    def __init__(self, source: RouterSource, clock: Clock) -> None:
        self.source = source
        self.clock = clock
        self._closed: dict[str, dict[str, dict[int, Second]]] = {}  # listener -> group -> t
        self._read_at: dict[str, float] = {}

    async def seconds(self, listener: str, window: int) -> dict[str, list[Second]]:
        now = self.clock.now()
        last = self._read_at.get(listener)
        ask = window if last is None else min(window, math.ceil(now - last) + _OVERLAP)
        fresh = await self.source.seconds(listener, max(ask, 1), include_open=True)
        self._read_at[listener] = now
        groups = self._closed.setdefault(listener, {})
        opened: dict[str, Second] = {}
        for group, points in fresh.items():
            kept = groups.setdefault(group, {})
            for p in points:
                if p.open:
                    opened[group] = p
                else:
                    kept[p.t] = p
        oldest = math.floor(now) - window
        out: dict[str, list[Second]] = {}
        for group, kept in groups.items():
            for t in [t for t in kept if t < oldest]:
                del kept[t]
            series = [kept[t] for t in sorted(kept)]
            if group in opened:
                series.append(opened[group])
            if series:
                out[group] = series
        return out

    def forget(self, listener: str) -> None:
        """Drop what is kept for ``listener`` (its deployment ended)."""
        self._closed.pop(listener, None)
        self._read_at.pop(listener, None)
