"""Services and revisions."""

from __future__ import annotations

import pytest

from sluicegate.clock import ManualClock
from sluicegate.errors import ConflictError, NotFoundError
from sluicegate.store import Revision, Service, Store


def test_put_get_list(store: Store, clock: ManualClock) -> None:
    created = store.services.put("shop", {"listener": {"port": 8080}})
    assert created == Service("shop", {"listener": {"port": 8080}}, clock.now(), clock.now())
    store.services.put("api", {})
    assert store.services.get("shop") == created
    assert [s.name for s in store.services.list()] == ["api", "shop"]


def test_put_replaces_the_spec_and_keeps_created_at(store: Store, clock: ManualClock) -> None:
    first = store.services.put("shop", {"v": 1})
    clock.advance(60)
    second = store.services.put("shop", {"v": 2})
    assert second.spec == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at == first.created_at + 60
    assert store.services.get("shop") == second


def test_unknown_service(store: Store) -> None:
    with pytest.raises(NotFoundError, match="service 'nope' not found"):
        store.services.get("nope")
    with pytest.raises(NotFoundError):
        store.services.delete("nope")


def test_delete_cascades_revisions_and_history(store: Store) -> None:
    store.services.put("shop", {})
    store.revisions.create("shop", "v1", {})
    dep = store.deployments.create(
        "shop", "v1", config={}, state={}, phase="done", status="Succeeded", active=False
    )
    store.services.delete("shop")
    assert store.services.list() == []
    assert store.revisions.list("shop") == []
    with pytest.raises(NotFoundError):
        store.deployments.get(dep.id)


def test_delete_refused_with_an_active_deployment(store: Store) -> None:
    store.services.put("shop", {})
    dep = store.deployments.create("shop", "v1", config={}, state={}, phase="p", status="s")
    with pytest.raises(ConflictError, match=f"active deployment {dep.id}"):
        store.services.delete("shop")
    assert store.services.get("shop").name == "shop"


def test_delete_refused_with_recorded_replicas(store: Store) -> None:
    store.services.put("shop", {})
    store.replicas.record("shop", "v1", 0, state="running", port=9000, pid=1234)
    with pytest.raises(ConflictError, match="1 recorded replica"):
        store.services.delete("shop")


def test_revisions_are_immutable_and_idempotent(store: Store, clock: ManualClock) -> None:
    store.services.put("shop", {})
    v1 = store.revisions.create("shop", "v1", {"env": {"A": "1"}})
    assert v1 == Revision("shop", "v1", {"env": {"A": "1"}}, clock.now())
    clock.advance(5)
    assert store.revisions.create("shop", "v1", {"env": {"A": "1"}}) == v1
    with pytest.raises(ConflictError, match="immutable"):
        store.revisions.create("shop", "v1", {"env": {"A": "2"}})
    store.revisions.create("shop", "v2", {})
    assert [r.revision for r in store.revisions.list("shop")] == ["v1", "v2"]
    assert store.revisions.get("shop", "v1") == v1


def test_revision_of_unknown_service_or_revision(store: Store) -> None:
    with pytest.raises(NotFoundError, match="service 'ghost'"):
        store.revisions.create("ghost", "v1", {})
    store.services.put("shop", {})
    with pytest.raises(NotFoundError, match="no revision 'v9'"):
        store.revisions.get("shop", "v9")


def test_returned_json_is_a_copy(store: Store) -> None:
    store.services.put("shop", {"a": [1]})
    got = store.services.get("shop")
    got.spec["a"].append(2)
    assert store.services.get("shop").spec == {"a": [1]}
