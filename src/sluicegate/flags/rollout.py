"""A flag-set rollout as a pure function: decide, then apply (DESIGN.md), small.

Publishing version N+1 of an environment's flag set gradually: the share of users who get
N+1 follows the same :class:`~sluicegate.deploy.strategies.Plan` of weight steps a
deployment follows (a step sets the share, then waits its pause), and the wait at 100 % is
the **bake time**, during which the guarding alarms still revert. Who is in the share is
:func:`~sluicegate.flags.sees_new_version` of the rollout id and the user's targeting key,
so it is sticky and the same on every host (see :mod:`sluicegate.flags._resolve`).

``decide(state, plan, obs)`` returns the next state and the actions for one observation
(the clock, a firing guard alarm, a command); it does no I/O and reads no clock. Phases::

    ROLLING_OUT (the plan's steps) -> BAKING (100 %, the bake time) -> COMPLETED
    a guard alarm firing in ROLLING_OUT or BAKING, or `rollback` -> ROLLED_BACK
    `stop` -> STOPPED

Reverting is one change: the share goes to 0 % and N stays the environment's version.
COMPLETED publishes N+1 (:class:`Publish`). One transition per call: while
:attr:`RolloutDecision.changed`, the engine calls again at once (steps without a pause take
no time). ``now`` is wall-clock seconds, so a recorded step's start survives a restart.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sluicegate.deploy.strategies import APPCONFIG_PRESETS, Plan, Step, plan_for
from sluicegate.spec._duration import format_duration
from sluicegate.spec.flag_rollout import RolloutSpec

__all__ = [
    "Publish",
    "RecordEvent",
    "RolloutAction",
    "RolloutCommand",
    "RolloutDecision",
    "RolloutObservation",
    "RolloutPhase",
    "RolloutState",
    "decide",
    "next_step_in",
    "resume",
    "rollout_plan",
    "start",
]


class RolloutPhase(enum.StrEnum):
    ROLLING_OUT = "rolling_out"
    BAKING = "baking"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    STOPPED = "stopped"

    @property
    def terminal(self) -> bool:
        return self in (RolloutPhase.COMPLETED, RolloutPhase.ROLLED_BACK, RolloutPhase.STOPPED)


class RolloutCommand(enum.StrEnum):
    STOP = "stop"  # called off: everyone back on N, recorded as stopped
    ROLLBACK = "rollback"  # N+1 is bad: everyone back on N, recorded as rolled back


@dataclass(frozen=True)
class RolloutState:
    """What a rollout's progress is, as recorded in the store."""

    phase: RolloutPhase
    started_at: float
    step_index: int = -1  # the plan step in progress; -1 before the first
    step_started_at: float = 0.0
    percent: int = 0  # the share of users who get the new version, 0..100
    ended_at: float | None = None
    reason: str | None = None  # why it was rolled back or stopped
    alarm: str | None = None  # the guard alarm that rolled it back

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "phase": self.phase.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RolloutState:
        return cls(**{**data, "phase": RolloutPhase(data["phase"])})


@dataclass(frozen=True)
class RolloutObservation:
    """What the engine saw: the time, a firing guard alarm ``(name, reason)``, a command."""

    now: float
    alarm: tuple[str, str] | None = None
    command: RolloutCommand | None = None
    actor: str | None = None


@dataclass(frozen=True)
class RecordEvent:
    """Append event ``flags.rollout.<kind>``."""

    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Publish:
    """Make the rollout's new version the environment's version (recorded with the state)."""


RolloutAction = RecordEvent | Publish


@dataclass(frozen=True)
class RolloutDecision:
    state: RolloutState
    actions: tuple[RolloutAction, ...] = ()
    changed: bool = False


def rollout_plan(spec: RolloutSpec) -> Plan:
    """The plan a rollout follows: the AppConfig preset's (deployment duration split evenly
    among the increments, then the bake at 100 %) or the written shape's, with ``bake_time``
    (when given) as the wait at 100 %."""
    if isinstance(spec.strategy, str):
        plan = APPCONFIG_PRESETS[f"AppConfig.{spec.strategy}"]
        plan = Plan(spec.strategy, plan.steps)
    else:
        plan = plan_for(spec.strategy)
        if spec.strategy_name == "custom steps":
            plan = Plan("custom steps", plan.steps, plan.implicit_final_step)
    if spec.bake_time is None:
        return plan
    *head, last = plan.steps
    bake = Step(last.weight, spec.bake_time or None)
    return Plan(plan.name, (*head, bake), plan.implicit_final_step)


