"""Default guards: every deployment is judged green-against-blue without configuration.

Each check compares the new revision's target group with the old one's over the same
seconds in which green had traffic (error proportion and latency, ``canary.judge``),
including the router's current second so far, so a bad release is seen within a fraction
of a second of its first failures. A FAIL makes the guard fire; the controller then rolls
back at once. INCONCLUSIVE never fires, and :meth:`DefaultGuards.hold` keeps a canary step
from moving on while the verdict is INCONCLUSIVE ("never promote on no data").

The judgement runs several times a second over a sliding window, so one FAIL is not enough:
the guard fires when the verdict has stayed FAIL for ``confirm`` seconds (0.5 s) and over
more green requests than the first FAIL saw. A verdict that is FAIL only for one unlucky
reading of the open second does not roll back; a bad release costs half a second more.

Beside it runs a sequential test of the error proportion (``canary.judge_errors_sequential``)
while the window still holds all of green's traffic: its false-FAIL bound holds however
often it is checked, so it fires at once, typically after green's second or third failure.
Choosing its alpha (0.5 %) and effect (+20 pt): ``bench/guard_rule_sim.py`` replays the
blast-radius scenario's traffic thousands of times (numbers in ``docs/monitor.md``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from sluicegate.clock import Clock, SystemClock
from sluicegate.monitor.canary import (
    DEFAULT_SEQUENTIAL_ALPHA,
    DEFAULT_SEQUENTIAL_EFFECT,
    GroupCounts,
    Judgement,
    Outcome,
    judge,
    judge_errors_sequential,
)
from sluicegate.monitor.sources import MetricSource, Second
from sluicegate.router.traffic import group_name
from sluicegate.store import Deployment

__all__ = ["DefaultGuards", "paired_counts"]

log = logging.getLogger(__name__)


def _clock_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"


def paired_counts(
    green: Sequence[Second], blue: Sequence[Second]
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
    """An ``AlarmCheck`` for the controller: the name and evidence of a firing guard, or None.
    Also a ``HoldCheck``: why a canary step must wait (no verdict yet), or None."""

    # Defaults chosen after the first blast-radius runs: at 99 % and a 10 % latency tolerance,
    # fresh (cold) replicas on a noisy 2-core machine failed the latency test in healthy runs.
    # A guard that rolls back must be sure; the error test stays fast on a clearly bad release.
    # Sub-millisecond proxies made relative tolerance alone too strict: the demo's good v2
    # (p50 0.30 ms vs blue's 0.17 ms, +81 %, on a busy machine) was rolled back, hence 5 ms
    # of absolute slack on top.
    def __init__(
        self,
        source: MetricSource,
        window: int = 60,
        confidence: float = 0.999,
        tolerated_latency_increase: float = 0.5,
        latency_slack: float = 0.005,
        confirm: float = 0.5,
        sequential_alpha: float | None = DEFAULT_SEQUENTIAL_ALPHA,
        sequential_effect: float = DEFAULT_SEQUENTIAL_EFFECT,
        clock: Clock | None = None,
    ) -> None:
        self.source = source
        self.window = window
        self.confidence = confidence
        self.tolerated_latency_increase = tolerated_latency_increase
        self.latency_slack = latency_slack
        self.confirm = confirm
        self.sequential_alpha = sequential_alpha  # None: no sequential test
        self.sequential_effect = sequential_effect
        self.clock = clock or SystemClock()
        self.last: dict[str, Judgement] = {}
        self._failing: dict[str, tuple[float, int]] = {}  # deployment -> (since, green total)
        self._first_green: dict[str, int] = {}  # deployment -> green's first second of traffic

    async def __call__(self, dep: Deployment) -> str | None:
        if dep.from_revision is None or not dep.active:
            self.last.pop(dep.id, None)
            self._failing.pop(dep.id, None)
            self._first_green.pop(dep.id, None)
            return None  # a first deployment has nothing to compare with
        series = await self.source.seconds(dep.service, self.window)
        green = series.get(group_name(dep.service, dep.revision), [])
        blue = series.get(group_name(dep.service, dep.from_revision), [])
        g, b = paired_counts(green, blue)
        verdict = judge(
            g,
            b,
            confidence=self.confidence,
            error_label="5xx",
            tolerated_latency_increase=self.tolerated_latency_increase,
            latency_slack=self.latency_slack,
        )
        self.last[dep.id] = verdict
        sequential = self._sequential(dep.id, green, g, b)
        if sequential is not None and sequential.outcome is Outcome.FAIL:
            return f"default canary guard, sequential test ({sequential.detail})"
        if verdict.outcome is not Outcome.FAIL:
            self._failing.pop(dep.id, None)
            return None
        now = self.clock.now()
        since, seen = self._failing.setdefault(dep.id, (now, g.total))
        if now - since >= self.confirm and g.total > seen:
            return (
                f"default canary guard, FAIL for {now - since:.2f}s since"
                f" {_clock_time(since)} ({verdict.detail})"
            )
        return None

    def _sequential(
        self, dep_id: str, green: Sequence[Second], g: GroupCounts, b: GroupCounts
    ) -> Judgement | None:
        """The sequential test, while the window holds all of green's traffic (its bound
        is for data since the start, not for a sliding window); None when it is off."""
        if self.sequential_alpha is None:
            return None
        first = next((s.t for s in green if s.requests), None)
        if first is None:
            return None
        if self._first_green.setdefault(dep_id, first) != first:
            return None  # green's first seconds have left the window
        return judge_errors_sequential(
            g.errors,
            g.total,
            b.errors,
            b.total,
            alpha=self.sequential_alpha,
            effect=self.sequential_effect,
            label="5xx",
        )

    def hold(self, dep: Deployment) -> str | None:
        """Why ``dep`` must not move to its next step yet: its last verdict was INCONCLUSIVE."""
        verdict = self.last.get(dep.id)
        if (
            dep.from_revision is None
            or verdict is None
            or verdict.outcome is not Outcome.INCONCLUSIVE
        ):
            return None
        return f"default canary guard has no verdict yet ({verdict.detail})"
