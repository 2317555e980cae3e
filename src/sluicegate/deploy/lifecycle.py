"""The blue/green deployment lifecycle as a pure function: decide, then apply (DESIGN.md).

``decide(state, plan, spec, obs)`` looks at the recorded :class:`DeploymentState`, the
:class:`~sluicegate.deploy.strategies.Plan`, the service spec and one
:class:`Observation` (the clock, green's health, the result of the hook in progress, a
firing guard alarm, a human command) and returns a :class:`Decision`: the next state and the
actions that make the world match it. The controller records the new state, then applies
the actions idempotently; after a crash it calls :func:`resume` and carries on. Nothing here
does I/O, reads a clock or raises for an expected situation: every (phase, observation) has
an outcome. ``now`` is wall-clock seconds (``time.time()``) so recorded times survive a
restart.

The phases follow CodeDeploy's ECS blue/green lifecycle::

    PROVISIONING → HEALTH_GATE → BEFORE_ALLOW_TRAFFIC (test listener on green, hooks)
      → SHIFTING ⇄ PAUSED_UNTIL_PROMOTED (the plan's steps) → AFTER_ALLOW_TRAFFIC (hooks)
      → TERMINATION_WAIT (blue still up) → SUCCEEDED (blue stopped)
    any failure or command → ROLLING_BACK → ROLLED_BACK | FAILED | STOPPED

Rules:

- Health gate: green must be healthy within ``deployment.health_timeout``, else FAILED.
- A green that cannot run (``obs.green_failed``: its command cannot start, a replica
  crashed too often in a row) ends FAILED at once before production traffic, and rolls
  back once it has some; the event carries green's last log lines.
- ``obs.failure`` (the controller could not make the world match the record within its
  bound, or the router refused the service's routes) ends FAILED from any phase.
- A hook that fails or outlives its timeout (+ :data:`HOOK_GRACE`) rolls back.
- A firing guard alarm rolls back at once while green takes production traffic and blue
  can take it back: SHIFTING, PAUSED_UNTIL_PROMOTED, AFTER_ALLOW_TRAFFIC, TERMINATION_WAIT.
  Before that green has no production traffic, so alarms are not its doing.
- Rolling back is one weight change (all traffic to blue), the test listener back to blue,
  green stopped. A health-gate timeout ends FAILED; hooks, alarms and ``rollback`` end
  ROLLED_BACK; ``stop`` ends STOPPED (as CodeDeploy's ECS stop: traffic back to blue).
- A timed step whose pause is over still waits while the guards have no verdict on green
  (``obs.hold``: "never promote on no data"); the wait is an event once, and ``promote``
  ends it as it ends any wait.
- ``promote`` ends the current step's wait (a timed pause or a manual gate), or the
  termination wait (blue is stopped now); ``promote_full`` sends all traffic to green and
  goes to the after-traffic hooks. A command that means nothing in the phase is ignored with
  an event saying why.
- First deployment (no blue): start green, health gate, hooks, then all traffic at once
  (the plan is not used), no termination wait. Nothing can take traffic back, so once green
  serves, alarms are not acted on and ``rollback``/``stop`` are refused with an event.
- One transition per call: when :attr:`Decision.changed`, the controller calls ``decide``
  again at once with the same observation minus its ``command`` and ``hook_outcome``
  (they were used), so steps without a pause take no wall time.
"""

from __future__ import annotations

from dataclasses import replace

from sluicegate.deploy._lifecycle_model import (
    _PROMOTABLE,
    Action,
    Command,
    Decision,
    DeploymentState,
    HookOutcome,
    HookStage,
    Observation,
    Phase,
    RecordEvent,
    RouteTestListener,
    RunHook,
    SetWeights,
    StartGreen,
    StopBlue,
    StopGreen,
)
from sluicegate.deploy.strategies import Plan
from sluicegate.spec._duration import format_duration
from sluicegate.spec.service import HookSpec, ServiceSpec

