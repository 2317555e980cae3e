"""The event log: ordered, filterable, append-only."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from sluicegate.clock import ManualClock
from sluicegate.store import Event, Store


def test_append_and_read_in_order(store: Store, clock: ManualClock) -> None:
    assert store.events.last_id() == 0
    first = store.events.append(
        "deployment.created", "d-1", "created", actor="alice", data={"revision": "v2"}
    )
    assert first == Event(
        first.id, clock.now(), "alice", "deployment.created", "d-1", "created", {"revision": "v2"}
    )
    clock.advance(1)
    second = store.events.append("alarm.state", "api-5xx", "ALARM", at=123.0)
    third = store.events.append("deployment.step", "d-1", "weight 10")
    assert first.id < second.id < third.id
    assert second.at == 123.0 and second.actor == "system" and second.data == {}
    assert store.events.since() == [first, second, third]
    assert store.events.since(first.id) == [second, third]
    assert store.events.since(first.id, limit=1) == [second]
    assert store.events.list(subject="d-1") == [first, third]
    assert store.events.list(kind="alarm.state") == [second]
    assert store.events.list(limit=2) == [second, third]
    assert store.events.last_id() == third.id


def test_events_cannot_be_updated_or_deleted(store: Store) -> None:
    store.events.append("k", "s", "original")
    for statement in ("UPDATE events SET message = 'forged'", "DELETE FROM events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as c:
            c.execute(sa.text(statement))
    assert [e.message for e in store.events.list()] == ["original"]


def test_concurrent_appends_are_all_kept_in_id_order(store: Store, store_url: str) -> None:
    """Writers in parallel; a reader following ``since(last)`` sees every event exactly once."""
    writers, per_writer = 4, 25
    seen: list[Event] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with Store.open(store_url) as mine:
                for i in range(per_writer):
                    mine.events.append("tick", f"w{n}", str(i))
        except BaseException as exc:
            errors.append(exc)

    def follow() -> None:
        last = 0
        with Store.open(store_url) as mine:
            while True:
                done = stop.is_set()
                batch = mine.events.since(last)
                seen.extend(batch)
                last = batch[-1].id if batch else last
                if done and not batch:
                    return

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    reader.join(60)
    assert errors == []
    ids = [e.id for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == writers * per_writer
    for n in range(writers):
        assert [e.message for e in seen if e.subject == f"w{n}"] == [
            str(i) for i in range(per_writer)
        ]


def test_commit_listeners_hear_each_committed_write_after_it_is_visible(store: Store) -> None:
    seen: list[int] = []
    remove = store.on_commit(lambda: seen.append(store.events.last_id()))
    first = store.events.append("a", "s", "one")
    with store.transaction() as tx:
        tx.events.append("b", "s", "two")
        second = tx.events.append("c", "s", "three")
        assert seen == [first.id]  # nothing yet for the open transaction
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.events.append("d", "s", "rolled back")
        raise RuntimeError("abort")
    remove()
    store.events.append("e", "s", "unheard")
    assert seen == [first.id, second.id]  # the listener read what had just committed


def test_a_query_gives_the_newest_matches_after_an_id_oldest_first(store: Store) -> None:
    ids = [store.events.append("deployment.step", "d-1", str(i)).id for i in range(6)]
    assert [e.id for e in store.events.query(limit=3)] == ids[3:]
    assert [e.id for e in store.events.query(after_id=ids[1], limit=2)] == ids[4:]
    assert [e.id for e in store.events.query(after_id=ids[1], limit=100)] == ids[2:]
    assert store.events.query(after_id=ids[-1]) == []


def test_a_query_matches_a_kind_exactly_or_by_prefix(store: Store) -> None:
    for kind in ("deployment.created", "deployment.step", "deploymentXstep", "flags.version"):
        store.events.append(kind, "s", kind)
    store.events.append("flags_x.version", "s", "an underscore is not a wildcard")

    def kinds(pattern: str) -> list[str]:
        return [e.kind for e in store.events.query(kind=pattern)]

    assert kinds("deployment.step") == ["deployment.step"]
    assert kinds("deployment.*") == ["deployment.created", "deployment.step"]
    assert kinds("flags_.*") == []
    assert kinds("flags_x.*") == ["flags_x.version"]
    assert len(kinds("*")) == 5


def test_a_query_by_service_includes_its_deployments_events(store: Store) -> None:
    store.services.put("shop", {"service": "shop"})
    store.services.put("cart", {"service": "cart"})
    dep = store.deployments.create(
        "shop", "v1", config={}, state={}, phase="provisioning", status="in_progress"
    )
    other = store.deployments.create(
        "cart", "v1", config={}, state={}, phase="provisioning", status="in_progress"
    )
    store.events.append("service.applied", "shop", "shop applied")
    store.events.append("deployment.created", dep.id, "shop's deployment")
    store.events.append("deployment.created", other.id, "cart's deployment")
    store.events.append("service.applied", "cart", "cart applied")
    found = store.events.query(service="shop")
    assert [e.message for e in found] == ["shop applied", "shop's deployment"]
    assert [e.message for e in store.events.query(service="shop", kind="deployment.*")] == [
        "shop's deployment"
    ]
    assert [e.message for e in store.events.query(subject=other.id)] == ["cart's deployment"]
