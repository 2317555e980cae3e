"""The controller's alarm check: the service's guarding alarms first, then the default guards.

A deployment is rolled back when an alarm of its service with ``guard: true`` is in ALARM
(CodeDeploy's alarm configuration): a metric alarm from the service spec, or an external one
(Alertmanager). An alarm that names ``{green}``/``{blue}`` counts only once the alarm loop
has bound it to *this* deployment's revisions, so a state reached on the previous revision's
numbers never rolls back a new one. Otherwise the default green-vs-blue guards decide.

The firing text is ``alarm shop/high-5xx: <reason>`` (the lifecycle's rollback event reads
``guard fired: alarm shop/high-5xx: <reason>``); the reason lists the datapoints. Beside it, a
``deployment.alarm_evidence`` event on the deployment carries the alarm's name, reason and
datapoints as data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sluicegate.errors import NotFoundError
from sluicegate.store import Alarm, Deployment, Store

__all__ = ["AlarmCheck", "AlarmGuards", "alarm_lookup"]

AlarmCheck = Callable[[Deployment], Awaitable[str | None]]


def _firing(alarm: Alarm) -> str:
    """How a firing alarm reads in a rollback's reason (deployments and flag rollouts)."""
    return f"alarm {alarm.id}: {alarm.reason.rstrip('.')}"


def alarm_lookup(store: Store) -> Callable[[str], Awaitable[str | None]]:
    """A flag rollout's alarm seam: ``await lookup("shop/high-5xx")`` is the firing reason when
    that alarm is in ALARM, else None; NotFoundError for a name that is not an alarm. As for
    deployments, INSUFFICIENT_DATA does not roll back (AppConfig's does; ours waits)."""

    async def lookup(name: str) -> str | None:
        service, sep, alarm_name = name.partition("/")
        if not sep or not service or not alarm_name:
            raise NotFoundError(f"alarm {name!r} not found: alarms are named <service>/<alarm>")
        alarm = store.alarms.get(service, alarm_name)
        return _firing(alarm) if alarm.state == "ALARM" else None

    return lookup


class AlarmGuards:
    """An ``AlarmCheck``: the first guarding alarm in ALARM, else ``default`` (may be None)."""

    def __init__(self, store: Store, default: AlarmCheck | None = None) -> None:
        self.store = store
        self.default = default
        self._noted: set[tuple[str, str]] = set()  # (deployment, alarm) with evidence recorded

    async def __call__(self, dep: Deployment) -> str | None:
        for alarm in self.store.alarms.list(dep.service):
            if alarm.guard and alarm.state == "ALARM" and _judges(alarm, dep):
                self._evidence(dep, alarm)
                return _firing(alarm)
        if self.default is not None:
            return await self.default(dep)
        return None

    def _evidence(self, dep: Deployment, alarm: Alarm) -> None:
        key = (dep.id, alarm.id)
        if key in self._noted or not dep.active:
            return
        self._noted.add(key)
        self.store.events.append(
            "deployment.alarm_evidence",
            dep.id,
            f"alarm {alarm.id} is in ALARM: {alarm.reason}",
            actor="monitor",
            data={
                "alarm": alarm.id,
                "state": alarm.state,
                "reason": alarm.reason,
                "state_changed_at": alarm.state_changed_at,
                "datapoints": alarm.evaluation.get("datapoints", []),
                "firing": alarm.evaluation.get("firing", []),
            },
        )


def _judges(alarm: Alarm, dep: Deployment) -> bool:
    """Whether the alarm's state is about this deployment's revisions (or about no revision)."""
    if not alarm.binding.get("revision_bound"):
        return True
    return alarm.binding.get("deployment") == dep.id