__all__ = [
    "HOOK_GRACE",
    "Action",
    "Command",
    "Decision",
    "DeploymentState",
    "HookOutcome",
    "HookStage",
    "Observation",
    "Phase",
    "RecordEvent",
    "RouteTestListener",
    "RunHook",
    "SetWeights",
    "StartGreen",
    "StopBlue",
    "StopGreen",
    "abandon",
    "decide",
    "resume",
    "start",
]

HOOK_GRACE = 5.0
"""Seconds past a hook's own timeout before the lifecycle gives up waiting for its result."""


def start(now: float, *, has_blue: bool) -> DeploymentState:
    """The state of a deployment just created; the first ``decide`` starts green."""
    return DeploymentState(Phase.PROVISIONING, has_blue, now, step_started_at=now)


def abandon(
    state: DeploymentState | None, *, has_blue: bool, now: float, reason: str
) -> DeploymentState:
    """The state of a deployment given up on because deciding or applying kept failing:
    rolling back (all traffic to blue when there is one) to end FAILED. ``state`` is None
    when the recorded one cannot even be read; :func:`resume` then makes the world match."""
    if state is None:
        return DeploymentState(
            Phase.ROLLING_BACK, has_blue, now, ending=Phase.FAILED, reason=reason
        )
    if state.phase.terminal or state.phase is Phase.ROLLING_BACK:
        return state
    return replace(
        state,
        phase=Phase.ROLLING_BACK,
        phase_started_at=now,
        green_weight=0 if has_blue else state.green_weight,
        test_traffic_on_green=False,
        ending=Phase.FAILED,
        reason=reason,
    )


def decide(state: DeploymentState, plan: Plan, spec: ServiceSpec, obs: Observation) -> Decision:
    """The next state and the actions to apply; total over every phase and observation."""
    if state.phase.terminal:
        return Decision(state)
    if state.phase is Phase.ROLLING_BACK:
        ending = state.ending or Phase.ROLLED_BACK
        done = replace(state, phase=ending, phase_started_at=obs.now)
        return _to(state, done, RecordEvent(ending.value, state.reason or ending.value))

    by = f" by {obs.actor}" if obs.actor else ""
    if obs.command in (Command.ROLLBACK, Command.STOP):
        ending = Phase.STOPPED if obs.command is Command.STOP else Phase.ROLLED_BACK
        verb = "stopped" if obs.command is Command.STOP else "rolled back"
        if not state.has_blue and state.green_weight > 0:
            return _ignore(
                state, obs, "there is no previous revision to return traffic to", "refused"
            )
        return _abort(state, spec, obs, ending, obs.command.value, f"{verb}{by}")
    if obs.alarm_firing and state.phase.guarded and state.has_blue:
        return _abort(
            state, spec, obs, Phase.ROLLED_BACK, "alarm", f"guard fired: {obs.alarm_firing}"
        )
    if obs.failure:
        return _abort(state, spec, obs, Phase.FAILED, "failure", obs.failure)
    if obs.green_failed and (state.has_blue or not state.phase.guarded):
        ending = Phase.ROLLED_BACK if state.phase.guarded else Phase.FAILED
        reason = f"green cannot run: {obs.green_failed}"
        return _abort(state, spec, obs, ending, "green_failed", reason, obs.green_logs)

    if obs.command is not None and state.phase not in _PROMOTABLE:
        # Promote means nothing here: decide as if it were not given, and say so.
        d = _phase(state, plan, spec, replace(obs, command=None))
        why = f"nothing to promote during {state.phase.value.replace('_', ' ')}"
        return replace(d, actions=(*d.actions, *_ignore(state, obs, why).actions))
    return _phase(state, plan, spec, obs)


