"""The deployment controller: observe, decide (pure), record, then apply — and resume.

Each tick, for every active deployment: gather an ``Observation`` (green's health, finished
hooks, a stored command, a firing guard alarm, a revision that cannot run), ask
``lifecycle.decide`` for the next state, **record it with its events (and the command it
used) in one transaction before acting**, then apply the actions idempotently (start/stop
replicas, route traffic — verified by read-back — run hooks). After a crash, ``recover``
adopts recorded replicas, replays ``lifecycle.resume`` for every unfinished deployment and
re-applies the routes the store describes, so nothing half-applied survives.

Never stuck, never silent: one deployment's trouble never stops the others. A revision that
cannot run, or routes the router refuses for the deployment's own service, are decided on at
once (FAILED with the cause). Anything else that fails (the router answers 500, a bug) is an
event with its message, retried every tick; after ``failure_bound`` seconds of failing the
deployment is given up: traffic back to blue, FAILED.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sluicegate.clock import Clock
from sluicegate.compute import redact
from sluicegate.compute.base import Replica, ReplicaEvent, ReplicaState
from sluicegate.compute.select import ComputeSelector
from sluicegate.deploy._routing import state_from_json, state_to_json
from sluicegate.deploy._troubles import Troubles
from sluicegate.deploy._verbs import Verbs, config_from_json
from sluicegate.deploy._world import World
from sluicegate.deploy.lifecycle import (
    Action,
    Command,
    DeploymentState,
    Observation,
    Phase,
    RecordEvent,
    RouteTestListener,
    RunHook,
    SetWeights,
    StartGreen,
    StopBlue,
    StopGreen,
    decide,
    resume,
)
from sluicegate.deploy.strategies import plan_for
from sluicegate.errors import (
    RouteRefusedError,
    SluicegateError,
    SpecError,
)
from sluicegate.router.traffic import TrafficControl
from sluicegate.spec.service import ServiceSpec
from sluicegate.store import Deployment, DeploymentCommand, Store

__all__ = ["AlarmCheck", "Controller", "HoldCheck", "state_from_json", "state_to_json"]

log = logging.getLogger(__name__)
AlarmCheck = Callable[[Deployment], Awaitable[str | None]]  # the firing guard alarm, if any
HoldCheck = Callable[[Deployment], str | None]  # why a step must wait for a verdict
_MAX_DECISIONS_PER_TICK = 20
FAILURE_BOUND = 60.0
"""Seconds a deployment may keep failing to apply (router errors, bugs) before it is given up."""


def _status(phase: Phase) -> str:
    return phase.value if phase.terminal else "in_progress"


class Controller(Verbs):
    def __init__(
        self,
        store: Store,
        computes: ComputeSelector,
        traffic: TrafficControl,
        clock: Clock,
        alarms: AlarmCheck | None = None,
        hold: HoldCheck | None = None,
        failure_bound: float = FAILURE_BOUND,
    ) -> None:
        self.store = store
        self.clock = clock
        self.alarms = alarms
        self.hold = hold
        self.world = World(store, computes, traffic, clock)
        # Deployments whose last actions failed part-way: replayed (idempotently) first.
        self._unsettled: set[str] = set()
        self._troubles = Troubles(store, clock, failure_bound)
        self._green_failed: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._refused: dict[str, str] = {}  # the router refused the deployment's own routes
        self._lock = asyncio.Lock()

    @property
    def failure_bound(self) -> float:
        """Seconds a deployment may keep failing to apply before it is given up."""
        return self._troubles.bound

    @failure_bound.setter
    def failure_bound(self, seconds: float) -> None:
        self._troubles.bound = seconds

    @property
    def traffic(self) -> TrafficControl:
        return self.world.traffic

    def on_replica_event(self, event: ReplicaEvent) -> None:
        """Pass as compute's ``on_change``: keeps replica records true (see World)."""
        self.world.on_replica_event(event)

    # -- the loop -------------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a (re)start: adopt replicas, replay every unfinished deployment, re-route.
        What fails here is retried by the ticks that follow (the deployments stay unsettled)."""
        async with self._lock:
            await self._adopt()
            for active in self.store.deployments.list_active():
                self._unsettled.add(active.id)
                try:
                    spec = self.spec_of(active.service)
                    state = state_from_json(active.state)
                    decision = resume(state, spec, self.clock.now())
                    dep = self._record(active, state, decision.state, ())
                    await self._apply(dep, spec, decision.actions)
                    self._unsettled.discard(active.id)
                except Exception as exc:
                    self._trouble(active, exc)
            try:
                await self.world.route()
            except SluicegateError as exc:
                log.warning("cannot put the routes back yet (%s); the next ticks retry", exc)

    async def _adopt(self) -> None:
        groups: dict[tuple[str, str], list[Replica]] = {}
        for r in self.store.replicas.list():
            groups.setdefault((r.service, r.revision), []).append(
                Replica(
                    r.service,
                    r.revision,
                    r.index,
                    r.port or 0,
                    r.pid,
                    int(r.pid_start_time) if r.pid_start_time else None,
                )
            )
        for (service, revision), records in groups.items():
            try:
                await self.world.adopt(service, revision, records)
            except Exception:  # one service's replicas must not keep the others unadopted
                log.exception("cannot adopt the replicas of %s %s", service, revision)

    async def tick(self) -> None:
        async with self._lock:
            for dep in self.store.deployments.list_active():
                try:
                    await self._advance(dep)
                except Exception as exc:  # one deployment's trouble never stops the others
                    self._trouble(dep, exc)
                else:
                    self._troubles.cleared(dep.id)

    async def _advance(self, dep: Deployment) -> None:
        spec = self.spec_of(dep.service)
        plan = plan_for(config_from_json(dep.config["plan"]))
        if dep.id in self._unsettled:
            # The world may lag the record (an action failed): make it match, then go on.
            replay = resume(state_from_json(dep.state), spec, self.clock.now())
            await self._apply(dep, spec, replay.actions)
            self._unsettled.discard(dep.id)
        for _ in range(_MAX_DECISIONS_PER_TICK):
            state = state_from_json(dep.state)
            obs, command = await self._observe(dep, state, spec)
            decision = decide(state, plan, spec, obs)
            dep = self._record(dep, state, decision.state, decision.actions, command)
            self._unsettled.add(dep.id)
            await self._apply(dep, spec, decision.actions)
            self._unsettled.discard(dep.id)
            if not dep.active:
                self._ended(dep.id)
                return
            if not decision.changed:
                return

    async def _observe(
        self, dep: Deployment, state: DeploymentState, spec: ServiceSpec
    ) -> tuple[Observation, DeploymentCommand | None]:
        healthy = ready = None
        failed, logs = self._green_failed.get(dep.id, (None, ()))
        if state.phase in (Phase.HEALTH_GATE, Phase.BEFORE_ALLOW_TRAFFIC) and failed is None:
            try:
                health = await self.world.health(dep, spec)
            except SpecError as exc:  # an external revision whose endpoints went away
                health, failed = [], "; ".join(p.message for p in exc.problems)
            ready = sum(1 for h in health if h.healthy)
            healthy = bool(health) and ready == len(health)
            gave_up = [h for h in health if h.state is ReplicaState.FAILED]
            if gave_up:
                failed = f"replica {gave_up[0].replica.index}: {gave_up[0].detail}"
                logs = self.world.last_lines(dep.service, dep.revision, gave_up[0].replica.index)
        pending = self.store.commands.pending(dep.id)
        command = pending[0] if pending else None
        alarm = await self.alarms(dep) if self.alarms is not None else None
        hold = None
        if self.hold is not None and spec.deployment.wait_for_verdict:
            hold = self.hold(dep)
        obs = Observation(
            now=self.clock.now(),
            green_healthy=healthy,
            green_ready_replicas=ready,
            hook_outcome=self.world.hook_outcome(dep.id),
            alarm_firing=alarm,
            hold=hold,
            command=Command(command.command) if command else None,
            actor=command.actor if command else None,
            green_failed=failed,
            green_logs=logs,
            failure=self._refused.get(dep.id),
        )
        return obs, command

    def _record(
        self,
        dep: Deployment,
        old: DeploymentState | None,
        new: DeploymentState,
        actions: tuple[Action, ...],
        command: DeploymentCommand | None = None,
    ) -> Deployment:
        """The new state, its events and the command it used, in one transaction."""
        events = [a for a in actions if isinstance(a, RecordEvent)]
        changed = new != old
        if not changed and not events and command is None:
            return dep
        secrets = self.world.secrets_of(dep.service) if events else []  # before the write lock
        with self.store.transaction() as tx:
            if changed:
                dep = tx.deployments.update(
                    dep.id,
                    dep.version,
                    state=state_to_json(new),
                    phase=new.phase.value,
                    status=_status(new.phase),
                    active=not new.phase.terminal,
                )
            for e in events:  # what hooks and replicas said, never a secret they were given
                tx.events.append(
                    actor="controller",
                    kind=f"deployment.{e.kind}",
                    subject=dep.id,
                    message=redact(e.message, secrets),
                    data={"logs": [redact(line, secrets) for line in e.logs]} if e.logs else None,
                )
            if command is not None:
                tx.commands.mark_handled(command.id)
        return dep

    def _trouble(self, dep: Deployment, exc: Exception) -> None:
        """One deployment's trouble never stops the others: said once, retried, given up
        after the bound (see :mod:`~sluicegate.deploy._troubles`)."""
        if self._troubles.failed(dep, exc, self._record):
            self._unsettled.add(dep.id)

    def _ended(self, dep_id: str) -> None:
        self._troubles.cleared(dep_id)
        self._green_failed.pop(dep_id, None)
        self._refused.pop(dep_id, None)
        self.world.forget(dep_id)

    # -- applying actions (idempotent) ------------------------------------------------------------

    async def _apply(self, dep: Deployment, spec: ServiceSpec, actions: tuple[Action, ...]) -> None:
        """Apply ``actions`` in order; raises what fails, except what the lifecycle decides
        on: a green that cannot run, routes refused for this service."""
        reroute = False
        for action in actions:
            if isinstance(action, StartGreen):
                try:
                    await self.world.start(dep, spec)
                except SpecError as exc:  # it cannot run: the next decision fails it
                    detail = "; ".join(p.message for p in exc.problems) or str(exc)
                    self._green_failed[dep.id] = (
                        detail,
                        self.world.last_lines(dep.service, dep.revision),
                    )
            elif isinstance(action, StopGreen):
                reroute = True
                await self.world.stop(dep.service, dep.revision, spec)
            elif isinstance(action, StopBlue):
                reroute = True
                if dep.from_revision is not None:
                    await self.world.stop(dep.service, dep.from_revision, spec)
            elif isinstance(action, SetWeights | RouteTestListener):
                # Now, not after the loop: a hook that follows must find the route in place.
                await self._route(dep)
                if isinstance(action, SetWeights) and action.green_percent == 0:
                    self._restored(dep)
            elif isinstance(action, RunHook):
                self.world.run_hook(dep, spec, action)
            # RecordEvent: written with the state (``_record``).
        if reroute:
            await self._route(dep)

    async def _route(self, dep: Deployment) -> None:
        try:
            await self.world.route()
        except RouteRefusedError as exc:
            state = state_from_json(dep.state)
            if dep.service not in exc.services or state.phase is Phase.ROLLING_BACK:
                raise  # not this deployment's to decide on, or its rollback: retried
            problems = "; ".join(str(p) for p in exc.problems)
            self._refused[dep.id] = f"the router refused the routes of {dep.service}: {problems}"

    def _restored(self, dep: Deployment) -> None:
        """All production traffic is back on blue (the router confirmed the weights): say how
        long after the decision to roll back, the blast radius' last term."""
        state = state_from_json(dep.state)
        if state.phase is not Phase.ROLLING_BACK:
            return
        now = self.clock.now()
        took = now - state.phase_started_at
        self.store.events.append(
            actor="controller",
            kind="deployment.traffic_restored",
            subject=dep.id,
            message=f"all traffic back on {dep.from_revision} {took * 1000:.0f} ms after the"
            f" decision to roll back ({state.reason})",
            data={"decided_at": state.phase_started_at, "restored_at": now, "reason": state.reason},
        )
