"""The rollout engine with a manual clock and a real store: steps, bake, alarms, commands,
and carrying on after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluicegate.clock import ManualClock
from sluicegate.errors import ConflictError, NotFoundError, SpecError
from sluicegate.flags.rollout import RolloutCommand
from sluicegate.flagservice import FlagService
from sluicegate.spec.flag_rollout import RolloutSpec
from sluicegate.store import FlagRollout, Store
from tests.flagservice.conftest import Alarms, flag_set

pytestmark = pytest.mark.anyio

# 20 % for a minute, 60 % for a minute, then everyone for a two-minute bake.
STEPS = {
    "strategy": {"steps": [{"weight": 20, "pause": "1m"}, {"weight": 60, "pause": "1m"}]},
    "bake_time": "2m",
}


def spec(**kw: Any) -> RolloutSpec:
    return RolloutSpec.model_validate({**STEPS, **kw})


async def two_versions(service: FlagService, **rollout: Any) -> FlagRollout:
    service.create_environment("prod", "", "alice")
    await service.apply("prod", flag_set("old"), actor="alice")
    applied = await service.apply(
        "prod", flag_set("new"), actor="bob", message="new copy", rollout=spec(**rollout)
    )
    assert applied.rollout is not None
    return applied.rollout


def now(store: Store, env: str = "prod") -> tuple[str, int, int | None]:
    """(phase, percent, current version) of the environment's newest rollout."""
    [r] = store.flag_rollouts.list(env, limit=1)
    return r.phase, r.state["percent"], store.flags.environment(env).current_version


def kinds(store: Store) -> list[str]:
    return [e.kind for e in store.events.list(subject="flags/prod")]


async def test_a_rollout_widens_step_by_step_bakes_and_then_publishes(
    any_store: Store, clock: ManualClock, alarms: Alarms
) -> None:
    service = FlagService(any_store, clock, alarms)
    await two_versions(service, alarms=["shop/high-5xx"])
    engine = service.rollouts
    seen = []
    for advance in (0, 30, 30, 30, 30, 60, 59, 1):
        clock.advance(advance)
        await engine.tick()
        seen.append(now(any_store))
    assert seen == [
        ("rolling_out", 20, 1),
        ("rolling_out", 20, 1),
        ("rolling_out", 60, 1),
        ("rolling_out", 60, 1),
        ("baking", 100, 1),
        ("baking", 100, 1),
        ("baking", 100, 1),
        ("completed", 100, 2),
    ]
    assert kinds(any_store) == [
        "flags.env.created",
        "flags.version",
        "flags.version",
        "flags.rollout.started",
        "flags.rollout.step",
        "flags.rollout.step",
        "flags.rollout.baking",
        "flags.rollout.completed",
    ]
    assert set(alarms.asked) == {"shop/high-5xx"}
    assert any_store.flag_rollouts.active_for("prod") is None


async def test_a_firing_guard_alarm_reverts_to_the_old_version_and_says_which(
    store: Store, clock: ManualClock, alarms: Alarms, service: FlagService
) -> None:
    await two_versions(service, alarms=["shop/slow", "shop/high-5xx"])
    await service.rollouts.tick()
    clock.advance(60)
    await service.rollouts.tick()
    assert now(store) == ("rolling_out", 60, 1)
    alarms.firing["shop/high-5xx"] = "5xx rate 9 % > 5 % for 3 of 3 datapoints"
    await service.rollouts.tick()
    assert now(store) == ("rolled_back", 0, 1)
    last = store.events.list(subject="flags/prod")[-1]
    assert last.kind == "flags.rollout.rolled_back" and last.actor == "flag-rollouts"
    assert "alarm shop/high-5xx is firing: 5xx rate 9 %" in last.message
    assert last.data["alarm"] == "shop/high-5xx" and last.data["percent_before"] == 60
    assert [(h["version"], h["status"]) for h in service.history("prod")] == [
        (2, "rolled back"),
        (1, "current"),
    ]
    r = service.evaluate("prod", "checkout", {"targetingKey": "anyone"})
    assert (r["value"], r["version"], r["rollout"]) == ("old", 1, None)


async def test_an_alarm_during_the_bake_time_still_reverts(
    store: Store, clock: ManualClock, alarms: Alarms, service: FlagService
) -> None:
    await two_versions(service, alarms=["shop/high-5xx"])
    for advance in (0, 60, 60, 100):
        clock.advance(advance)
        await service.rollouts.tick()
    assert now(store) == ("baking", 100, 1)
    alarms.firing["shop/high-5xx"] = "firing"
    await service.rollouts.tick()
    assert now(store) == ("rolled_back", 0, 1)


async def test_an_alarm_after_completion_changes_nothing(
    store: Store, clock: ManualClock, alarms: Alarms, service: FlagService
) -> None:
    await two_versions(service, alarms=["shop/high-5xx"], bake_time=0)
    for advance in (0, 60, 60):
        clock.advance(advance)
        await service.rollouts.tick()
    assert now(store) == ("completed", 100, 2)
    alarms.firing["shop/high-5xx"] = "firing"
    await service.rollouts.tick()
    assert now(store) == ("completed", 100, 2)


