"""The alarm loop: evaluate every alarm when its period closes, record each transition.

Every second, just after the wall-clock second turns (``offset``, 0.2 s: the router closes a
second within a millisecond), :meth:`AlarmEngine.tick` evaluates each metric alarm whose
period has closed since its last evaluation: bind its placeholders to the service's green
and blue, fetch ``evaluation_range`` datapoints per metric through :class:`Sources`,
``combine``, ``evaluate`` with CloudWatch's rules, and store the result. A state change is
an ``alarm.state`` event (subject ``shop/high-5xx``, message the reason, data old/new state
and the datapoints) written in the same transaction as the new state.

When green or blue changes (a deployment starts, or is rolled back), an alarm naming them
watches other series: they are evaluated afresh (as from INSUFFICIENT_DATA), so a state
reached on the old revision's numbers never judges the new one, and only the outcome is
recorded: a re-binding whose numbers tell the same is no ``alarm.state`` event.

A metric source that fails leaves the state as it is, with the error as the reason, until it
has failed for the alarm's whole evaluation range (period x (N + 2)); then the alarm is
INSUFFICIENT_DATA. Nothing an alarm does stops the loop.

:meth:`AlarmEngine.set_state` is CloudWatch's SetAlarmState: the forced state stands until
the alarm's next evaluation at least one period (and 1 s) later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluicegate.clock import Clock
from sluicegate.errors import ConflictError, SluicegateError
from sluicegate.monitor._alarm_records import binding_for, record_state
from sluicegate.monitor.alarms import (
    AlarmState,
    Datapoint,
    Evaluation,
    combine,
    evaluate,
    evaluation_range,
    period_starts,
)
from sluicegate.monitor.sources import Sources
from sluicegate.spec import ServiceAlarmSpec, bind_alarm
from sluicegate.store import Alarm, Store

__all__ = ["AlarmEngine", "Recorded"]

log = logging.getLogger(__name__)

_REVISION_PLACEHOLDERS = frozenset({"green", "blue", "green_revision", "blue_revision"})


@dataclass(frozen=True)
class Recorded:
    """A state change the engine recorded (what :meth:`AlarmEngine.tick` returns)."""

    alarm: str
    old: AlarmState
    new: AlarmState
    reason: str


class AlarmEngine:
    """Evaluates the store's metric alarms against ``sources``; ``tick(now)`` is one round."""

    def __init__(self, store: Store, sources: Sources, clock: Clock, offset: float = 0.2) -> None:
        self.store = store
        self.sources = sources
        self.clock = clock
        self.offset = offset
        self._done: dict[str, int] = {}  # alarm id -> end of the newest period evaluated
        self._specs: dict[str, tuple[str, ServiceAlarmSpec]] = {}  # id -> (json, parsed)

    # -- the loop -----------------------------------------------------------------------------

    async def wait_next(self) -> None:
        """Until ``offset`` seconds after the next wall-clock second (the supervisor's wait)."""
        now = self.clock.now()
        target = math.floor(now) + self.offset
        if target <= now:
            target += 1
        await asyncio.sleep(target - now)

    async def tick(self, now: float) -> list[Recorded]:
        """Evaluate every metric alarm whose period closed since its last evaluation."""
        alarms = [a for a in self.store.alarms.list() if a.kind == "metric"]
        self._forget({a.id for a in alarms})
        bindings: dict[str, dict[str, Any]] = {}
        due = []
        for alarm in alarms:
            if alarm.forced_until is not None and now < alarm.forced_until:
                continue
            try:
                spec = self._spec(alarm)
            except ValueError as exc:  # stored by an older version, say
                log.error("alarm %s has an invalid spec: %s", alarm.id, exc)
                continue
            period = int(spec.period)
            end = int(now) // period * period
            if self._done.get(alarm.id) == end:
                continue
            if alarm.service not in bindings:
                bindings[alarm.service] = binding_for(self.store, alarm.service)
            due.append((alarm, spec, end, bindings[alarm.service]))
        results = await asyncio.gather(*(self._guarded(a, s, e, b, now) for a, s, e, b in due))
        return [r for rs in results for r in rs]

    async def _guarded(
        self, alarm: Alarm, spec: ServiceAlarmSpec, end: int, binding: dict[str, Any], now: float
    ) -> list[Recorded]:
        try:
            out = await self._evaluate(alarm, spec, end, binding, now)
        except Exception as exc:
            if not isinstance(exc, SluicegateError):
                log.exception("alarm %s: evaluation failed", alarm.id)
            try:
                out = self._source_failed(alarm, spec, exc, now)
            except Exception:
                log.exception("alarm %s: recording its failure failed", alarm.id)
                return []
        self._done[alarm.id] = end
        return out

    # -- one alarm ------------------------------------------------------------------------------

    async def _evaluate(
        self, alarm: Alarm, spec: ServiceAlarmSpec, end: int, binding: dict[str, Any], now: float
    ) -> list[Recorded]:
        bound_to = _bound_to(spec, binding)
        rebound = bool(
            bound_to["revision_bound"]
            and alarm.binding
            and _watched(alarm.binding) != _watched(bound_to)
        )
        # Re-bound: the state was reached on other series and must not judge these ones, so
        # they are evaluated afresh (as from INSUFFICIENT_DATA); only the outcome is recorded,
        # so a re-binding whose numbers tell the same is no state change at all.
        previous = AlarmState.INSUFFICIENT_DATA if rebound else AlarmState(alarm.state)
        values = {k: v for k, v in binding.items() if k != "deployment"}
        bound, unbound = bind_alarm(spec, values)
        period, count = int(spec.period), evaluation_range(spec)
        ids = list(bound.queries)
        fetched = await asyncio.gather(
            *(self._series(bound, i, unbound, end, period, count) for i in ids)
        )
        datapoints = combine(bound, dict(zip(ids, fetched, strict=True)))
        evaluation = evaluate(bound, datapoints, previous)
        reason = evaluation.reason
        if rebound:
            reason += (
                f" Now watching {_describe(bound_to)}; the earlier state was reached on"
                f" {_describe(alarm.binding)}."
            )
        return self._record(
            alarm,
            evaluation.state,
            reason,
            now,
            binding=bound_to,
            evaluation=_evaluation_json(evaluation, datapoints, end),
        )

    async def _series(
        self,
        spec: ServiceAlarmSpec,
        metric_id: str,
        unbound: frozenset[str],
        end: int,
        period: int,
        count: int,
    ) -> list[Datapoint]:
        if metric_id in unbound:
            return [Datapoint(t, None, 0) for t in period_starts(end, period, count)]
        metric, statistic = spec.queries[metric_id]
        return await self.sources.datapoints(metric, statistic, end=end, period=period, count=count)

    def _record(
        self,
        alarm: Alarm,
        state: AlarmState,
        reason: str,
        now: float,
        *,
        binding: dict[str, Any],
        evaluation: dict[str, Any] | None = None,
    ) -> list[Recorded]:
        before = record_state(
            self.store,
            alarm,
            state=state,
            reason=reason,
            now=now,
            evaluation=evaluation if evaluation is not None else {},
            binding=binding,
            error_since=None,
            forced_until=None,
        )
        return [] if before is None else [Recorded(alarm.id, before, state, reason)]

    def _source_failed(
        self, alarm: Alarm, spec: ServiceAlarmSpec, exc: Exception, now: float
    ) -> list[Recorded]:
        current = self.store.alarms.get(alarm.service, alarm.name)
        since = current.error_since if current.error_since is not None else now
        limit = spec.period * evaluation_range(spec)
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if now - since >= limit:
            reason = (
                f"Insufficient Data: the metric source has failed for {now - since:.0f}s"
                f" (the whole evaluation range): {what}"
            )
            state = AlarmState.INSUFFICIENT_DATA
        else:
            reason = (
                f"Unchanged: cannot read the metric source ({what}); the alarm stays"
                f" {current.state} until it can, for at most {limit:g}s."
            )
            state = AlarmState(current.state)
        before = record_state(
            self.store, current, state=state, reason=reason, now=now, error_since=since
        )
        return [] if before is None else [Recorded(alarm.id, before, state, reason)]

    # -- by hand ----------------------------------------------------------------------------------

    def set_state(self, service: str, name: str, state: str, reason: str, actor: str) -> Alarm:
        """Force an alarm's state (SetAlarmState): it stands until the alarm's next
        evaluation at least one period (and at least 1 s) from now. An event either way."""
        new = AlarmState(state)
        alarm = self.store.alarms.get(service, name)
        now = self.clock.now()
        hold: float | None = None
        if alarm.kind == "metric":
            hold = now + max(self._spec(alarm).period, 1.0)
        record_state(
            self.store,
            alarm,
            state=new,
            reason=reason,
            now=now,
            forced_until=hold,
            actor=actor,
            forced=True,
        )
        self._done.pop(alarm.id, None)
        return self.store.alarms.get(service, name)

    def set_external(
        self,
        service: str,
        name: str,
        state: AlarmState,
        reason: str,
        evaluation: Mapping[str, Any],
        actor: str,
    ) -> Alarm:
        """Set an external alarm (created on first sight, guarding); an event on change."""
        alarm = self.store.alarms.ensure_external(service, name)
        if alarm.kind != "external":
            raise ConflictError(f"alarm {alarm.id} is a metric alarm of the service spec")
        record_state(
            self.store,
            alarm,
            state=state,
            reason=reason,
            now=self.clock.now(),
            evaluation=evaluation,
            actor=actor,
        )
        return self.store.alarms.get(service, name)

    # -- helpers ----------------------------------------------------------------------------------

    def _spec(self, alarm: Alarm) -> ServiceAlarmSpec:
        raw = json.dumps(alarm.spec, sort_keys=True)
        cached = self._specs.get(alarm.id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        spec = ServiceAlarmSpec.model_validate(alarm.spec)
        self._specs[alarm.id] = (raw, spec)
        return spec

    def _forget(self, ids: set[str]) -> None:
        for gone in set(self._done) - ids:
            del self._done[gone]
        for gone in set(self._specs) - ids:
            del self._specs[gone]


def _bound_to(spec: ServiceAlarmSpec, binding: Mapping[str, Any]) -> dict[str, Any]:
    """What the alarm watches now: green/blue groups and the deployment, if it names them."""
    if not spec.placeholders() & _REVISION_PLACEHOLDERS:
        return {"revision_bound": False}
    return {
        "revision_bound": True,
        "green": binding.get("green"),
        "blue": binding.get("blue"),
        "deployment": binding.get("deployment"),
    }


def _watched(bound: Mapping[str, Any]) -> tuple[Any, Any]:
    return bound.get("green"), bound.get("blue")


def _describe(bound: Mapping[str, Any]) -> str:
    green, blue = bound.get("green") or "-", bound.get("blue") or "-"
    dep = bound.get("deployment")
    return f"green {green}, blue {blue}" + (f" (deployment {dep})" if dep else "")


def _evaluation_json(evaluation: Evaluation, fetched: list[Datapoint], end: int) -> dict[str, Any]:
    """What is kept of an evaluation: the datapoints it judged (``datapoints``) and the
    whole range it read (``range``, missing ones included)."""
    data = evaluation.to_json()
    data["end"] = end
    data["range"] = [
        {"timestamp": p.timestamp, "value": p.value, "samples": p.samples} for p in fetched
    ]
    return data