def start(now: float) -> RolloutState:
    """A rollout just created; the first ``decide`` enters the plan's first step."""
    return RolloutState(RolloutPhase.ROLLING_OUT, started_at=now, step_started_at=now)


def decide(state: RolloutState, plan: Plan, obs: RolloutObservation) -> RolloutDecision:
    """The next state and the actions; total over every phase and observation."""
    if state.phase.terminal:
        return RolloutDecision(state)
    by = f" by {obs.actor}" if obs.actor else ""
    if obs.command is RolloutCommand.STOP:
        return _revert(state, obs, RolloutPhase.STOPPED, f"stopped{by}")
    if obs.command is RolloutCommand.ROLLBACK:
        return _revert(state, obs, RolloutPhase.ROLLED_BACK, f"rolled back{by}")
    if obs.alarm is not None:
        name, reason = obs.alarm
        return _revert(
            state, obs, RolloutPhase.ROLLED_BACK, f"alarm {name} is firing: {reason}", alarm=name
        )
    i = state.step_index
    if i < 0:
        return _enter_step(state, plan, 0, obs)
    pause = plan.steps[i].pause if i < len(plan.steps) else None
    if pause is None or obs.now - state.step_started_at >= pause:
        return _enter_step(state, plan, i + 1, obs)
    return RolloutDecision(state)


def resume(state: RolloutState) -> RolloutDecision:
    """After a restart: nothing to re-apply (the store is the world agents read), so only
    say where the rollout carries on; a timed wait keeps its recorded start."""
    if state.phase.terminal:
        return RolloutDecision(state)
    return RolloutDecision(
        state,
        (
            RecordEvent(
                "resumed",
                f"resumed at {state.percent} % ({state.phase.value.replace('_', ' ')})",
                {"percent": state.percent},
            ),
        ),
    )


def next_step_in(state: RolloutState, plan: Plan, now: float) -> float | None:
    """Seconds until the current step's wait is over (None when nothing is timed)."""
    if state.phase.terminal or not 0 <= state.step_index < len(plan.steps):
        return None
    pause = plan.steps[state.step_index].pause
    return None if pause is None else max(0.0, state.step_started_at + pause - now)


def _enter_step(
    state: RolloutState, plan: Plan, i: int, obs: RolloutObservation
) -> RolloutDecision:
    if i >= len(plan.steps):
        done = replace(
            state,
            phase=RolloutPhase.COMPLETED,
            step_index=i,
            percent=100,
            step_started_at=obs.now,
            ended_at=obs.now,
        )
        return _to(
            state,
            done,
            Publish(),
            RecordEvent("completed", "completed: everyone gets the new version", {"percent": 100}),
        )
    step = plan.steps[i]
    percent = state.percent if step.weight is None else step.weight
    wait = f" for {format_duration(step.pause)}" if step.pause else ""
    if percent == 100 and step.pause:
        phase, kind = RolloutPhase.BAKING, "baking"
        message = f"baking: everyone gets the new version, watched{wait}"
    else:
        phase, kind = RolloutPhase.ROLLING_OUT, "step"
        message = (
            f"step {i + 1} of {len(plan.steps)}: {percent} % of users get the new version{wait}"
        )
    nxt = replace(state, phase=phase, step_index=i, step_started_at=obs.now, percent=percent)
    return _to(state, nxt, RecordEvent(kind, message, {"step": i + 1, "percent": percent}))


def _revert(
    state: RolloutState,
    obs: RolloutObservation,
    ending: RolloutPhase,
    reason: str,
    alarm: str | None = None,
) -> RolloutDecision:
    """Everyone back on the old version in one change."""
    nxt = replace(state, phase=ending, percent=0, ended_at=obs.now, reason=reason, alarm=alarm)
    data: dict[str, Any] = {"percent_before": state.percent}
    if alarm is not None and obs.alarm is not None:
        data.update(alarm=alarm, alarm_reason=obs.alarm[1])
    message = f"{reason}; everyone is back on the previous version"
    return _to(state, nxt, RecordEvent(ending.value, message, data))


def _to(old: RolloutState, new: RolloutState, *actions: RolloutAction) -> RolloutDecision:
    return RolloutDecision(new, actions, changed=new != old)