def _phase(state: DeploymentState, plan: Plan, spec: ServiceSpec, obs: Observation) -> Decision:
    match state.phase:
        case Phase.PROVISIONING:
            nxt = replace(state, phase=Phase.HEALTH_GATE, phase_started_at=obs.now)
            return _to(state, nxt, StartGreen(), RecordEvent("provisioning", "starting green"))
        case Phase.HEALTH_GATE:
            return _health_gate(state, spec, obs)
        case Phase.BEFORE_ALLOW_TRAFFIC:
            hooks = spec.deployment.hooks.before_allow_traffic
            return _hooks(state, plan, spec, obs, HookStage.BEFORE_ALLOW_TRAFFIC, hooks)
        case Phase.SHIFTING | Phase.PAUSED_UNTIL_PROMOTED:
            return _shifting(state, plan, spec, obs)
        case Phase.AFTER_ALLOW_TRAFFIC:
            hooks = spec.deployment.hooks.after_allow_traffic
            return _hooks(state, plan, spec, obs, HookStage.AFTER_ALLOW_TRAFFIC, hooks)
        case _:  # TERMINATION_WAIT, the only phase left
            return _termination_wait(state, spec, obs)


def resume(state: DeploymentState, spec: ServiceSpec, now: float) -> Decision:
    """After a restart: the idempotent actions that make the world match ``state``.

    A hook in progress is started again (hooks must be safe to repeat) and its timeout
    counts from ``now``; timed waits keep their recorded start.
    """
    phase, acts = state.phase, list[Action]()
    test_port = spec.listener.test_port is not None
    if phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.FAILED, Phase.STOPPED):
        acts += _cleanup(state, test_port)
        return Decision(state, tuple(acts))
    if phase is Phase.SUCCEEDED:
        acts.append(SetWeights(100))
        if test_port:
            acts.append(RouteTestListener(True))
        if state.has_blue:
            acts.append(StopBlue())
        return Decision(state, tuple(acts))
    if phase is Phase.PROVISIONING:
        return Decision(state)
    acts.append(StartGreen())
    if state.test_traffic_on_green:
        acts.append(RouteTestListener(True))
    if phase not in (Phase.HEALTH_GATE, Phase.BEFORE_ALLOW_TRAFFIC):
        acts.append(SetWeights(state.green_weight))
    stage, hooks = _stage_of(phase, spec)
    if stage is not None and state.hook_index < len(hooks):
        acts.append(RunHook(stage, state.hook_index))
        new = replace(state, step_started_at=now)
        return Decision(new, tuple(acts), changed=new != state)
    return Decision(state, tuple(acts))


# --- phases ------------------------------------------------------------------------------


def _health_gate(state: DeploymentState, spec: ServiceSpec, obs: Observation) -> Decision:
    if obs.green_healthy:
        acts: list[Action] = [RecordEvent("healthy", "green is healthy")]
        test_on_green = spec.listener.test_port is not None
        if test_on_green:
            acts.append(RouteTestListener(True))
        hooks = spec.deployment.hooks.before_allow_traffic
        if hooks:
            acts.append(RunHook(HookStage.BEFORE_ALLOW_TRAFFIC, 0))
        nxt = replace(
            state,
            phase=Phase.BEFORE_ALLOW_TRAFFIC,
            phase_started_at=obs.now,
            step_started_at=obs.now,
            hook_index=0,
            test_traffic_on_green=test_on_green,
        )
        return _to(state, nxt, *acts)
    timeout = spec.deployment.health_timeout
    if obs.now - state.phase_started_at >= timeout:
        ready = ""
        if obs.green_ready_replicas is not None:
            local = spec.compute.local
            of = f"/{local.replicas}" if local is not None else ""
            ready = f" ({obs.green_ready_replicas}{of} replicas ready)"
        reason = f"green was not healthy within {format_duration(timeout)}{ready}"
        return _abort(state, spec, obs, Phase.FAILED, "health_gate_timeout", reason)
    return Decision(state)


