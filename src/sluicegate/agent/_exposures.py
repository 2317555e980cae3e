"""Exposure reports (pure): what the agent evaluated since its last delivered report.

The agent's evaluation counters (``AgentMetrics.evaluations``, flag x variant -> count since
start) only ever grow. The ledger remembers how much of each counter the server has
acknowledged; a report is the difference, numbered (``seq``, 1, 2, ...). A report that was
not acknowledged is sent again unchanged, with its number: the server may have stored it
and lost only its answer, and it stores each number once. Everything counted meanwhile
stays in the difference and goes out merged in the report after it, so after an outage of
any length the backlog takes two reports, and nothing is counted twice or lost while the
agent runs. The ledger keeps one number per counter, so it is bounded by the counters
themselves (flags x variants served, plus one ``error:CODE`` variant per error code); a
report carries at most ``max_keys`` of them (the largest first), the rest go out in the
following report.
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
    """Evaluations per (flag, variant) counted in the wall-clock span [start, end]; ``seq``
    numbers the ledger's reports from 1."""

    seq: int
    start: float
    end: float
    counts: dict[Key, int]

    def body(self, agent: str, instance: str) -> dict[str, Any]:
        """The JSON body of ``POST /v1/flags/{env}/exposures`` (``instance``: this agent
        process, so its report numbers are told apart from a restarted one's)."""
        return {
            "agent": agent,
            "instance": instance,
            "seq": self.seq,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "counts": [
                {"flag": flag, "variant": variant, "count": n}
                for (flag, variant), n in sorted(self.counts.items())
            ],
        }

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
        self._seq = 0  # number of the newest report made
        self._unacked: ExposureReport | None = None

    def take(self, totals: Mapping[Key, int], now: float) -> ExposureReport | None:
        """The report to send now: the unacknowledged one again, else the new counts, else
        None (then the next report's span starts now). ``totals`` is read, never kept."""
        if self._unacked is not None:
            return self._unacked
        acked = self._acked
        deltas = {k: n - acked.get(k, 0) for k, n in totals.items() if n > acked.get(k, 0)}
        if not deltas:
            self._since = max(self._since, now)
            return None
        if len(deltas) > self.max_keys:
            largest = sorted(deltas.items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_keys]
            deltas = dict(largest)
        self._seq += 1
        self._unacked = ExposureReport(self._seq, self._since, max(self._since, now), deltas)
        return self._unacked

    def ack(self, report: ExposureReport) -> None:
        """The server stored ``report`` (or had stored it): its counts are no longer owed."""
        if report is not self._unacked:
            raise ValueError(f"report {report.seq} is not the one awaiting an answer")
        self._unacked = None
        acked = self._acked
        for key, n in report.counts.items():
            acked[key] = acked.get(key, 0) + n
        self._since = max(self._since, report.end)

    def pending(self, totals: Mapping[Key, int]) -> int:
        """Evaluations counted but not yet acknowledged."""
        acked = self._acked
        return sum(n - acked.get(k, 0) for k, n in totals.items())
