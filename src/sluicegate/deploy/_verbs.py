"""The deployment controller's verbs: what users ask of it (apply, deploy, commands...).

Each is checked before anything is stored (a refusal changes nothing) and recorded in one
transaction; the loop in :mod:`~sluicegate.deploy.controller` then acts on what was stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sluicegate.clock import Clock
from sluicegate.deploy._checks import port_conflicts
from sluicegate.deploy._routing import probe_route, state_from_json, state_to_json
from sluicegate.deploy._scale import DRAIN, SCALE_WAIT, scaled_spec
from sluicegate.deploy._world import World
from sluicegate.deploy.lifecycle import Command, Phase, start
from sluicegate.deploy.strategies import plan_for
from sluicegate.errors import ConflictError, Problem, SpecError
from sluicegate.spec.service import DeploymentSpec, ServiceSpec
from sluicegate.store import Deployment, DeploymentCommand, Store, Transaction

__all__ = ["Verbs", "config_from_json", "config_json"]

T = TypeVar("T")


class Verbs:
    """Mixed into :class:`~sluicegate.deploy.controller.Controller`, which owns the state."""

    store: Store
    clock: Clock
    world: World
    _lock: asyncio.Lock

    def spec_of(self, service: str) -> ServiceSpec:
        return self.world.spec_of(service)

    def current_revision(self, service: str) -> str | None:
        return self.world.current_revision(service)

    async def apply_service(
        self, spec: ServiceSpec, actor: str, also: Callable[[Transaction], T] | None = None
    ) -> T | None:
        """Store ``spec`` — all or nothing. Refused (nothing stored, no event) when a port is
        another service's or the router cannot listen on it; ``also`` writes more in the
        same transaction (the spec's alarms) and its result is returned."""
        async with self._lock:
            specs, _ = self.world.specs()
            problems = port_conflicts(spec, specs.values()) + self.world.computes.problems_of(spec)
            if problems:
                raise SpecError(problems)
            routes, keep = self.world.routes(override=spec)
            live = any(r.service == spec.service for r in routes)
            await self.world.traffic.check(routes if live else [*routes, probe_route(spec)])
            if live:  # a serving service takes its new ports and settings now
                await self.world.traffic.apply(routes, keep)
            try:
                with self.store.transaction() as tx:
                    tx.services.put(spec.service, spec.model_dump(mode="json"))
                    tx.events.append(
                        actor=actor,
                        kind="service.applied",
                        subject=spec.service,
                        message=f"service {spec.service} applied",
                    )
                    return also(tx) if also is not None else None
            except BaseException:
                if live:  # put the router back as the store still describes it
                    await self.world.route()
                raise

    async def scale(self, service: str, replicas: int, actor: str) -> tuple[str, int]:
        """Run ``replicas`` of the serving revision, and store the count in the spec (the
        next deployment starts as many); returns the revision and the count it had.

        Scaling in takes the extra replicas out of the router first and stops them after
        :data:`DRAIN`. Scaling out routes to the new ones once they are healthy (within the
        health timeout, at most :data:`SCALE_WAIT`; else ConflictError, and they stay out
        of the router). Refused (409) while a deployment of the service is active.
        """
        async with self._lock:
            spec = self.spec_of(service)
            active = self.store.deployments.active_for(service)
            if active is not None:
                raise ConflictError(f"service {service!r} has an active deployment {active.id};"
                                    " scale it once that has ended")  # fmt: skip
            revision = self.current_revision(service)
            if revision is None:
                raise ConflictError(f"service {service!r} serves no revision yet: deploy one")
            new = scaled_spec(spec, replicas)
            was = len(self.world.place(spec, revision).endpoints())
            with self.store.transaction() as tx:
                tx.services.put(service, new.model_dump(mode="json"))
                message = f"{service} {revision}: {was} → {replicas} replicas"
                tx.events.append(
                    actor=actor, kind="service.scaled", subject=service, message=message
                )
            placement = self.world.place(new, revision)
            if replicas < was:
                await self.world.route()  # the extra ones leave the router first
                await asyncio.sleep(DRAIN)
                await placement.start()  # stops the replicas beyond the count
                return revision, was
            await placement.start()
            deadline = self.clock.monotonic() + min(spec.deployment.health_timeout, SCALE_WAIT)
            while True:
                health = await placement.health()
                if all(h.healthy for h in health):
                    break
                if self.clock.monotonic() >= deadline:
                    sick = [f"replica {h.replica.index}: {h.detail}" for h in health
                            if not h.healthy]  # fmt: skip
                    raise ConflictError(f"{service} {revision} scaled to {replicas}, but not"
                                        f" healthy in time: {'; '.join(sick)}")  # fmt: skip
                await asyncio.sleep(0.2)
            await self.world.route()
            return revision, was

    async def delete_service(self, service: str, actor: str) -> list[str]:
        """Stop the service's revisions, forget it (history, alarms), close its listeners.

        Refused (409) while a deployment of it is active: stop or finish that first.
        Returns the revisions that were stopped.
        """
        async with self._lock:
            spec = self.spec_of(service)  # NotFoundError for an unknown service
            active = self.store.deployments.active_for(service)
            if active is not None:
                raise ConflictError(
                    f"service {service!r} has an active deployment {active.id} "
                    f"({active.phase}); stop it or let it finish, then delete the service"
                )
            running = sorted(
                {r.revision for r in self.store.replicas.list(service)}
                | {rev for rev in [self.current_revision(service)] if rev is not None}
            )
            for revision in running:
                await self.world.stop(service, revision, spec)
            with self.store.transaction() as tx:
                tx.services.delete(service)
                tx.events.append(
                    actor=actor,
                    kind="service.deleted",
                    subject=service,
                    message=f"service {service} deleted"
                    + (f"; stopped {', '.join(running)}" if running else ""),
                )
            await self.world.route()
            return running

    async def deploy(
        self,
        service: str,
        revision: str,
        actor: str,
        config: Any = None,
        env: dict[str, str] | None = None,
    ) -> Deployment:
        """Create a deployment (409 if the service already has an active one).

        Refused at once when it cannot work: an external revision without endpoints, ports
        the router cannot listen on. ``env`` (``--set env.KEY=VAL``) becomes part of the
        revision, which is immutable: the same revision name with other settings is a
        conflict.
        """
        async with self._lock:
            spec = self.spec_of(service)
            current = self.current_revision(service)
            if current == revision:
                raise ConflictError(f"{service} already runs revision {revision}")
            try:  # what can be known now: a revision its backend cannot run at all
                self.world.place(spec, revision)
            except SpecError as exc:
                raise SpecError(
                    [
                        Problem("revision", f"{p}; fix the spec and apply it first")
                        for p in exc.problems
                    ]
                ) from exc
            routes, _ = self.world.routes()
            if not any(r.service == service for r in routes):  # its ports are opened later
                await self.world.traffic.check([*routes, probe_route(spec)])
            plan_config = config if config is not None else spec.deployment.config
            plan = plan_for(plan_config)
            state = start(self.clock.now(), has_blue=current is not None)
            with self.store.transaction() as tx:
                tx.revisions.create(service, revision, {"env": dict(env or {})})
                dep = tx.deployments.create(
                    service,
                    revision,
                    from_revision=current,
                    config={"plan": config_json(plan_config), "actor": actor},
                    state=state_to_json(state),
                    phase=state.phase.value,
                    status="in_progress",
                )
                tx.events.append(
                    actor=actor,
                    kind="deployment.created",
                    subject=dep.id,
                    message=f"deploy {service} {current or '-'} -> {revision} with {plan.name}",
                )
            return dep

    async def retry(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        """Deploy a failed, rolled-back or stopped deployment's revision again, as it was.
        A ``reason`` is recorded on the old deployment (``deployment.command``)."""
        old = self.store.deployments.get(deployment_id)
        if old.active or old.phase == Phase.SUCCEEDED.value:
            raise ConflictError(
                f"deployment {deployment_id} is {old.phase}; only a failed, "
                "rolled-back or stopped deployment can be retried"
            )
        config = config_from_json(old.config["plan"])
        new = await self.deploy(
            old.service, old.revision, actor, config, self.world.env_of(old.service, old.revision)
        )
        if reason:
            self.store.events.append(
                "deployment.command",
                deployment_id,
                f"retry asked by {actor} as {new.id}: {reason}",
                actor=actor,
                data={"command": "retry", "reason": reason, "deployment": new.id},
            )
        return new

    def command(
        self, deployment_id: str, command: Command, actor: str, reason: str = ""
    ) -> DeploymentCommand:
        """Store the command; the engine applies it on its next tick (after a crash too).
        With a ``reason``, a ``deployment.command`` event records who asked for what and why,
        in the same transaction."""
        dep = self.store.deployments.get(deployment_id)
        if not dep.active:
            raise ConflictError(f"deployment {deployment_id} is {dep.status}; nothing to do")
        if not reason:
            return self.store.commands.add(deployment_id, command.value, actor)
        with self.store.transaction() as tx:
            stored = tx.commands.add(deployment_id, command.value, actor)
            tx.events.append(
                "deployment.command",
                deployment_id,
                f"{command.value} asked by {actor}: {reason}",
                actor=actor,
                data={"command": command.value, "reason": reason, "command_id": stored.id},
            )
        return stored

    async def progress(self, dep: Deployment) -> dict[str, Any]:
        """For live views: seconds to the next timed step, and the replicas' health."""
        state = state_from_json(dep.state)
        next_in = None
        if state.phase is Phase.SHIFTING:
            steps = plan_for(config_from_json(dep.config["plan"])).steps
            if state.step_index < len(steps) and steps[state.step_index].pause:
                pause = steps[state.step_index].pause or 0.0
                next_in = max(0.0, state.step_started_at + pause - self.clock.now())
        elif state.phase is Phase.TERMINATION_WAIT:
            wait = self.spec_of(dep.service).deployment.termination_wait
            next_in = max(0.0, state.phase_started_at + wait - self.clock.now())
        replicas: dict[str, list[dict[str, Any]]] = {}
        spec = self.spec_of(dep.service)
        for revision in filter(None, (dep.from_revision, dep.revision)):
            health = await self.world.health(dep, spec, revision)
            if not health:
                continue
            replicas[revision] = [
                {
                    "address": h.replica.address,
                    "healthy": h.healthy,
                    "detail": h.detail,
                    "restarts": h.restarts,
                }
                for h in health
            ]
        return {"next_step_in": next_in, "holding": state.holding, "replicas": replicas}


def config_json(config: Any) -> Any:
    return config if isinstance(config, str) else config.model_dump(mode="json")


def config_from_json(data: Any) -> Any:
    return DeploymentSpec.model_validate({"config": data}).config
