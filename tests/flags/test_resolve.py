"""Which version a user gets during a rollout: sticky, monotone, the same everywhere."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from sluicegate.flags import (
    RolloutView,
    compile_flag_set,
    gets_new_version,
    resolve,
    sees_new_version,
)

USERS = [f"user-{i:05d}" for i in range(5000)]
GROWING = [0, 0.5, 1, 5, 10, 20, 33.333, 50, 80, 99, 100]


def view(percent: float, id: str = "fr-0123456789ab") -> RolloutView:
    return RolloutView(id, from_version=7, to_version=8, percent=percent)


def flags(value: str, version: int) -> Any:
    doc = {
        "flags": {"checkout": {"type": "string", "variants": {"x": value}, "default_variant": "x"}}
    }
    return compile_flag_set(doc, version=version)


V7, V8 = flags("old", 7), flags("new", 8)


def test_a_user_gets_the_new_version_exactly_when_their_rollout_bucket_is_in_the_share() -> None:
    for percent in GROWING:
        for user in USERS[:500]:
            expected = sees_new_version("fr-0123456789ab", user, percent)
            assert gets_new_version(view(percent), {"targetingKey": user}) is expected


def test_a_users_version_only_ever_moves_forward_while_the_share_grows() -> None:
    sides = {u: [gets_new_version(view(p), {"targetingKey": u}) for p in GROWING] for u in USERS}
    for user, seen in sides.items():
        assert seen == sorted(seen), f"{user} flipped back: {seen}"
    cohorts = [{u for u in USERS if sides[u][i]} for i in range(len(GROWING))]
    for smaller, larger in itertools.pairwise(cohorts):
        assert smaller <= larger


@pytest.mark.parametrize("percent", [1, 10, 50, 80])
def test_the_share_of_users_matches_the_percentage(percent: float) -> None:
    share = sum(gets_new_version(view(percent), {"targetingKey": u}) for u in USERS)
    assert abs(share / len(USERS) * 100 - percent) < 2.5


def test_resolve_evaluates_in_the_version_the_user_gets() -> None:
    for user in USERS[:300]:
        ctx = {"targetingKey": user}
        r = resolve(V7, V8, view(30), "checkout", ctx)
        new = sees_new_version("fr-0123456789ab", user, 30)
        assert (r.value, r.flag_metadata["version"]) == (("new", 8) if new else ("old", 7))


def test_without_a_rollout_everyone_gets_the_current_version() -> None:
    assert resolve(V7, None, None, "checkout", {"targetingKey": "u1"}).value == "old"
    assert resolve(V7, V8, None, "checkout", {"targetingKey": "u1"}).value == "old"
    assert resolve(V7, None, view(100), "checkout", {"targetingKey": "u1"}).value == "old"


def test_contexts_without_a_targeting_key_keep_the_old_version_until_everyone_moves() -> None:
    for ctx in ({}, None, {"targetingKey": None}, {"targetingKey": 1.5}, {"plan": "pro"}):
        assert resolve(V7, V8, view(99), "checkout", ctx).value == "old"
        assert resolve(V7, V8, view(100), "checkout", ctx).value == "new"
        assert resolve(V7, V8, view(0), "checkout", ctx).value == "old"


def test_user_id_and_integer_keys_bucket_like_the_targeting_key() -> None:
    for n in range(300):
        expected = gets_new_version(view(40), {"targetingKey": str(n)})
        assert gets_new_version(view(40), {"userId": str(n)}) is expected
        assert gets_new_version(view(40), {"targetingKey": n}) is expected
    # targetingKey wins over userId when both are given
    assert gets_new_version(view(40), {"targetingKey": "a", "userId": "b"}) is gets_new_version(
        view(40), {"targetingKey": "a"}
    )


def test_each_rollout_picks_its_own_users() -> None:
    one = {u for u in USERS if gets_new_version(view(20, "fr-aaaaaaaaaaaa"), {"targetingKey": u})}
    two = {u for u in USERS if gets_new_version(view(20, "fr-bbbbbbbbbbbb"), {"targetingKey": u})}
    # independent draws: about 20 % of 20 % overlap, far from the same 20 %
    assert len(one & two) < len(one) / 2


def test_a_key_that_is_not_valid_unicode_keeps_the_old_version() -> None:
    assert resolve(V7, V8, view(50), "checkout", {"targetingKey": "\ud800"}).value == "old"


def test_the_view_is_read_from_the_apis_rollout_json() -> None:
    data = {"id": "fr-1", "from_version": 3, "to_version": 4, "percent": 20, "phase": "x"}
    assert RolloutView.from_json(data) == RolloutView("fr-1", 3, 4, 20.0)
