"""The deployment controller: observe, decide (pure), record, then apply — and resume.

Each tick, for every active deployment: gather an ``Observation`` (green's health, finished
hooks, a pending command, a firing guard alarm), ask ``lifecycle.decide`` for the next state,
**record it in the store before acting**, then apply the actions idempotently (start/stop
replicas, route traffic — verified by read-back — run hooks, append events). After a crash,
``recover`` adopts recorded replicas, replays ``lifecycle.resume`` for every unfinished
deployment and re-applies the routes the store describes, so nothing half-applied survives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sluicegate.clock import Clock
from sluicegate.compute.base import EventKind, ExternalSpec, LocalSpec, Replica, ReplicaEvent
from sluicegate.compute.external import ExternalCompute
from sluicegate.compute.local import LocalCompute
from sluicegate.deploy._routing import route_for, state_from_json, state_to_json
from sluicegate.deploy.hooks import HookResult, run_command_hook, run_http_hook
from sluicegate.deploy.lifecycle import (
    Action,
    Command,
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
    decide,
    resume,
    start,
)
from sluicegate.deploy.strategies import plan_for
from sluicegate.errors import ConflictError, NotFoundError, Problem, SluicegateError, SpecError
from sluicegate.router.traffic import ServiceRoute, TrafficControl
from sluicegate.spec.service import DeploymentSpec, ServiceSpec, expand_placeholders
from sluicegate.store import Deployment, Store

__all__ = ["AlarmCheck", "Controller", "HoldCheck", "state_from_json", "state_to_json"]

log = logging.getLogger("sluicegate.deploy")
AlarmCheck = Callable[[Deployment], Awaitable[str | None]]  # the Monitor issue's seam
HoldCheck = Callable[[Deployment], str | None]  # why a step must wait for a verdict
_MAX_DECISIONS_PER_TICK = 20


def _status(phase: Phase) -> str:
    return phase.value if phase.terminal else "in_progress"


class Controller:
    def __init__(self, store: Store, compute: LocalCompute, traffic: TrafficControl,
                 clock: Clock, alarms: AlarmCheck | None = None,
                 hold: HoldCheck | None = None) -> None:
        self.store = store
        self.compute = compute
        self.traffic = traffic
        self.clock = clock
        self.alarms = alarms
        self.hold = hold
        self.external = ExternalCompute()  # revisions the user runs; we check and route only
        self._hooks: dict[tuple[str, str, int], asyncio.Task[HookResult]] = {}
        self._commands: dict[str, tuple[Command, str]] = {}
        # Deployments whose last actions failed part-way: replayed (idempotently) first.
        self._unsettled: set[str] = set()
        self._lock = asyncio.Lock()

    # -- the user's verbs ---------------------------------------------------------------------

    def spec_of(self, service: str) -> ServiceSpec:
        return ServiceSpec.model_validate(self.store.services.get(service).spec)

    async def apply_service(self, spec: ServiceSpec, actor: str) -> None:
        async with self._lock:
            self.store.services.put(spec.service, spec.model_dump(mode="json"))
            self.store.events.append(actor=actor, kind="service.applied", subject=spec.service,
                                     message=f"service {spec.service} applied")
            await self._route()

    async def deploy(self, service: str, revision: str, actor: str,
                     config: Any = None, env: dict[str, str] | None = None) -> Deployment:
        """Create a deployment (409 if the service already has an active one).

        ``env`` (``--set env.KEY=VAL``) becomes part of the revision, which is immutable:
        the same revision name with other settings is a conflict.
        """
        async with self._lock:
            spec = self.spec_of(service)
            self.store.revisions.create(service, revision, {"env": dict(env or {})})
            current = self.current_revision(service)
            if current == revision:
                raise ConflictError(f"{service} already runs revision {revision}")
            plan_config = config if config is not None else spec.deployment.config
            plan = plan_for(plan_config)
            state = start(self.clock.now(), has_blue=current is not None)
            dep = self.store.deployments.create(
                service, revision, from_revision=current,
                config={"plan": _config_json(plan_config), "actor": actor},
                state=state_to_json(state), phase=state.phase.value, status="in_progress")
            self.store.events.append(actor=actor, kind="deployment.created", subject=dep.id,
                                     message=f"deploy {service} {current or '-'} -> {revision}"
                                     f" with {plan.name}")
            return dep

    async def retry(self, deployment_id: str, actor: str) -> Deployment:
        """Deploy a failed, rolled-back or stopped deployment's revision again, as it was."""
        old = self.store.deployments.get(deployment_id)
        if old.active or old.phase == Phase.SUCCEEDED.value:
            raise ConflictError(f"deployment {deployment_id} is {old.phase}; only a failed, "
                                "rolled-back or stopped deployment can be retried")
        config = _config_from_json(old.config["plan"])
        return await self.deploy(old.service, old.revision, actor, config,
                                 self._env_of(old.service, old.revision))

    def command(self, deployment_id: str, command: Command, actor: str) -> None:
        dep = self.store.deployments.get(deployment_id)
        if not dep.active:
            raise ConflictError(f"deployment {deployment_id} is {dep.status}; nothing to do")
        self._commands[deployment_id] = (command, actor)

    async def progress(self, dep: Deployment) -> dict[str, Any]:
        """For live views: seconds to the next timed step, and the replicas' health."""
        state = state_from_json(dep.state)
        next_in = None
        if state.phase is Phase.SHIFTING:
            steps = plan_for(_config_from_json(dep.config["plan"])).steps
            if state.step_index < len(steps) and steps[state.step_index].pause:
                pause = steps[state.step_index].pause or 0.0
                next_in = max(0.0, state.step_started_at + pause - self.clock.now())
        elif state.phase is Phase.TERMINATION_WAIT:
            wait = self.spec_of(dep.service).deployment.termination_wait
            next_in = max(0.0, state.phase_started_at + wait - self.clock.now())
        replicas: dict[str, list[dict[str, Any]]] = {}
        for revision in filter(None, (dep.from_revision, dep.revision)):
            try:
                health = await self.compute.health(dep.service, revision)
            except NotFoundError:
                continue
            replicas[revision] = [{"address": h.replica.address, "healthy": h.healthy,
                                   "detail": h.detail, "restarts": h.restarts}
                                  for h in health]
        return {"next_step_in": next_in, "holding": state.holding, "replicas": replicas}

    def current_revision(self, service: str) -> str | None:
        """The revision serving production: the newest deployment that succeeded."""
        for dep in self.store.deployments.list(service):
            if dep.phase == Phase.SUCCEEDED.value:
                return dep.revision
        return None

    def on_replica_event(self, event: ReplicaEvent) -> None:
        """Keep the store's replica records true as compute restarts or loses replicas, so a
        restarted control plane adopts the right processes (pass this as ``on_change``)."""
        r = event.replica
        if event.kind in (EventKind.STOPPED, EventKind.GONE):
            self.store.replicas.remove(r.service, r.revision, r.index)
        elif event.kind in (EventKind.STARTED, EventKind.RESTARTED, EventKind.ADOPTED):
            self.store.replicas.record(r.service, r.revision, r.index, port=r.port, pid=r.pid,
                                       pid_start_time=r.pid_start_time, state="running",
                                       started_at=r.started_at)
        if event.kind in (EventKind.RESTARTED, EventKind.FAILED, EventKind.GONE):
            self.store.events.append(actor="compute", kind=f"replica.{event.kind.value}",
                                     subject=r.service, message=f"{r.revision} replica "
                                     f"{r.index}: {event.detail or event.kind.value}")

    # -- the loop -------------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a (re)start: adopt replicas, replay every unfinished deployment, re-route."""
        async with self._lock:
            groups: dict[tuple[str, str], list[Replica]] = {}
            for r in self.store.replicas.list():
                groups.setdefault((r.service, r.revision), []).append(Replica(
                    r.service, r.revision, r.index, r.port or 0, r.pid,
                    int(r.pid_start_time) if r.pid_start_time else None))
            for (service, revision), records in groups.items():
                local = _local_spec(self.spec_of(service), self._env_of(service, revision))
                if local is None:
                    continue
                adoption = await self.compute.adopt(service, revision, local, records)
                for gone in adoption.gone:
                    self.store.replicas.remove(gone.service, gone.revision, gone.index)
                if adoption.gone:
                    await self.compute.start(service, revision, local)  # fills the gaps
            for active in self.store.deployments.list_active():
                spec = self.spec_of(active.service)
                decision = resume(state_from_json(active.state), spec, self.clock.now())
                dep = self._record(active, decision.state) if decision.changed else active
                await self._apply(dep, spec, decision.actions)
            await self._route()

    async def tick(self) -> None:
        async with self._lock:
            for dep in self.store.deployments.list_active():
                try:
                    await self._advance(dep)
                except SluicegateError as exc:
                    log.warning("deployment %s: %s (will retry)", dep.id, exc)

    async def run(self, interval: float = 0.25) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(interval)

    async def _advance(self, dep: Deployment) -> None:
        spec = self.spec_of(dep.service)
        plan = plan_for(_config_from_json(dep.config["plan"]))
        if dep.id in self._unsettled:
            # The world may lag the record (an action failed): make it match, then go on.
            replay = resume(state_from_json(dep.state), spec, self.clock.now())
            await self._apply(dep, spec, tuple(a for a in replay.actions
                                               if not isinstance(a, RunHook)))
            self._unsettled.discard(dep.id)
        for _ in range(_MAX_DECISIONS_PER_TICK):
            state = state_from_json(dep.state)
            obs = await self._observe(dep, state, spec)
            decision = decide(state, plan, spec, obs)
            if decision.state != state:
                dep = self._record(dep, decision.state)  # recorded before it is acted on
            self._unsettled.add(dep.id)
            await self._apply(dep, spec, decision.actions)
            self._unsettled.discard(dep.id)
            if not decision.changed or not dep.active:
                return

    async def _observe(self, dep: Deployment, state: DeploymentState,
                       spec: ServiceSpec) -> Observation:
        healthy = ready = None
        if state.phase in (Phase.HEALTH_GATE, Phase.BEFORE_ALLOW_TRAFFIC):
            try:
                if spec.compute.external is not None:
                    await self._start(dep, spec)  # (re)register: cheap and idempotent
                    health = await self.external.health(dep.service, dep.revision)
                else:
                    health = await self.compute.health(dep.service, dep.revision)
            except NotFoundError:
                health = []  # not started (yet): not healthy
            ready = sum(1 for h in health if h.healthy)
            healthy = bool(health) and ready == len(health)
        outcome = None
        for (dep_id, stage, index), task in list(self._hooks.items()):
            if dep_id == dep.id and task.done():
                del self._hooks[(dep_id, stage, index)]
                result = task.result()
                outcome = HookOutcome(HookStage(stage), index, result.ok, result.detail)
                break
        command, actor = self._commands.pop(dep.id, (None, None))
        alarm = await self.alarms(dep) if self.alarms is not None else None
        hold = None
        if self.hold is not None and spec.deployment.wait_for_verdict:
            hold = self.hold(dep)
        return Observation(now=self.clock.now(), green_healthy=healthy,
                           green_ready_replicas=ready, hook_outcome=outcome,
                           alarm_firing=alarm, hold=hold, command=command, actor=actor)

    def _record(self, dep: Deployment, state: DeploymentState) -> Deployment:
        return self.store.deployments.update(
            dep.id, dep.version, state=state_to_json(state), phase=state.phase.value,
            status=_status(state.phase), active=not state.phase.terminal)

    # -- applying actions (idempotent) ------------------------------------------------------------

    async def _apply(self, dep: Deployment, spec: ServiceSpec,
                     actions: tuple[Action, ...]) -> None:
        reroute = False
        for action in actions:
            if isinstance(action, StartGreen):
                await self._start(dep, spec)
            elif isinstance(action, StopGreen):
                reroute = True
                await self._stop(dep.service, dep.revision, spec)
            elif isinstance(action, StopBlue):
                reroute = True
                if dep.from_revision is not None:
                    await self._stop(dep.service, dep.from_revision, spec)
            elif isinstance(action, SetWeights | RouteTestListener):
                # Now, not after the loop: a hook that follows must find the route in place.
                await self._route()
                if isinstance(action, SetWeights) and action.green_percent == 0:
                    self._restored(dep)
            elif isinstance(action, RunHook):
                self._run_hook(dep, spec, action)
            elif isinstance(action, RecordEvent):
                self.store.events.append(actor="controller", kind=f"deployment.{action.kind}",
                                         subject=dep.id, message=action.message)
        if reroute:
            await self._route()

    def _restored(self, dep: Deployment) -> None:
        """All production traffic is back on blue (the router confirmed the weights): say how
        long after the decision to roll back, the blast radius' last term."""
        state = state_from_json(dep.state)
        if state.phase is not Phase.ROLLING_BACK:
            return
        now = self.clock.now()
        took = now - state.phase_started_at
        self.store.events.append(
            actor="controller", kind="deployment.traffic_restored", subject=dep.id,
            message=f"all traffic back on {dep.from_revision} {took * 1000:.0f} ms after the"
                    f" decision to roll back ({state.reason})",
            data={"decided_at": state.phase_started_at, "restored_at": now,
                  "reason": state.reason})

    async def _start(self, dep: Deployment, spec: ServiceSpec) -> None:
        if self._running(dep.service, dep.revision):
            return  # already running (a replayed StartGreen)
        if spec.compute.external is not None:
            endpoints = spec.compute.external.revisions.get(dep.revision)
            if not endpoints:
                raise SpecError([Problem(f"compute.external.revisions.{dep.revision}",
                                         "no endpoints are declared for this revision")])
            await self.external.start(dep.service, dep.revision, ExternalSpec(
                endpoints, health_path=spec.health_check.path))
            return
        local = _local_spec(spec, self._env_of(dep.service, dep.revision))
        if local is None:
            return
        replicas = await self.compute.start(dep.service, dep.revision, local)
        for r in replicas:
            self.store.replicas.record(r.service, r.revision, r.index, port=r.port, pid=r.pid,
                                       pid_start_time=r.pid_start_time, state="running",
                                       started_at=r.started_at)

    async def _stop(self, service: str, revision: str, spec: ServiceSpec) -> None:
        if spec.compute.external is not None:
            await self.external.stop(service, revision)
            return
        local = spec.compute.local
        await self.compute.stop(service, revision, local.stop_grace if local else None)
        self.store.replicas.remove(service, revision)

    def _run_hook(self, dep: Deployment, spec: ServiceSpec, action: RunHook) -> None:
        hooks = (spec.deployment.hooks.before_allow_traffic
                 if action.stage is HookStage.BEFORE_ALLOW_TRAFFIC
                 else spec.deployment.hooks.after_allow_traffic)
        hook = hooks[action.index]
        key = (dep.id, action.stage.value, action.index)
        if key in self._hooks:
            return
        port = spec.listener.test_port or spec.listener.port
        values = {"port": spec.listener.port, "test_port": port, "revision": dep.revision,
                  "service": dep.service}
        env = {"SLUICE_SERVICE": dep.service, "SLUICE_REVISION": dep.revision,
               "SLUICE_TEST_URL": f"http://127.0.0.1:{port}"}
        coro: Awaitable[HookResult]
        if hook.http is not None:
            coro = run_http_hook(f"http://127.0.0.1:{port}{hook.http.path}",
                                 hook.http.expect_status, hook.effective_timeout)
        else:
            assert hook.command is not None
            argv = [expand_placeholders(arg, values) for arg in hook.command]
            coro = run_command_hook(argv, env, hook.effective_timeout)
        self._hooks[key] = asyncio.ensure_future(coro)

    # -- routing: what the store says, applied as a whole ----------------------------------

    async def _route(self) -> None:
        routes = [r for s in self.store.services.list() if (r := self._route_of(s.name))]
        if routes:
            await self.traffic.apply(routes)

    def _route_of(self, service: str) -> ServiceRoute | None:
        spec = self.spec_of(service)
        return route_for(spec, self.current_revision(service),
                         self.store.deployments.active_for(service),
                         lambda revision: self._endpoints(service, revision, spec))

    def _endpoints(self, service: str, revision: str, spec: ServiceSpec) -> list[str]:
        if spec.compute.external is not None:
            return list(spec.compute.external.revisions.get(revision, []))
        return self._running(service, revision)

    def _env_of(self, service: str, revision: str) -> dict[str, str]:
        try:
            env: dict[str, str] = self.store.revisions.get(service, revision).overrides.get(
                "env", {})
        except NotFoundError:
            return {}
        return env

    def _running(self, service: str, revision: str) -> list[str]:
        try:
            return self.compute.endpoints(service, revision)
        except NotFoundError:
            return []


def _local_spec(spec: ServiceSpec, env: dict[str, str] | None = None) -> LocalSpec | None:
    local = spec.compute.local
    if local is None:
        return None
    return LocalSpec(command=list(local.command), env={**local.env, **(env or {})},
                     replicas=local.replicas,
                     cwd=local.cwd, health_path=spec.health_check.path,
                     stop_grace=local.stop_grace)


def _config_json(config: Any) -> Any:
    return config if isinstance(config, str) else config.model_dump(mode="json")


def _config_from_json(data: Any) -> Any:
    return DeploymentSpec.model_validate({"config": data}).config
