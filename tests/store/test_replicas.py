"""Replica records: upsert by (service, revision, index), list, remove."""

from __future__ import annotations

from sluicegate.clock import ManualClock
from sluicegate.store import Replica, Store


def test_record_list_remove(store: Store, clock: ManualClock) -> None:
    r0 = store.replicas.record(
        "shop", "v1", 0, state="starting", port=9000, pid=4242, pid_start_time=1234.5,
        started_at=clock.now(),
    )  # fmt: skip
    assert r0 == Replica("shop", "v1", 0, 9000, 4242, 1234.5, "starting", clock.now(), clock.now())
    store.replicas.record("shop", "v1", 1, state="starting", port=9001, pid=4243)
    store.replicas.record("shop", "v2", 0, state="starting", port=9002, pid=4244)
    store.replicas.record("api", "v1", 0, state="running", port=9100, pid=5000)
    assert [(r.service, r.revision, r.index) for r in store.replicas.list()] == [
        ("api", "v1", 0),
        ("shop", "v1", 0),
        ("shop", "v1", 1),
        ("shop", "v2", 0),
    ]
    assert [r.index for r in store.replicas.list("shop", "v1")] == [0, 1]
    assert store.replicas.remove("shop", "v1", 1) == 1
    assert store.replicas.remove("shop", "v1", 1) == 0
    assert store.replicas.remove("shop", "v2") == 1
    assert [(r.service, r.revision) for r in store.replicas.list()] == [
        ("api", "v1"),
        ("shop", "v1"),
    ]


def test_record_again_replaces_every_field(store: Store, clock: ManualClock) -> None:
    store.replicas.record("shop", "v1", 0, state="running", port=9000, pid=1, pid_start_time=5.0)
    clock.advance(10)
    again = store.replicas.record("shop", "v1", 0, state="restarting", port=9000)
    assert (again.pid, again.pid_start_time, again.state) == (None, None, "restarting")
    assert store.replicas.list() == [again]
    assert again.updated_at == clock.now()