def _hooks(
    state: DeploymentState,
    plan: Plan,
    spec: ServiceSpec,
    obs: Observation,
    stage: HookStage,
    hooks: list[HookSpec],
) -> Decision:
    i = state.hook_index
    if i >= len(hooks):
        if stage is HookStage.BEFORE_ALLOW_TRAFFIC:
            return _start_shifting(state, plan, spec, obs)
        return _after_hooks_done(state, spec, obs)
    ending = Phase.ROLLED_BACK if state.has_blue else Phase.FAILED
    where = f"{stage.value} hook {i + 1} of {len(hooks)}"
    r = obs.hook_outcome
    if r is not None and r.stage is stage and r.index == i:
        detail = f": {r.detail}" if r.detail else ""
        if not r.ok:
            return _abort(state, spec, obs, ending, "hook_failed", f"{where} failed{detail}")
        acts: list[Action] = [RecordEvent("hook_passed", f"{where} passed{detail}")]
        if i + 1 < len(hooks):
            acts.append(RunHook(stage, i + 1))
        nxt = replace(state, hook_index=i + 1, step_started_at=obs.now)
        return _to(state, nxt, *acts)
    limit = hooks[i].effective_timeout
    if obs.now - state.step_started_at >= limit + HOOK_GRACE:
        reason = f"{where} gave no result within {format_duration(limit)}"
        return _abort(state, spec, obs, ending, "hook_timeout", reason)
    return Decision(state)


def _start_shifting(
    state: DeploymentState, plan: Plan, spec: ServiceSpec, obs: Observation
) -> Decision:
    if not state.has_blue:
        first = RecordEvent("traffic", "first revision of the service: all traffic to green")
        return _enter_after_hooks(state, spec, obs, SetWeights(100), first)
    return _enter_step(state, plan, spec, 0, obs)


def _enter_step(
    state: DeploymentState, plan: Plan, spec: ServiceSpec, i: int, obs: Observation, *acts: Action
) -> Decision:
    if i >= len(plan.steps):
        more = [*acts] if state.green_weight == 100 else [*acts, SetWeights(100)]
        return _enter_after_hooks(state, spec, obs, *more)
    step = plan.steps[i]
    weight, more = state.green_weight, list(acts)
    if step.weight is not None and step.weight != weight:
        weight = step.weight
        more.append(SetWeights(weight))
    if step.until_promoted:
        wait = ", waiting until promoted"
    elif step.pause:
        wait = f" for {format_duration(step.pause)}"
    else:
        wait = ""
    more.append(RecordEvent("step", f"step {i + 1} of {len(plan.steps)}: green {weight}%{wait}"))
    phase = Phase.PAUSED_UNTIL_PROMOTED if step.until_promoted else Phase.SHIFTING
    nxt = replace(
        state,
        phase=phase,
        phase_started_at=obs.now if phase is not state.phase else state.phase_started_at,
        step_index=i,
        step_started_at=obs.now,
        green_weight=weight,
        holding=None,
    )
    return _to(state, nxt, *more)


def _shifting(state: DeploymentState, plan: Plan, spec: ServiceSpec, obs: Observation) -> Decision:
    i = state.step_index
    by = f" by {obs.actor}" if obs.actor else ""
    if obs.command is Command.PROMOTE_FULL:
        promoted = RecordEvent("promoted", f"promoted to all traffic{by}")
        acts: list[Action] = [promoted]
        if state.green_weight != 100:
            acts.append(SetWeights(100))
        return _enter_after_hooks(state, spec, obs, *acts)
    if obs.command is Command.PROMOTE:
        promoted = RecordEvent("promoted", f"promoted{by}")
        return _enter_step(state, plan, spec, i + 1, obs, promoted)
    if i >= len(plan.steps):
        return _enter_step(state, plan, spec, i, obs)
    step = plan.steps[i]
    if step.until_promoted:
        return Decision(state)
    if step.pause is None or obs.now - state.step_started_at >= step.pause:
        if step.pause and obs.hold:
            if state.holding is not None:
                return Decision(state)
            held = RecordEvent("holding", f"step {i + 1} waits: {obs.hold}")
            return _to(state, replace(state, holding=obs.hold), held)
        return _enter_step(state, plan, spec, i + 1, obs)
    return Decision(state)


