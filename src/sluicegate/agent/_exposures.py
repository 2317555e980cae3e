"""Exposure reports (pure): what the agent evaluated since its last delivered report.

The agent's evaluation counters (``AgentMetrics.evaluations``, flag x variant -> count since
start) only ever grow. The ledger remembers how much of each counter the server has
acknowledged; a report is the difference. A report that fails is simply not acknowledged,
so its counts are still in the difference next time: failed reports merge into the next one
and nothing is counted twice or lost while the agent runs. The ledger keeps one number per
counter, so it is bounded by the counters themselves (flags x variants served, plus one
``error:CODE`` variant per error code); a report carries at most ``max_keys`` of them (the
largest first), the rest go out in the following report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_KEYS", "ExposureLedger", "ExposureReport"]

#: Flag x variant pairs in one report; the server refuses longer lists.
MAX_KEYS = 1000

Key = tuple[str, str]  # (flag, variant)


@dataclass(frozen=True)
class ExposureReport:
    """Evaluations per (flag, variant) counted in the wall-clock span [start, end]."""

    start: float
    end: float
    counts: dict[Key, int]

    def body(self, agent: str) -> dict[str, Any]:
        """The JSON body of ``POST /v1/flags/{env}/exposures``."""
        return {"agent": agent, "start": round(self.start, 3), "end": round(self.end, 3),
                "counts": [{"flag": flag, "variant": variant, "count": n}
                           for (flag, variant), n in sorted(self.counts.items())]}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class ExposureLedger:
    """Turns ever-growing counters into reports of what the server has not acknowledged."""

    def __init__(self, started: float, max_keys: int = MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._acked: dict[Key, int] = {}
        self._since = started  # start of the span the next report covers

    def take(self, totals: Mapping[Key, int], now: float) -> ExposureReport | None:
        """The report to send now, or None when nothing new was counted (then the next
        report's span starts now). ``totals`` is read, never kept."""
        acked = self._acked
        deltas = {k: n - acked.get(k, 0) for k, n in totals.items() if n > acked.get(k, 0)}
        if not deltas:
            self._since = max(self._since, now)
            return None
        if len(deltas) > self.max_keys:
            largest = sorted(deltas.items(), key=lambda kv: (-kv[1], kv[0]))[:self.max_keys]
            deltas = dict(largest)
        return ExposureReport(self._since, max(self._since, now), deltas)

    def ack(self, report: ExposureReport) -> None:
        """The server stored ``report``: its counts are no longer owed."""
        acked = self._acked
        for key, n in report.counts.items():
            acked[key] = acked.get(key, 0) + n
        self._since = max(self._since, report.end)

    def pending(self, totals: Mapping[Key, int]) -> int:
        """Evaluations counted but not yet acknowledged."""
        acked = self._acked
        return sum(n - acked.get(k, 0) for k, n in totals.items())
