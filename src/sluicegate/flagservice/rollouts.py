"""The flag-rollout engine: observe, decide (pure), record — and resume after a restart.

Each tick, for every rollout in progress: read the clock and the guarding alarms, ask
:func:`sluicegate.flags.rollout.decide` for the next state, and record it with its events in
one transaction. Recording *is* acting here: the share of users on the new version, and on
completion the environment's current version, live in the store that the API, agents and
SDKs read, so nothing can be half-applied. After a restart :meth:`RolloutEngine.recover`
notes where each unfinished rollout carries on; timed waits keep their recorded start.

Alarms come through the :data:`AlarmLookup` seam: ``await lookup("shop/high-5xx")`` returns a
firing reason or None, and raises :class:`~sluicegate.errors.NotFoundError` for an alarm
that does not exist. A lookup that fails holds the rollout where it is (logged) until the
alarm states can be read again: a rollout never widens unwatched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sluicegate.clock import Clock
from sluicegate.deploy.strategies import Plan, describe
from sluicegate.errors import ConflictError, NotFoundError, Problem, SluicegateError, SpecError
from sluicegate.flags.rollout import (
    Publish,
    RecordEvent,
    RolloutAction,
    RolloutCommand,
    RolloutObservation,
    RolloutState,
    decide,
    next_step_in,
    resume,
    rollout_plan,
)
from sluicegate.spec.flag_rollout import RolloutSpec
from sluicegate.store import FlagRollout, Store

__all__ = ["AlarmLookup", "RolloutEngine", "subject_of"]

log = logging.getLogger(__name__)

AlarmLookup = Callable[[str], Awaitable[str | None]]
"""``await lookup(name)``: the alarm's firing reason, None when it is not firing;
raises NotFoundError for an unknown alarm (the alarm engine's seam)."""

_MAX_DECISIONS_PER_TICK = 20
ENGINE_ACTOR = "flag-rollouts"


def subject_of(env: str) -> str:
    """The event-log subject of an environment's versions and rollouts."""
    return f"flags/{env}"


class RolloutEngine:
    def __init__(self, store: Store, clock: Clock, alarms: AlarmLookup | None = None) -> None:
        self.store = store
        self.clock = clock
        self.alarms = alarms
        self._lock = asyncio.Lock()

    # -- checks and commands ------------------------------------------------------------------

    async def check_alarms(self, names: Sequence[str], path: str = "rollout.alarms") -> None:
        """Before a rollout starts: every guarding alarm exists (else SpecError naming it)
        and none is firing (else ConflictError: the rollout would revert at once)."""
        if not names:
            return
        if self.alarms is None:
            raise SpecError(
                [
                    Problem(
                        path,
                        "no alarm engine is connected to this server, so "
                        "alarms cannot guard a flag rollout",
                    )
                ]
            )
        problems, firing = [], []
        for i, name in enumerate(names):
            try:
                reason = await self.alarms(name)
            except NotFoundError:
                problems.append(Problem(f"{path}[{i}]", f"unknown alarm {name!r}"))
                continue
            if reason is not None:
                firing.append(f"{name} ({reason})")
        if problems:
            raise SpecError(problems)
        if firing:
            raise ConflictError(
                f"alarm {', '.join(firing)} is firing; a rollout guarded by "
                "it would be reverted at once"
            )

    async def command(
        self, env: str, command: RolloutCommand, actor: str, reason: str = ""
    ) -> FlagRollout:
        """Stop or roll back the environment's rollout now; returns it as recorded. A
        ``reason`` is recorded first, as a ``flags.rollout.command`` event by ``actor``."""
        async with self._lock:
            rollout = self.store.flag_rollouts.active_for(env)
            if rollout is None:
                self.store.flags.environment(env)  # NotFoundError for an unknown env
                raise ConflictError(f"no flag rollout is in progress in {env!r}")
            if reason:
                self.store.events.append(
                    "flags.rollout.command",
                    subject_of(env),
                    f"{command} asked by {actor}: {reason}",
                    actor=actor,
                    data={"env": env, "rollout": rollout.id, "command": command, "reason": reason},
                )
            state = RolloutState.from_json(rollout.state)
            obs = RolloutObservation(self.clock.now(), command=command, actor=actor)
            decision = decide(state, _plan(rollout), obs)
            return self._record(rollout, decision.state, decision.actions, actor)

    def progress(self, rollout: FlagRollout) -> dict[str, Any]:
        """For views: the plan (its name, step count, and described step by step) and the
        seconds to the next step."""
        plan = _plan(rollout)
        state = RolloutState.from_json(rollout.state)
        return {
            "steps": len(plan.steps),
            "plan": plan.name,
            "plan_text": describe(plan),
            "next_step_in": next_step_in(state, plan, self.clock.now()),
        }

    # -- the loop ---------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a (re)start: say where every unfinished rollout carries on."""
        async with self._lock:
            for rollout in self.store.flag_rollouts.list_active():
                decision = resume(RolloutState.from_json(rollout.state))
                self._record(rollout, decision.state, decision.actions, ENGINE_ACTOR)

    async def tick(self) -> None:
        async with self._lock:
            for rollout in self.store.flag_rollouts.list_active():
                try:
                    await self._advance(rollout)
                except SluicegateError as exc:
                    log.warning(
                        "flag rollout %s of %s: %s (holding; will retry)",
                        rollout.id,
                        rollout.env,
                        exc,
                    )
                except Exception:  # one rollout's bug must not hold up the others
                    log.exception(
                        "flag rollout %s of %s: tick failed (holding; will retry)",
                        rollout.id,
                        rollout.env,
                    )

    async def _advance(self, rollout: FlagRollout) -> None:
        plan = _plan(rollout)
        for _ in range(_MAX_DECISIONS_PER_TICK):
            state = RolloutState.from_json(rollout.state)
            alarm = await self._firing(rollout)
            decision = decide(state, plan, RolloutObservation(self.clock.now(), alarm=alarm))
            rollout = self._record(rollout, decision.state, decision.actions, ENGINE_ACTOR)
            if not decision.changed or not rollout.active:
                return

    async def _firing(self, rollout: FlagRollout) -> tuple[str, str] | None:
        names = RolloutSpec.model_validate(rollout.strategy).alarms
        if names and self.alarms is None:
            raise SluicegateError(
                "its guarding alarms cannot be read: no alarm engine is connected"
            )
        for name in names:
            assert self.alarms is not None
            reason = await self.alarms(name)
            if reason is not None:
                return name, reason
        return None

    def _record(
        self,
        rollout: FlagRollout,
        state: RolloutState,
        actions: tuple[RolloutAction, ...],
        actor: str,
    ) -> FlagRollout:
        """The new state, its events and (on completion) the new current version: one
        transaction, so what agents read never runs ahead of the log."""
        if state == RolloutState.from_json(rollout.state) and not actions:
            return rollout
        publish = any(isinstance(a, Publish) for a in actions)
        head = f"{rollout.env} v{rollout.from_version} -> v{rollout.to_version}"
        with self.store.transaction() as tx:
            if state != RolloutState.from_json(rollout.state):
                rollout = tx.flag_rollouts.update(
                    rollout.id,
                    rollout.version,
                    state=state.to_json(),
                    phase=state.phase.value,
                    active=not state.phase.terminal,
                    publish=publish,
                )
            for action in actions:
                if isinstance(action, RecordEvent):
                    tx.events.append(
                        f"flags.rollout.{action.kind}",
                        subject_of(rollout.env),
                        f"{head}: {action.message}",
                        actor=actor,
                        data={
                            "env": rollout.env,
                            "rollout": rollout.id,
                            "from_version": rollout.from_version,
                            "to_version": rollout.to_version,
                            **action.data,
                        },
                    )
        return rollout


def _plan(rollout: FlagRollout) -> Plan:
    return rollout_plan(RolloutSpec.model_validate(rollout.strategy))