def _enter_after_hooks(
    state: DeploymentState, spec: ServiceSpec, obs: Observation, *acts: Action
) -> Decision:
    more = [*acts, RecordEvent("traffic_shifted", "all traffic on green")]
    if spec.deployment.hooks.after_allow_traffic:
        more.append(RunHook(HookStage.AFTER_ALLOW_TRAFFIC, 0))
    nxt = replace(
        state,
        phase=Phase.AFTER_ALLOW_TRAFFIC,
        phase_started_at=obs.now,
        step_started_at=obs.now,
        green_weight=100,
        hook_index=0,
    )
    return _to(state, nxt, *more)


def _after_hooks_done(state: DeploymentState, spec: ServiceSpec, obs: Observation) -> Decision:
    if not state.has_blue:
        nxt = replace(state, phase=Phase.SUCCEEDED, phase_started_at=obs.now)
        return _to(state, nxt, RecordEvent("succeeded", "deployment succeeded"))
    wait = format_duration(spec.deployment.termination_wait or 0.0)
    nxt = replace(state, phase=Phase.TERMINATION_WAIT, phase_started_at=obs.now)
    return _to(state, nxt, RecordEvent("termination_wait", f"keeping blue for {wait}"))


def _termination_wait(state: DeploymentState, spec: ServiceSpec, obs: Observation) -> Decision:
    by = f" by {obs.actor}" if obs.actor else ""
    if obs.command in (Command.PROMOTE, Command.PROMOTE_FULL):
        why = f"termination wait ended early{by}"
    elif obs.now - state.phase_started_at >= spec.deployment.termination_wait:
        why = "termination wait over"
    else:
        return Decision(state)
    nxt = replace(state, phase=Phase.SUCCEEDED, phase_started_at=obs.now)
    return _to(state, nxt, StopBlue(), RecordEvent("succeeded", f"{why}; blue stopped"))


# --- helpers -----------------------------------------------------------------------------


def _to(old: DeploymentState, new: DeploymentState, *acts: Action) -> Decision:
    return Decision(new, acts, changed=new != old)


def _ignore(state: DeploymentState, obs: Observation, why: str, verb: str = "ignored") -> Decision:
    by = f" from {obs.actor}" if obs.actor else ""
    what = obs.command.value if obs.command is not None else "command"
    msg = f"{what}{by} {verb}: {why}"
    return Decision(state, (RecordEvent(f"command_{verb}", msg),))


def _cleanup(state: DeploymentState, test_port: bool) -> list[Action]:
    acts: list[Action] = []
    if state.has_blue:
        acts.append(SetWeights(0))
        if test_port:
            acts.append(RouteTestListener(False))
    acts.append(StopGreen())
    return acts


def _abort(
    state: DeploymentState,
    spec: ServiceSpec,
    obs: Observation,
    ending: Phase,
    kind: str,
    reason: str,
    logs: tuple[str, ...] = (),
) -> Decision:
    """Send everything back to blue in one change and stop green; ends in ``ending``."""
    nxt = replace(
        state,
        phase=Phase.ROLLING_BACK,
        phase_started_at=obs.now,
        green_weight=0 if state.has_blue else state.green_weight,
        test_traffic_on_green=False,
        ending=ending,
        reason=reason,
    )
    cleanup = _cleanup(state, spec.listener.test_port is not None)
    return _to(state, nxt, RecordEvent(kind, reason, logs), *cleanup)


def _stage_of(phase: Phase, spec: ServiceSpec) -> tuple[HookStage | None, list[HookSpec]]:
    if phase is Phase.BEFORE_ALLOW_TRAFFIC:
        return HookStage.BEFORE_ALLOW_TRAFFIC, spec.deployment.hooks.before_allow_traffic
    if phase is Phase.AFTER_ALLOW_TRAFFIC:
        return HookStage.AFTER_ALLOW_TRAFFIC, spec.deployment.hooks.after_allow_traffic
    return None, []
