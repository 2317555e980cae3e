"""Webhook subscriptions, deliveries and the engine's cursor, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from sluicegate.clock import ManualClock
from sluicegate.errors import NotFoundError
from sluicegate.store import Delivery, Store


def test_a_webhook_is_stored_and_its_secret_stays_out_of_its_repr(
    store: Store, clock: ManualClock
) -> None:
    store.events.append("deployment.created", "d-1", "created")
    last = store.events.append("deployment.step", "d-1", "step")
    hook = store.webhooks.create(
        "https://example.com/hook", ["deployment.*", "alarm.*"], "s3cret-s3cret-s3cret"
    )
    assert hook.id.startswith("wh_")
    assert hook.events == ("deployment.*", "alarm.*")
    assert hook.secret == "s3cret-s3cret-s3cret"
    assert hook.enabled is True
    assert hook.after_event_id == last.id  # only what happens from now on
    assert hook.created_at == clock.now()
    assert "s3cret" not in repr(hook)
    assert store.webhooks.get(hook.id) == hook
    assert store.webhooks.list() == [hook]


def test_enable_disable_and_delete(store: Store, clock: ManualClock) -> None:
    hook = store.webhooks.create("http://127.0.0.1:9/", ["*"], "x" * 20)
    clock.advance(5)
    off = store.webhooks.set_enabled(hook.id, False)
    assert off.enabled is False and off.updated_at == hook.created_at + 5
    store.webhooks.delete(hook.id)
    assert store.webhooks.list() == []
    for call in (
        lambda: store.webhooks.get(hook.id),
        lambda: store.webhooks.delete(hook.id),
        lambda: store.webhooks.set_enabled(hook.id, True),
    ):
        with pytest.raises(NotFoundError, match=f"webhook '{hook.id}' not found"):
            call()


def test_the_cursor_is_absent_until_set_and_then_kept(store: Store) -> None:
    assert store.webhook_deliveries.cursor() is None
    store.webhook_deliveries.set_cursor(7)
    store.webhook_deliveries.set_cursor(12)
    assert store.webhook_deliveries.cursor() == 12


def test_enqueue_is_idempotent_and_due_returns_deliveries_with_their_events(
    store: Store, clock: ManualClock
) -> None:
    a = store.webhooks.create("http://127.0.0.1:9/a", ["*"], "x" * 20)
    b = store.webhooks.create("http://127.0.0.1:9/b", ["*"], "x" * 20)
    e1 = store.events.append(
        "deployment.created", "d-1", "created", actor="alice", data={"revision": "v2"}
    )
    e2 = store.events.append("alarm.state", "api-5xx", "ALARM")
    matches = [(a.id, e1.id, e1.kind), (b.id, e1.id, e1.kind), (a.id, e2.id, e2.kind)]
    assert store.webhook_deliveries.enqueue(matches) == 3
    assert store.webhook_deliveries.enqueue(matches) == 0

    due = store.webhook_deliveries.due(clock.now(), limit=10)
    assert [(d.webhook_id, d.event_id, d.status, d.attempts) for d, _ in due] == [
        (a.id, e1.id, "pending", 0),
        (b.id, e1.id, "pending", 0),
        (a.id, e2.id, "pending", 0),
    ]
    assert [e for _, e in due] == [e1, e1, e2]
    first = due[0][0].id
    assert [
        d.id for d, _ in store.webhook_deliveries.due(clock.now(), limit=10, exclude=[first])
    ] == [due[1][0].id, due[2][0].id]
    assert len(store.webhook_deliveries.due(clock.now(), limit=2)) == 2


def test_an_attempts_outcome_is_recorded_and_decides_when_it_is_due_again(
    store: Store, clock: ManualClock
) -> None:
    hook = store.webhooks.create("http://127.0.0.1:9/", ["*"], "x" * 20)
    event = store.events.append("deployment.created", "d-1", "created")
    store.webhook_deliveries.enqueue([(hook.id, event.id, event.kind)])
    ((delivery, _),) = store.webhook_deliveries.due(clock.now(), limit=1)
    retry_at = clock.now() + 2
    got = store.webhook_deliveries.record(
        delivery.id,
        status="pending",
        attempts=1,
        last_status=500,
        last_error="HTTP 500: boom",
        next_attempt_at=retry_at,
        delivered_at=None,
    )
    assert got == Delivery(
        delivery.id,
        hook.id,
        event.id,
        "deployment.created",
        "pending",
        1,
        500,
        "HTTP 500: boom",
        retry_at,
        None,
        delivery.created_at,
        clock.now(),
    )
    assert store.webhook_deliveries.due(clock.now(), limit=5) == []
    clock.advance(2)
    assert [d.id for d, _ in store.webhook_deliveries.due(clock.now(), limit=5)] == [delivery.id]
    done = store.webhook_deliveries.record(
        delivery.id,
        status="delivered",
        attempts=2,
        last_status=204,
        last_error=None,
        next_attempt_at=None,
        delivered_at=clock.now(),
    )
    assert done is not None and done.status == "delivered"
    assert store.webhook_deliveries.due(clock.now(), limit=5) == []
    assert store.webhook_deliveries.list(hook.id) == [done]
    assert store.webhook_deliveries.list(hook.id, status="pending") == []


def test_deleting_a_webhook_deletes_its_deliveries(store: Store) -> None:
    hook = store.webhooks.create("http://127.0.0.1:9/", ["*"], "x" * 20)
    events = [store.events.append("deployment.step", "d-1", f"step {i}") for i in range(3)]
    store.webhook_deliveries.enqueue([(hook.id, e.id, e.kind) for e in events])
    ids = [d.id for d in store.webhook_deliveries.list(hook.id)]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)  # newest first
    store.webhooks.delete(hook.id)
    assert store.webhook_deliveries.list(hook.id) == []
    assert (
        store.webhook_deliveries.record(
            ids[0],
            status="delivered",
            attempts=1,
            last_status=200,
            last_error=None,
            next_attempt_at=None,
            delivered_at=1.0,
        )
        is None
    )
    with pytest.raises(NotFoundError):
        store.webhook_deliveries.get(ids[0])


def test_many_matches_are_enqueued_in_batches(store: Store, clock: ManualClock) -> None:
    hooks = [store.webhooks.create(f"http://127.0.0.1:9/{i}", ["*"], "x" * 20) for i in range(7)]
    events = [store.events.append("deployment.step", "d-1", f"step {i}") for i in range(30)]
    matches = [(h.id, e.id, e.kind) for e in events for h in hooks]
    assert store.webhook_deliveries.enqueue(matches) == 210
    assert len(store.webhook_deliveries.due(clock.now(), limit=1000)) == 210


def test_due_skips_disabled_webhooks_and_caps_each_webhooks_share(
    store: Store, clock: ManualClock
) -> None:
    busy = store.webhooks.create("http://127.0.0.1:9/busy", ["*"], "x" * 20)
    quiet = store.webhooks.create("http://127.0.0.1:9/quiet", ["*"], "x" * 20)
    off = store.webhooks.create("http://127.0.0.1:9/off", ["*"], "x" * 20)
    events = [store.events.append("deployment.step", "d-1", f"step {i}") for i in range(10)]
    store.webhook_deliveries.enqueue([(busy.id, e.id, e.kind) for e in events])
    store.webhook_deliveries.enqueue([(off.id, e.id, e.kind) for e in events])
    store.webhook_deliveries.enqueue([(quiet.id, events[-1].id, events[-1].kind)])
    store.webhooks.set_enabled(off.id, False)
    due = store.webhook_deliveries.due(clock.now(), limit=100, per_webhook=3)
    by_hook = [d.webhook_id for d, _ in due]
    assert by_hook.count(busy.id) == 3 and by_hook.count(quiet.id) == 1
    assert off.id not in by_hook
    assert [e.id for d, e in due if d.webhook_id == busy.id] == [e.id for e in events[:3]]
