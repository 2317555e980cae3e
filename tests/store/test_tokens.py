"""API tokens: only a SHA-256 is stored; verify returns the role of a valid token."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from sluicegate.clock import ManualClock
from sluicegate.errors import ConflictError, NotFoundError, SpecError
from sluicegate.store import Store, hash_token


def test_create_and_verify_each_role(store: Store) -> None:
    for role in ("admin", "deployer", "reader"):
        token = store.tokens.create(role, f"{role} token")
        assert token.startswith("sgt_")
        assert store.tokens.verify(token) == role


def test_plaintext_is_never_stored(store: Store) -> None:
    token = store.tokens.create("admin", "first start")
    secret = token.split("_", 2)[2]
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text("SELECT * FROM tokens")).mappings()]
    assert len(rows) == 1
    values = [str(v) for v in rows[0].values()]
    assert all(token not in v and secret not in v for v in values)
    assert rows[0]["hash"] == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)


@pytest.mark.parametrize(
    "bad",
    ["", "nonsense", "sgt_", "sgt_000000000000_" + "x" * 43, "Bearer sgt_", "sgt_zz_zz"],
)
def test_wrong_tokens_verify_to_none(store: Store, bad: str) -> None:
    store.tokens.create("admin", "x")
    assert store.tokens.verify(bad) is None


def test_a_changed_secret_with_a_real_id_is_refused(store: Store) -> None:
    token = store.tokens.create("admin", "x")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert store.tokens.verify(forged) is None


def test_revoke(store: Store, clock: ManualClock) -> None:
    token = store.tokens.create("deployer", "ci")
    (meta,) = store.tokens.list()
    assert (meta.role, meta.name, meta.revoked) == ("deployer", "ci", False)
    assert token.startswith(f"sgt_{meta.id}_")
    clock.advance(7)
    revoked = store.tokens.revoke(meta.id)
    assert revoked.revoked_at == clock.now()
    clock.advance(7)
    assert store.tokens.revoke(meta.id).revoked_at == revoked.revoked_at
    assert store.tokens.verify(token) is None
    with pytest.raises(NotFoundError):
        store.tokens.revoke("000000000000")


def test_unknown_role_is_a_spec_error(store: Store) -> None:
    with pytest.raises(SpecError, match="role: must be one of admin, deployer, reader"):
        store.tokens.create("root", "x")
    assert store.tokens.list() == []


def test_the_database_refuses_an_unknown_role(store: Store) -> None:
    row = {"id": "abc", "role": "root", "name": "x", "hash": "0" * 64, "created_at": 0.0}
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tokens (id, role, name, hash, created_at)"
                " VALUES (:id, :role, :name, :hash, :created_at)"
            ),
            row,
        )


def test_an_agent_token_is_scoped_to_one_environment(store: Store) -> None:
    token = store.tokens.create("agent", "edge", env="prod")
    assert store.tokens.verify_scoped(token) == ("agent", "prod")
    assert store.tokens.verify(token) == "agent"
    assert [t.env for t in store.tokens.list() if t.role == "agent"] == ["prod"]


def test_an_agent_token_needs_an_environment_and_only_agents_have_one(store: Store) -> None:
    with pytest.raises(SpecError) as err:
        store.tokens.create("agent", "edge")
    assert err.value.problems[0].path == "env"
    with pytest.raises(SpecError):
        store.tokens.create("reader", "r", env="prod")
    assert store.tokens.list() == []


def test_a_token_with_a_ttl_stops_working_when_it_expires(store: Store, clock: ManualClock) -> None:
    token = store.tokens.create("reader", "ci-read", ttl=90 * 86400)
    assert store.tokens.authenticate(token) is not None
    clock.advance(90 * 86400 - 1)
    assert store.tokens.verify(token) == "reader"
    clock.advance(1)
    assert store.tokens.authenticate(token) is None
    assert store.tokens.verify(token) is None


def test_narrow_roles_carry_their_scope(store: Store) -> None:
    push = store.tokens.create("metrics", "app-shop", service="shop")
    am = store.tokens.create("alertmanager", "am")
    found = store.tokens.authenticate(push)
    assert found is not None and (found.role, found.service, found.name) == (
        "metrics",
        "shop",
        "app-shop",
    )
    assert store.tokens.verify(am) == "alertmanager"
    with pytest.raises(SpecError, match="only metrics tokens have a service"):
        store.tokens.create("reader", "r", service="shop")


def test_names_are_unique_among_valid_tokens_and_revocable_by_name(store: Store) -> None:
    first = store.tokens.create("deployer", "pipeline")
    with pytest.raises(ConflictError, match="'pipeline' exists"):
        store.tokens.create("reader", "pipeline")
    revoked = store.tokens.revoke_named("pipeline")
    assert revoked.revoked and store.tokens.authenticate(first) is None
    second = store.tokens.create("deployer", "pipeline")  # the name is free again
    assert store.tokens.authenticate(second) is not None
    with pytest.raises(NotFoundError, match="no valid token named 'nobody'"):
        store.tokens.revoke_named("nobody")
