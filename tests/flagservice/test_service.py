"""The flag service's verbs: environments, apply with validation and audit, revert, diff,
history, server-side evaluation."""

from __future__ import annotations

import pytest

from sluicegate.errors import ConflictError, NotFoundError, SpecError
from sluicegate.flags.rollout import RolloutCommand
from sluicegate.flagservice import FlagService
from sluicegate.spec.flag_rollout import RolloutSpec
from sluicegate.store import Store
from tests.flagservice.conftest import flag_set

pytestmark = pytest.mark.anyio


@pytest.fixture
def prod(service: FlagService) -> FlagService:
    service.create_environment("prod", "production", "alice")
    return service


@pytest.mark.parametrize("name", ["", "-x", "a b", "envs", "schema", "x" * 65, "prod/eu"])
def test_environment_names_are_checked(service: FlagService, name: str) -> None:
    with pytest.raises(SpecError) as err:
        service.create_environment(name, "", "alice")
    assert err.value.problems[0].path == "name"


def test_creating_an_environment_is_an_audit_event(store: Store, prod: FlagService) -> None:
    [event] = store.events.list(subject="flags/prod")
    assert (event.kind, event.actor, event.message) == (
        "flags.env.created",
        "alice",
        "flag environment prod created",
    )


async def test_an_invalid_flag_set_is_refused_with_every_problem_and_nothing_is_saved(
    store: Store, prod: FlagService
) -> None:
    await prod.apply("prod", flag_set("old"), actor="alice")
    bad = flag_set("new")
    bad["flags"]["checkout"]["default_variant"] = "nope"
    bad["flags"]["new-search"]["rules"][0]["when"] = {"segment": "betta"}
    bad["flags"]["oops"] = {"type": "colour"}
    with pytest.raises(SpecError) as err:
        await prod.apply("prod", bad, actor="bob")
    paths = {p.path for p in err.value.problems}
    assert {
        "flags.checkout.default_variant",
        "flags.new-search.rules[0].when.segment",
        "flags.oops.type",
    } <= paths
    env = store.flags.environment("prod")
    assert (env.current_version, env.latest_version) == (1, 1)
    assert [e.kind for e in store.events.list(subject="flags/prod")] == [
        "flags.env.created",
        "flags.version",
    ]


async def test_each_change_is_a_new_version_with_an_audit_event_and_diff_summary(
    store: Store, prod: FlagService
) -> None:
    first = await prod.apply("prod", flag_set("old"), actor="alice", message="first")
    second = await prod.apply(
        "prod",
        flag_set("new", extra={"type": "boolean"}),
        actor="bob",
        message="new copy",
        expected_version=1,
    )
    assert (first.version.version, second.version.version, second.previous) == (1, 2, 1)
    assert [str(c) for c in second.diff.changes] == [
        "flag checkout: changed\n  variants.v: 'old' -> 'new'",
        "flag extra: added",
    ]
    event = store.events.list(subject="flags/prod", kind="flags.version")[-1]
    assert event.actor == "bob"
    assert event.message == "prod v2 by bob (published; flags +1 ~1 -0): new copy"
    assert event.data["version"] == 2 and event.data["from_version"] == 1
    assert event.data["diff"]["flags"] == {
        "added": ["extra"],
        "removed": [],
        "changed": ["checkout"],
    }
    assert event.data["diff"]["changes"][0]["fields"] == [
        {"path": "variants.v", "change": "changed", "old": "old", "new": "new"}
    ]


async def test_a_segments_id_changes_are_summarised_not_listed_in_full(
    store: Store, prod: FlagService
) -> None:
    big = flag_set()
    big["segments"]["beta"]["ids"] = [f"u{i}" for i in range(1000)]
    await prod.apply("prod", flag_set(), actor="alice")
    await prod.apply("prod", big, actor="alice")
    ids = store.events.list(kind="flags.version")[-1].data["diff"]["changes"][0]["fields"][0]
    assert (ids["change"], ids["added_count"], ids["removed_count"]) == ("ids", 1000, 2)
    assert len(ids["added"]) == 20


async def test_applying_the_same_flag_set_again_saves_nothing(
    store: Store, prod: FlagService
) -> None:
    await prod.apply("prod", flag_set("old"), actor="alice")
    again = await prod.apply("prod", flag_set("old"), actor="bob", expected_version=1)
    assert (again.changed, again.version.version) == (False, 1)
    assert again.note == "no changes: prod stays at version 1"
    assert store.flags.environment("prod").latest_version == 1
    assert len(store.events.list(kind="flags.version")) == 1


async def test_a_stale_expected_version_is_a_conflict_even_for_an_unchanged_document(
    store: Store, prod: FlagService
) -> None:
    await prod.apply("prod", flag_set("old"), actor="alice")
    await prod.apply("prod", flag_set("new"), actor="bob", expected_version=1)
    for document in (flag_set("newer"), flag_set("new")):
        with pytest.raises(ConflictError, match="at version 2, not 1"):
            await prod.apply("prod", document, actor="carol", expected_version=1)
    assert store.flags.environment("prod").latest_version == 2


