"""Flag environments, versions and rollouts in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from sluicegate.clock import ManualClock
from sluicegate.errors import ConflictError, NotFoundError, SluicegateError
from sluicegate.store import Store


def doc(n: int) -> dict[str, Any]:
    return {"flags": {"f": {"type": "number", "variants": {"v": n}, "default_variant": "v"}}}


def rollout(store: Store, env: str = "prod", **kw: Any) -> Any:
    cur = store.flags.environment(env).current_version
    assert cur is not None
    with store.transaction() as tx:
        new = tx.flags.append_version(env, doc(99), actor="alice", publish=False)
        return tx.flag_rollouts.create(
            env,
            from_version=cur,
            to_version=new.version,
            strategy={"strategy": "AllAtOnce"},
            state={"percent": 0},
            phase="rolling_out",
            **kw,
        )


def test_environments_are_created_once_and_listed_by_name(store: Store) -> None:
    store.flags.create_environment("staging", "pre-production")
    store.flags.create_environment("prod")
    with pytest.raises(ConflictError, match="already exists"):
        store.flags.create_environment("prod")
    envs = store.flags.environments()
    assert [(e.name, e.description, e.current_version, e.latest_version) for e in envs] == [
        ("prod", "", None, None),
        ("staging", "pre-production", None, None),
    ]


def test_versions_are_numbered_from_one_and_the_newest_is_current(
    store: Store, clock: ManualClock
) -> None:
    store.flags.create_environment("prod")
    for n in (1, 2, 3):
        clock.advance(1)
        v = store.flags.append_version("prod", doc(n), actor="alice", message=f"change {n}")
        assert v.version == n
    env = store.flags.environment("prod")
    assert (env.current_version, env.latest_version) == (3, 3)
    assert store.flags.version("prod").document == doc(3)
    first = store.flags.version("prod", 1)
    assert (first.document, first.actor, first.message) == (doc(1), "alice", "change 1")
    assert [h.version for h in store.flags.history("prod")] == [3, 2, 1]
    assert [h.message for h in store.flags.history("prod", limit=2)] == ["change 3", "change 2"]


def test_environments_number_their_versions_independently(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.create_environment("staging")
    store.flags.append_version("staging", doc(1), actor="a")
    store.flags.append_version("staging", doc(2), actor="a")
    assert store.flags.append_version("prod", doc(1), actor="a").version == 1


def test_a_saved_version_never_changes(store: Store) -> None:
    store.flags.create_environment("prod")
    saved = store.flags.append_version("prod", doc(1), actor="a")
    saved.document["flags"]["f"]["variants"]["v"] = 666  # the caller's copy only
    store.flags.append_version("prod", doc(2), actor="a")
    assert store.flags.version("prod", 1).document == doc(1)
    with store.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(
            sa.text(
                "INSERT INTO flag_set_versions (env, version, document, "
                "created_at, actor, message) VALUES ('prod', 1, '{}', 0, 'x', '')"
            )
        )


def test_an_expected_version_that_moved_on_is_a_conflict_and_saves_nothing(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a", expected_version=0)
    store.flags.append_version("prod", doc(2), actor="bob", expected_version=1)
    with pytest.raises(ConflictError, match="at version 2, not 1"):
        store.flags.append_version("prod", doc(3), actor="carol", expected_version=1)
    assert store.flags.environment("prod").latest_version == 2
    assert store.flags.version("prod").document == doc(2)


def test_expected_version_zero_means_the_environment_has_no_version_yet(store: Store) -> None:
    store.flags.create_environment("prod")
    assert store.flags.append_version("prod", doc(1), actor="a", expected_version=0).version == 1
    with pytest.raises(ConflictError):
        store.flags.append_version("prod", doc(2), actor="a", expected_version=0)


def test_unknown_environments_and_versions_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="sluice flags envs create nope"):
        store.flags.append_version("nope", doc(1), actor="a")
    store.flags.create_environment("prod")
    with pytest.raises(NotFoundError, match="no flag set yet"):
        store.flags.version("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    with pytest.raises(NotFoundError, match="no version 7"):
        store.flags.version("prod", 7)
    with pytest.raises(NotFoundError):
        store.flags.history("nope")


def test_an_unpublished_version_waits_for_its_rollout_and_blocks_other_changes(
    store: Store,
) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    r = rollout(store)
    assert (r.from_version, r.to_version, r.active, r.version) == (1, 2, True, 1)
    env = store.flags.environment("prod")
    assert (env.current_version, env.latest_version) == (1, 2)
    with pytest.raises(ConflictError, match=f"rollout of version 2 is in progress.*{r.id}"):
        store.flags.append_version("prod", doc(3), actor="bob")
    assert store.flags.environment("prod").latest_version == 2


def test_completing_a_rollout_publishes_its_version_in_the_same_write(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    r = rollout(store)
    r = store.flag_rollouts.update(r.id, 1, state={"percent": 50}, phase="rolling_out", active=True)
    assert store.flags.environment("prod").current_version == 1
    done = store.flag_rollouts.update(
        r.id, 2, state={"percent": 100}, phase="completed", active=False, publish=True
    )
    assert (done.version, done.active, done.state) == (3, False, {"percent": 100})
    assert store.flags.environment("prod").current_version == 2
    assert store.flag_rollouts.active_for("prod") is None
    assert store.flags.append_version("prod", doc(3), actor="a").version == 3


def test_a_stale_rollout_update_is_a_conflict(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    r = rollout(store)
    store.flag_rollouts.update(r.id, 1, state={"percent": 10}, phase="rolling_out", active=True)
    with pytest.raises(ConflictError, match="expected version 1, it is at version 2"):
        store.flag_rollouts.update(r.id, 1, state={"percent": 0}, phase="stopped", active=False)
    assert store.flag_rollouts.get(r.id).state == {"percent": 10}


def test_an_ended_rollout_stays_ended(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    r = rollout(store)
    store.flag_rollouts.update(r.id, 1, state={}, phase="stopped", active=False)
    with pytest.raises(ConflictError, match="has ended"):
        store.flag_rollouts.update(r.id, 2, state={}, phase="rolling_out", active=True)


def test_one_rollout_in_progress_per_environment(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    store.flags.append_version("prod", doc(2), actor="a", publish=False)
    first = store.flag_rollouts.create(
        "prod", from_version=1, to_version=2, strategy={}, state={}, phase="rolling_out"
    )
    with pytest.raises(ConflictError, match="in progress"):
        store.flag_rollouts.create(
            "prod", from_version=1, to_version=2, strategy={}, state={}, phase="rolling_out"
        )
    assert [r.id for r in store.flag_rollouts.list_active()] == [first.id]
    assert [r.id for r in store.flag_rollouts.list("prod")] == [first.id]


def test_a_rollout_of_a_version_that_does_not_exist_is_refused(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    with pytest.raises(ConflictError):
        store.flag_rollouts.create(
            "prod", from_version=1, to_version=5, strategy={}, state={}, phase="rolling_out"
        )
    assert store.flag_rollouts.list("prod") == []


def test_a_failed_transaction_leaves_no_version_behind(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    with pytest.raises(ConflictError), store.transaction() as tx:
        tx.flags.append_version("prod", doc(2), actor="a", publish=False)
        tx.flag_rollouts.create(
            "prod", from_version=1, to_version=9, strategy={}, state={}, phase="rolling_out"
        )
    env = store.flags.environment("prod")
    assert (env.current_version, env.latest_version) == (1, 1)


def _race(store: Store, n: int, expected: int | None) -> list[Exception | int]:
    """``n`` threads append at once (a barrier lines them up); what each one got."""
    barrier = threading.Barrier(n)
    results: list[Exception | int] = [0] * n

    def edit(i: int) -> None:
        barrier.wait()
        try:
            results[i] = store.flags.append_version(
                "prod", doc(10 + i), actor=f"editor{i}", expected_version=expected
            ).version
        except SluicegateError as exc:
            results[i] = exc

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_editors_with_the_same_expected_version_one_wins(store: Store) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="a")
    results = _race(store, 6, expected=1)
    won = [r for r in results if isinstance(r, int)]
    lost = [r for r in results if not isinstance(r, int)]
    assert won == [2]
    assert len(lost) == 5 and all(isinstance(e, ConflictError) for e in lost)
    env = store.flags.environment("prod")
    assert (env.current_version, env.latest_version) == (2, 2)


def test_concurrent_editors_without_expected_versions_get_distinct_numbers(store: Store) -> None:
    store.flags.create_environment("prod")
    results = _race(store, 6, expected=None)
    assert sorted(r for r in results if isinstance(r, int)) == [1, 2, 3, 4, 5, 6]
    assert store.flags.environment("prod").current_version == 6


def test_deleting_an_environment_takes_its_versions_and_rollouts_and_frees_its_name(
    store: Store,
) -> None:
    store.flags.create_environment("prod")
    store.flags.create_environment("staging")
    store.flags.append_version("prod", doc(1), actor="alice")
    store.flags.append_version("staging", doc(1), actor="alice")
    r = rollout(store)
    store.flag_rollouts.update(r.id, r.version, state={}, phase="completed", active=False)
    assert store.flags.delete_environment("prod") == 2
    with pytest.raises(NotFoundError):
        store.flags.environment("prod")
    with pytest.raises(NotFoundError):
        store.flag_rollouts.get(r.id)
    assert [e.name for e in store.flags.environments()] == ["staging"]
    assert store.flags.version("staging", 1).document == doc(1)  # the other one is untouched
    store.flags.create_environment("prod")
    assert store.flags.append_version("prod", doc(7), actor="bob").version == 1
    with pytest.raises(NotFoundError, match="'nope' not found"):
        store.flags.delete_environment("nope")


def test_an_environment_in_use_is_not_deleted(store: Store, clock: ManualClock) -> None:
    store.flags.create_environment("prod")
    store.flags.append_version("prod", doc(1), actor="alice")
    r = rollout(store)
    with pytest.raises(ConflictError, match="in progress"):
        store.flags.delete_environment("prod")
    store.flag_rollouts.update(r.id, r.version, state={}, phase="stopped", active=False)
    store.tokens.create("agent", "edge-agent", "prod")
    with pytest.raises(ConflictError, match=r"read by 1 agent token \(edge-agent\); revoke"):
        store.flags.delete_environment("prod")
    store.tokens.revoke(store.tokens.list()[0].id)
    store.tokens.create("agent", "old-agent", "prod", ttl=60)
    with pytest.raises(ConflictError, match=r"old-agent"):
        store.flags.delete_environment("prod")
    clock.advance(61)  # an expired token reads nothing
    assert store.flags.delete_environment("prod") == 2
