"""Default guards: every deployment is judged green-against-blue without configuration.

Each check compares the new revision's target group with the old one's over the same closed
seconds in which green had traffic (error proportion and latency, ``canary.judge``). A FAIL
makes the guard fire; the controller then rolls back at once. INCONCLUSIVE never fires (and
the lifecycle never promotes on it either: steps keep their pauses).

The judgement runs several times a second over a sliding window, so one FAIL is not enough:
the guard fires when the verdict is FAIL at two different newest seconds in a row (about one
second more to detect, far fewer false rollbacks from repeated testing).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from sluicegate.monitor.canary import GroupCounts, Judgement, Outcome, judge
from sluicegate.monitor.sources import MetricSource, Second
from sluicegate.router.traffic import group_name
from sluicegate.store import Deployment

__all__ = ["DefaultGuards", "paired_counts"]

log = logging.getLogger("sluicegate.monitor")


def paired_counts(green: Sequence[Second], blue: Sequence[Second]
                  ) -> tuple[GroupCounts, GroupCounts]:
    """Sum both groups over the seconds in which green served requests (pure)."""
    seconds = {s.t for s in green if s.requests}
    totals = []
    for series in (green, blue):
        errors = total = 0
        hist: Counter[int] = Counter()
        for s in series:
            if s.t in seconds:
                errors += s.errors
                total += s.requests
                hist.update(s.hist)
        totals.append(GroupCounts(errors=errors, total=total, latency=dict(hist)))
    return totals[0], totals[1]


class DefaultGuards:
    """An ``AlarmCheck`` for the controller: the name and evidence of a firing guard, or None."""

    # Defaults chosen after the first blast-radius runs: at 99 % and a 10 % latency tolerance,
    # fresh (cold) replicas on a noisy 2-core machine failed the latency test in healthy runs.
    # A guard that rolls back must be sure; the error test stays fast on a clearly bad release.
    def __init__(self, source: MetricSource, window: int = 60, confidence: float = 0.999,
                 tolerated_latency_increase: float = 0.5) -> None:
        self.source = source
        self.window = window
        self.confidence = confidence
        self.tolerated_latency_increase = tolerated_latency_increase
        self.last: dict[str, Judgement] = {}
        self._failing_since: dict[str, int] = {}  # deployment -> newest second of a FAIL

    async def __call__(self, dep: Deployment) -> str | None:
        if dep.from_revision is None or not dep.active:
            return None  # a first deployment has nothing to compare with
        series = await self.source.seconds(dep.service, self.window)
        green = series.get(group_name(dep.service, dep.revision), [])
        blue = series.get(group_name(dep.service, dep.from_revision), [])
        g, b = paired_counts(green, blue)
        verdict = judge(g, b, confidence=self.confidence, error_label="5xx",
                        tolerated_latency_increase=self.tolerated_latency_increase)
        self.last[dep.id] = verdict
        newest = green[-1].t if green else 0
        if verdict.outcome is not Outcome.FAIL:
            self._failing_since.pop(dep.id, None)
            return None
        first = self._failing_since.setdefault(dep.id, newest)
        if newest > first:
            return f"default canary guard ({verdict.detail})"
        return None
