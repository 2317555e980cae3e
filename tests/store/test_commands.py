"""Deployment commands are kept until the engine marks them handled; the heartbeat row."""

from __future__ import annotations

import os

import pytest

from sluicegate.clock import ManualClock
from sluicegate.errors import NotFoundError
from sluicegate.store import Store


def _deployment(store: Store) -> str:
    store.services.put("shop", {})
    return store.deployments.create(
        "shop", "v2", config={}, state={}, phase="shifting", status="in_progress"
    ).id


def test_a_command_stays_pending_until_marked_handled(store: Store, clock: ManualClock) -> None:
    dep = _deployment(store)
    first = store.commands.add(dep, "promote", "alice")
    clock.advance(1)
    second = store.commands.add(dep, "rollback", "bob")
    assert [(c.command, c.actor) for c in store.commands.pending(dep)] == [
        ("promote", "alice"),
        ("rollback", "bob"),
    ]
    store.commands.mark_handled(first.id)
    assert [c.id for c in store.commands.pending(dep)] == [second.id]


def test_marking_in_a_transaction_rolls_back_with_it(store: Store) -> None:
    dep = _deployment(store)
    command = store.commands.add(dep, "stop", "alice")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.commands.mark_handled(command.id)
        raise RuntimeError("crash before commit")
    assert [c.id for c in store.commands.pending(dep)] == [command.id]


def test_a_command_for_an_unknown_deployment_is_refused(store: Store) -> None:
    with pytest.raises(NotFoundError, match="d-nope"):
        store.commands.add("d-nope", "stop", "alice")


def test_the_heartbeat_row_is_rewritten(store: Store, clock: ManualClock) -> None:
    assert store.heartbeat.last() is None
    store.heartbeat.beat(os.getpid())
    clock.advance(5)
    at = store.heartbeat.beat(os.getpid())
    assert store.heartbeat.last() == (os.getpid(), at)