async def test_revert_saves_an_old_document_as_a_new_version(
    store: Store, prod: FlagService
) -> None:
    await prod.apply("prod", flag_set("one"), actor="alice")
    await prod.apply("prod", flag_set("two"), actor="alice")
    reverted = await prod.revert("prod", 1, actor="bob")
    assert (reverted.version.version, reverted.version.message) == (3, "revert to version 1")
    assert store.flags.version("prod").document == store.flags.version("prod", 1).document
    event = store.events.list(kind="flags.version")[-1]
    assert event.data["revert_of"] == 1 and "revert to v1" in event.message
    with pytest.raises(NotFoundError, match="no version 9"):
        await prod.revert("prod", 9, actor="bob")


async def test_the_first_version_is_published_at_once_even_when_a_rollout_is_asked_for(
    store: Store, prod: FlagService
) -> None:
    applied = await prod.apply(
        "prod",
        flag_set(),
        actor="alice",
        rollout=RolloutSpec.model_validate({"strategy": "AllAtOnce"}),
    )
    assert applied.rollout is None and applied.note is not None
    assert "published to everyone at once" in applied.note
    assert store.flags.environment("prod").current_version == 1


async def test_a_change_during_a_rollout_is_refused(store: Store, prod: FlagService) -> None:
    await prod.apply("prod", flag_set("old"), actor="alice")
    await prod.apply(
        "prod",
        flag_set("new"),
        actor="alice",
        rollout=RolloutSpec.model_validate({"strategy": "AllAtOnce"}),
    )
    for document in (flag_set("newer"), flag_set("old")):
        with pytest.raises(ConflictError, match="rollout of version 2 is in progress"):
            await prod.apply("prod", document, actor="bob")
    with pytest.raises(ConflictError):
        await prod.revert("prod", 1, actor="bob")


async def test_diff_defaults_to_the_current_version_against_the_one_before(
    prod: FlagService,
) -> None:
    for value in ("one", "two", "three"):
        await prod.apply("prod", flag_set(value), actor="alice")
    frm, to, diff = prod.diff("prod", None, None)
    assert (frm, to, str(diff)) == (2, 3, "flag checkout: changed\n  variants.v: 'two' -> 'three'")
    frm, to, diff = prod.diff("prod", 1, 3)
    assert "'one' -> 'three'" in str(diff)
    frm, to, diff = prod.diff("prod", None, 1)
    assert (frm, to) == (0, 1) and {c.change for c in diff.changes} == {"added"}


async def test_diff_defaults_to_the_versions_users_got_skipping_those_never_live(
    prod: FlagService,
) -> None:
    gradually = RolloutSpec.model_validate({"strategy": {"steps": [{"weight": 10}]}})
    await prod.apply("prod", flag_set("one"), actor="alice")  # v1, live
    await prod.apply("prod", flag_set("two"), actor="alice", rollout=gradually)  # v2
    await prod.rollouts.command("prod", RolloutCommand.ROLLBACK, "bob")  # v2 never live
    await prod.apply("prod", flag_set("three"), actor="alice", rollout=gradually)  # v3
    await prod.rollouts.command("prod", RolloutCommand.STOP, "bob")  # v3 never live
    await prod.apply("prod", flag_set("four"), actor="alice")  # v4, live (current)
    frm, to, diff = prod.diff("prod", None, None)
    assert (frm, to, str(diff)) == (1, 4, "flag checkout: changed\n  variants.v: 'one' -> 'four'")
    # --to alone: against the version live before it
    assert prod.diff("prod", None, 3)[:2] == (1, 3)
    # while a rollout is in progress, the default is what it rolls out against the live one
    await prod.apply("prod", flag_set("five"), actor="alice", rollout=gradually)  # v5
    assert prod.diff("prod", None, None)[:2] == (4, 5)
    # explicit versions are compared as given
    assert prod.diff("prod", 2, 3)[:2] == (2, 3)


async def test_evaluate_explains_which_rule_matched(prod: FlagService) -> None:
    await prod.apply("prod", flag_set(), actor="alice")
    got = prod.evaluate("prod", "new-search", {"userId": "alice"}, explain=True)
    assert (got["value"], got["variant"], got["reason"], got["version"]) == (
        True,
        "on",
        "TARGETING_MATCH",
        1,
    )
    assert got["text"].splitlines()[1] == "  rules[0] beta: matched: serve variant 'on'"
    missing = prod.evaluate("prod", "nope", {})
    assert (missing["reason"], missing["error_code"]) == ("ERROR", "FLAG_NOT_FOUND")


async def test_evaluating_an_environment_without_a_flag_set_is_not_found(prod: FlagService) -> None:
    with pytest.raises(NotFoundError, match="no flag set yet"):
        prod.evaluate("prod", "checkout", {})
