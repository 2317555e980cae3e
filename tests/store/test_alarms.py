"""Alarm records: they follow the service spec, keep their state across applies, and die
with their service."""

from __future__ import annotations

import pytest

from sluicegate.clock import ManualClock
from sluicegate.errors import NotFoundError
from sluicegate.store import DeclaredAlarm, Store

SPEC = {"name": "x", "period": 10.0}


def declared(*names: str, guard: bool = True) -> list[DeclaredAlarm]:
    return [DeclaredAlarm(n, {**SPEC, "name": n}, guard) for n in names]


def test_sync_creates_new_alarms_in_insufficient_data(store: Store) -> None:
    store.services.put("shop", {})
    result = store.alarms.sync("shop", declared("high-5xx", "slow"))
    assert (result.created, result.deleted) == (("high-5xx", "slow"), ())
    alarms = store.alarms.list("shop")
    assert [(a.id, a.kind, a.state, a.guard) for a in alarms] == [
        ("shop/high-5xx", "metric", "INSUFFICIENT_DATA", True),
        ("shop/slow", "metric", "INSUFFICIENT_DATA", True),
    ]
    assert alarms[0].reason.startswith("Unchecked")


def test_a_later_sync_keeps_the_state_of_kept_alarms_and_deletes_removed_ones(
    store: Store, clock: ManualClock
) -> None:
    store.services.put("shop", {})
    store.alarms.sync("shop", declared("high-5xx", "slow"))
    clock.advance(5)
    before, after = store.alarms.update(
        "shop",
        "high-5xx",
        state="ALARM",
        reason="bad",
        evaluation={"datapoints": [1]},
        evaluated_at=clock.now(),
    )
    assert (before.state, after.state, after.state_changed_at) == (
        "INSUFFICIENT_DATA",
        "ALARM",
        clock.now(),
    )
    result = store.alarms.sync("shop", declared("high-5xx", "new", guard=False))
    assert (result.created, result.updated, result.deleted) == (("new",), ("high-5xx",), ("slow",))
    kept = store.alarms.get("shop", "high-5xx")
    assert (kept.state, kept.reason, kept.guard, kept.evaluation) == (
        "ALARM",
        "bad",
        False,
        {"datapoints": [1]},
    )
    with pytest.raises(NotFoundError):
        store.alarms.get("shop", "slow")


def test_external_alarms_are_created_once_and_survive_a_sync(store: Store) -> None:
    store.services.put("shop", {})
    first = store.alarms.ensure_external("shop", "alertmanager:HighErrors")
    again = store.alarms.ensure_external("shop", "alertmanager:HighErrors")
    assert (first.kind, first.guard, again.created_at) == ("external", True, first.created_at)
    store.alarms.sync("shop", [])
    assert [a.name for a in store.alarms.list()] == ["alertmanager:HighErrors"]


def test_an_unchanged_state_keeps_its_change_time_and_fields_can_be_cleared(
    store: Store, clock: ManualClock
) -> None:
    store.services.put("shop", {})
    store.alarms.sync("shop", declared("a"))
    created = store.alarms.get("shop", "a").state_changed_at
    clock.advance(3)
    _, after = store.alarms.update(
        "shop", "a", state="INSUFFICIENT_DATA", forced_until=9.0, error_since=4.0
    )
    assert (after.state_changed_at, after.forced_until, after.error_since) == (created, 9.0, 4.0)
    _, cleared = store.alarms.update("shop", "a", forced_until=None, error_since=None)
    assert (cleared.forced_until, cleared.error_since) == (None, None)


def test_alarms_of_an_unknown_service_are_refused_and_die_with_their_service(
    store: Store,
) -> None:
    with pytest.raises(NotFoundError):
        store.alarms.sync("ghost", declared("a"))
    store.services.put("shop", {})
    store.alarms.sync("shop", declared("a"))
    store.services.delete("shop")
    assert store.alarms.list() == []
