"""Deployments: optimistic concurrency, one active per service, transactions."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sluicegate.clock import ManualClock
from sluicegate.errors import ConflictError, NotFoundError
from sluicegate.store import Deployment, Store


def _create(store: Store, revision: str = "v2", **kw: Any) -> Deployment:
    args: dict[str, Any] = {
        "config": {"steps": [{"weight": 10}]},
        "state": {"step": 0},
        "phase": "provision",
        "status": "InProgress",
        "from_revision": "v1",
    }
    return store.deployments.create("shop", revision, **{**args, **kw})


@pytest.fixture(autouse=True)
def _shop(store: Store) -> None:
    store.services.put("shop", {})
    store.services.put("api", {})


def test_create_and_get(store: Store, clock: ManualClock) -> None:
    dep = _create(store)
    assert dep.id.startswith("d-")
    assert (dep.version, dep.active, dep.from_revision) == (1, True, "v1")
    assert dep.created_at == dep.updated_at == clock.now()
    assert store.deployments.get(dep.id) == dep
    with pytest.raises(NotFoundError):
        store.deployments.get("d-missing")


def test_create_for_unknown_service(store: Store) -> None:
    with pytest.raises(NotFoundError, match="service 'ghost'"):
        store.deployments.create("ghost", "v1", config={}, state={}, phase="p", status="s")


def test_update_bumps_the_version(store: Store, clock: ManualClock) -> None:
    dep = _create(store)
    clock.advance(3)
    new = store.deployments.update(dep.id, 1, state={"step": 1}, phase="shift")
    assert (new.version, new.state, new.phase, new.status) == (2, {"step": 1}, "shift", dep.status)
    assert new.updated_at == dep.created_at + 3
    assert new.created_at == dep.created_at
    assert store.deployments.get(dep.id) == new


def test_stale_version_is_a_conflict_and_changes_nothing(store: Store) -> None:
    dep = _create(store)
    store.deployments.update(dep.id, 1, phase="hooks")
    with pytest.raises(ConflictError, match="expected version 1, it is at version 2"):
        store.deployments.update(dep.id, 1, phase="shift")
    assert store.deployments.get(dep.id).phase == "hooks"
    with pytest.raises(NotFoundError):
        store.deployments.update("d-missing", 1, phase="x")


def test_one_active_deployment_per_service(store: Store) -> None:
    first = _create(store)
    with pytest.raises(ConflictError, match=f"already has an active deployment {first.id}"):
        _create(store, "v3")
    assert store.deployments.active_for("shop") == first
    other = store.deployments.create("api", "v1", config={}, state={}, phase="p", status="s")
    assert store.deployments.active_for("api") == other
    store.deployments.update(first.id, 1, status="Succeeded", active=False)
    assert store.deployments.active_for("shop") is None
    second = _create(store, "v3")
    assert store.deployments.active_for("shop") == second
    # Reactivating the finished one would make two: refused.
    with pytest.raises(ConflictError, match="already has an active deployment"):
        store.deployments.update(first.id, 2, active=True)


def test_the_database_enforces_one_active_even_without_the_check(store: Store) -> None:
    """The partial unique index, not only the repository's check, refuses a second one."""
    import sqlalchemy as sa

    from sluicegate.store._schema import deployments

    _create(store)
    row: dict[str, Any] = {
        "id": "d-raw",
        "service": "shop",
        "revision": "v9",
        "from_revision": None,
        "config": {},
        "state": {},
        "phase": "p",
        "status": "s",
        "active": True,
        "created_at": 0.0,
        "updated_at": 0.0,
        "version": 1,
    }
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(sa.insert(deployments).values(row))
    with store.engine.begin() as conn:
        conn.execute(sa.insert(deployments).values({**row, "active": False}))


def test_duplicate_id_is_a_conflict(store: Store) -> None:
    store.deployments.create("shop", "v1", config={}, state={}, phase="p", status="s", id="d-1")
    with pytest.raises(ConflictError):
        store.deployments.create("api", "v1", config={}, state={}, phase="p", status="s", id="d-1")


def test_list_newest_first_and_list_active(store: Store, clock: ManualClock) -> None:
    a = _create(store, "v1", active=False)
    clock.advance(1)
    b = _create(store, "v2")
    clock.advance(1)
    c = store.deployments.create("api", "v1", config={}, state={}, phase="p", status="s")
    assert [d.id for d in store.deployments.list()] == [c.id, b.id, a.id]
    assert [d.id for d in store.deployments.list("shop")] == [b.id, a.id]
    assert [d.id for d in store.deployments.list(limit=1)] == [c.id]
    assert [d.id for d in store.deployments.list_active()] == [b.id, c.id]


def test_transaction_commits_together(store: Store) -> None:
    dep = _create(store)
    with store.transaction() as tx:
        new = tx.deployments.update(dep.id, 1, phase="shift")
        tx.events.append("deployment.phase", dep.id, "shift")
    assert store.deployments.get(dep.id) == new
    assert [e.kind for e in store.events.list(subject=dep.id)] == ["deployment.phase"]


def test_transaction_rolls_back_on_error(store: Store) -> None:
    dep = _create(store)
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as tx:
        tx.deployments.update(dep.id, 1, phase="shift")
        tx.events.append("deployment.phase", dep.id, "shift")
        raise RuntimeError("boom")
    assert store.deployments.get(dep.id) == dep
    assert store.events.list() == []


def test_concurrent_read_modify_write_loses_no_update(store: Store, store_url: str) -> None:
    """Threads with their own Store increment a counter in ``state``, retrying on conflict."""
    dep = _create(store, state={"n": 0})
    threads, per_thread = 4, 10
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with Store.open(store_url) as mine:
                done = 0
                while done < per_thread:
                    cur = mine.deployments.get(dep.id)
                    try:
                        mine.deployments.update(
                            dep.id, cur.version, state={"n": cur.state["n"] + 1}
                        )
                        done += 1
                    except ConflictError:
                        continue
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    assert errors == []
    final = store.deployments.get(dep.id)
    assert final.state == {"n": threads * per_thread}
    assert final.version == 1 + threads * per_thread