@pytest.mark.parametrize(
    ("command", "phase"),
    [(RolloutCommand.STOP, "stopped"), (RolloutCommand.ROLLBACK, "rolled_back")],
)
async def test_stop_and_rollback_by_hand_revert_at_once(
    store: Store, service: FlagService, command: RolloutCommand, phase: str
) -> None:
    await two_versions(service)
    await service.rollouts.tick()
    r = await service.rollouts.command("prod", command, "carol")
    assert (r.phase, r.active, r.state["percent"]) == (phase, False, 0)
    last = store.events.list(subject="flags/prod")[-1]
    assert (last.kind, last.actor) == (f"flags.rollout.{phase}", "carol")
    assert "by carol" in last.message
    with pytest.raises(ConflictError, match="no flag rollout is in progress"):
        await service.rollouts.command("prod", command, "carol")
    # the environment can change again
    assert (await service.apply("prod", flag_set("newer"), actor="carol")).version.version == 3


async def test_a_command_for_an_unknown_environment_is_not_found(service: FlagService) -> None:
    with pytest.raises(NotFoundError):
        await service.rollouts.command("nope", RolloutCommand.STOP, "carol")


async def test_after_a_restart_the_rollout_carries_on_from_its_recorded_state(
    state_dir: Path, clock: ManualClock, alarms: Alarms
) -> None:
    state_dir.mkdir()
    with Store.open(state_dir, clock=clock) as store:
        service = FlagService(store, clock, alarms)
        await two_versions(service)
        await service.rollouts.tick()
        clock.advance(60)
        await service.rollouts.tick()
        assert now(store) == ("rolling_out", 60, 1)
    clock.advance(30)  # the server is down for half of the step's minute
    with Store.open(state_dir, clock=clock) as store:
        service = FlagService(store, clock, alarms)
        await service.rollouts.recover()
        last = store.events.list(subject="flags/prod")[-1]
        assert (last.kind, last.message) == (
            "flags.rollout.resumed",
            "prod v1 -> v2: resumed at 60 % (rolling out)",
        )
        clock.advance(29)
        await service.rollouts.tick()
        assert now(store) == ("rolling_out", 60, 1)
        clock.advance(1)
        await service.rollouts.tick()
        assert now(store) == ("baking", 100, 1)
        clock.advance(120)
        await service.rollouts.tick()
        assert now(store) == ("completed", 100, 2)


async def test_a_rollout_holds_while_its_alarms_cannot_be_read(
    store: Store, clock: ManualClock, alarms: Alarms, service: FlagService
) -> None:
    await two_versions(service, alarms=["shop/high-5xx"])
    await service.rollouts.tick()
    alarms.broken = True
    for _ in range(5):
        clock.advance(60)
        await service.rollouts.tick()
        assert now(store) == ("rolling_out", 20, 1)
    alarms.broken = False
    await service.rollouts.tick()
    assert now(store) == ("rolling_out", 60, 1)


async def test_guarding_alarms_are_checked_before_anything_is_saved(
    store: Store, alarms: Alarms, service: FlagService
) -> None:
    service.create_environment("prod", "", "alice")
    await service.apply("prod", flag_set("old"), actor="alice")
    with pytest.raises(SpecError) as err:
        await service.apply(
            "prod", flag_set("new"), actor="bob", rollout=spec(alarms=["shop/slow", "shop/typo"])
        )
    assert [(p.path, p.message) for p in err.value.problems] == [
        ("rollout.alarms[1]", "unknown alarm 'shop/typo'")
    ]
    alarms.firing["shop/slow"] = "p99 2.1 s > 1 s"
    with pytest.raises(ConflictError, match=r"shop/slow \(p99 2.1 s > 1 s\) is firing"):
        await service.apply(
            "prod", flag_set("new"), actor="bob", rollout=spec(alarms=["shop/slow"])
        )
    assert store.flags.environment("prod").latest_version == 1


async def test_without_an_alarm_engine_alarms_cannot_guard(
    store: Store, clock: ManualClock
) -> None:
    service = FlagService(store, clock, alarms=None)
    service.create_environment("prod", "", "alice")
    await service.apply("prod", flag_set("old"), actor="alice")
    with pytest.raises(SpecError, match="no alarm engine is connected"):
        await service.apply(
            "prod", flag_set("new"), actor="bob", rollout=spec(alarms=["shop/slow"])
        )
    applied = await service.apply("prod", flag_set("new"), actor="bob", rollout=spec())
    assert applied.rollout is not None


async def test_during_a_rollout_evaluation_follows_each_users_side(
    store: Store, clock: ManualClock, service: FlagService
) -> None:
    from sluicegate.flags import sees_new_version

    r = await two_versions(service)
    await service.rollouts.tick()
    sides = set()
    for n in range(200):
        user = f"user-{n}"
        got = service.evaluate("prod", "checkout", {"targetingKey": user})
        new = sees_new_version(r.id, user, 20)
        sides.add(new)
        assert (got["value"], got["version"]) == (("new", 2) if new else ("old", 1))
        assert got["rollout"] == {
            "id": r.id,
            "from_version": 1,
            "to_version": 2,
            "percent": 20.0,
            "gets_new_version": new,
        }
    assert sides == {True, False}
    pinned = service.evaluate("prod", "checkout", {"targetingKey": "x"}, version=2)
    assert (pinned["value"], pinned["rollout"]) == ("new", None)
