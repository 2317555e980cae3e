"""Alarm bookkeeping in the store: state changes with their events, the spec's alarm set,
and what ``{green}``/``{blue}`` mean for a service right now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluicegate.monitor.alarms import AlarmState
from sluicegate.router.traffic import group_name
from sluicegate.spec import ServiceSpec
from sluicegate.store import Alarm, DeclaredAlarm, Store, SyncResult, Transaction

__all__ = ["binding_for", "record_state", "sync_alarms", "sync_alarms_in"]

_UNSET: Any = object()


def binding_for(store: Store, service: str) -> dict[str, Any]:
    """Placeholder values for ``service``: green is the revision being deployed, else the
    current one; blue the one before it (None when there is none)."""
    dep = store.deployments.active_for(service)
    deployment = dep.id if dep is not None else None
    if dep is None:
        dep = next((d for d in store.deployments.list(service) if d.phase == "succeeded"), None)
    green = dep.revision if dep is not None else None
    blue = dep.from_revision if dep is not None else None
    return {
        "service": service,
        "deployment": deployment,
        "green": group_name(service, green) if green else None,
        "blue": group_name(service, blue) if blue else None,
        "green_revision": green,
        "blue_revision": blue,
    }


def record_state(
    store: Store,
    alarm: Alarm,
    *,
    state: AlarmState,
    reason: str,
    now: float,
    evaluation: Mapping[str, Any] | None = None,
    binding: Mapping[str, Any] | None = None,
    error_since: float | None = None,
    forced_until: float | None = _UNSET,
    actor: str = "monitor",
    forced: bool = False,
) -> AlarmState | None:
    """Store the alarm's new state and reason in one transaction with its events; the state
    it had before when that changed, else None. Events: ``alarm.state`` on a change (always
    when ``forced``: a person's SetAlarmState is worth a line), ``alarm.source_error`` when
    errors begin."""
    with store.transaction() as tx:
        extra: dict[str, Any] = {}
        if forced_until is not _UNSET:
            extra["forced_until"] = forced_until
        before, after = tx.alarms.update(
            alarm.service,
            alarm.name,
            state=state.value,
            reason=reason,
            evaluation=evaluation,
            binding=binding,
            evaluated_at=now if evaluation is not None else None,
            error_since=error_since,
            **extra,
        )
        changed = before.state != after.state
        if changed or forced:
            data: dict[str, Any] = {
                "old_state": before.state,
                "new_state": after.state,
                "datapoints": (evaluation or {}).get("datapoints", []),
            }
            for key in ("breaching_count", "end", "firing"):
                if evaluation and key in evaluation:
                    data[key] = evaluation[key]
            if forced:
                data["forced"] = True
            tx.events.append("alarm.state", alarm.id, reason, actor=actor, at=now, data=data)
        if error_since is not None and before.error_since is None:
            tx.events.append(
                "alarm.source_error",
                alarm.id,
                reason,
                actor=actor,
                at=now,
                data={"state": after.state},
            )
    return AlarmState(before.state) if changed else None


def sync_alarms(store: Store, spec: ServiceSpec, actor: str) -> SyncResult:
    """Make the store's metric alarms of ``spec.service`` follow the spec; events for each
    alarm created, changed or deleted."""
    with store.transaction() as tx:
        return sync_alarms_in(tx, spec, actor)


def sync_alarms_in(tx: Transaction, spec: ServiceSpec, actor: str) -> SyncResult:
    """:func:`sync_alarms` inside the caller's transaction (with the spec it stores)."""
    declared = [DeclaredAlarm(a.name, a.model_dump(mode="json"), a.guard) for a in spec.alarms]
    result = tx.alarms.sync(spec.service, declared)
    for verb, names in (
        ("created", result.created),
        ("updated", result.updated),
        ("deleted", result.deleted),
    ):
        for name in names:
            tx.events.append(
                f"alarm.{verb}",
                f"{spec.service}/{name}",
                f"alarm {spec.service}/{name} {verb}",
                actor=actor,
            )
    return result
