"""The world the deploy controller acts on: compute, traffic and hooks, every act idempotent.

The controller decides; this applies: start and stop a revision's replicas, route every
service as the store describes it, run hooks and hand their outcomes back. Reads that the
decisions need (green's health, its last log lines, the stored specs) live here too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import ssl
from collections.abc import Awaitable, Mapping, Sequence

from sluicegate._trust import pinned_context
from sluicegate.clock import Clock
from sluicegate.compute import redact
from sluicegate.compute.base import EventKind, Replica, ReplicaEvent, ReplicaHealth
from sluicegate.compute.select import ComputeSelector, LogRead, Placement
from sluicegate.deploy._lifecycle_model import HookOutcome, HookStage, RunHook
from sluicegate.deploy._routing import route_for
from sluicegate.deploy.hooks import HookResult, run_command_hook, run_http_hook
from sluicegate.errors import NotFoundError, SpecError
from sluicegate.router.traffic import ServiceRoute, TrafficControl
from sluicegate.spec.service import ServiceSpec, expand_placeholders
from sluicegate.store import Deployment, Store

__all__ = ["LOG_LINES", "World"]

log = logging.getLogger(__name__)

LOG_LINES = 20
"""Log lines of a revision that cannot run, carried in the event that says so."""


class World:
    def __init__(
        self, store: Store, computes: ComputeSelector, traffic: TrafficControl, clock: Clock
    ) -> None:
        self.store = store
        self.computes = computes
        self.traffic = traffic
        self.clock = clock
        self._hooks: dict[tuple[str, str, int], asyncio.Task[HookResult]] = {}
        self._unreadable: set[str] = set()  # services whose stored spec fails validation

    # -- what the store says -------------------------------------------------------------

    def spec_of(self, service: str) -> ServiceSpec:
        return ServiceSpec.model_validate(self.store.services.get(service).spec)

    def specs(self) -> tuple[dict[str, ServiceSpec], list[str]]:
        """Every stored service's spec, and the names of those whose spec cannot be read
        (stored by an older version, edited by hand): logged once, their traffic kept."""
        good: dict[str, ServiceSpec] = {}
        bad: list[str] = []
        for service in self.store.services.list():
            try:
                good[service.name] = ServiceSpec.model_validate(service.spec)
            except ValueError as exc:
                bad.append(service.name)
                if service.name not in self._unreadable:
                    log.error(
                        "service %s: its stored spec cannot be read (%s); its traffic "
                        "stays as it is until it is applied again",
                        service.name,
                        exc,
                    )
        self._unreadable = set(bad)
        return good, bad

    def current_revision(self, service: str) -> str | None:
        """The revision serving production: the newest deployment that succeeded."""
        for dep in self.store.deployments.list(service):
            if dep.phase == "succeeded":
                return dep.revision
        return None

    def env_of(self, service: str, revision: str) -> dict[str, str]:
        try:
            env: dict[str, str] = self.store.revisions.get(service, revision).overrides.get(
                "env", {}
            )
        except NotFoundError:
            return {}
        return env

    # -- routing: what the store says, applied as a whole --------------------------------

    def routes(self, override: ServiceSpec | None = None) -> tuple[list[ServiceRoute], list[str]]:
        """The route of every service that has one (``override`` in place of its stored
        spec), and the services whose routes must be kept as they are (unreadable spec)."""
        specs, keep = self.specs()
        if override is not None:
            specs[override.service] = override
            keep = [k for k in keep if k != override.service]
        routes = []
        for name, spec in specs.items():
            route = route_for(
                spec,
                self.current_revision(name),
                self.store.deployments.active_for(name),
                functools.partial(self._endpoints, name, spec),
            )
            if route is not None:
                routes.append(route)
        return routes, keep

    async def route(self) -> None:
        routes, keep = self.routes()
        await self.traffic.apply(routes, keep)

    # -- compute: through the selector, which names the backend ----------------------

    def place(self, spec: ServiceSpec, revision: str) -> Placement:
        """``revision`` bound to the backend its spec names (SpecError if it cannot run)."""
        return self.computes.compute_for(spec, revision, self.env_of(spec.service, revision))

    def secrets_of(self, service: str) -> list[str]:
        """The secret values the service's replicas get, to redact from events."""
        try:
            return self.computes.secrets_of(self.spec_of(service))
        except (NotFoundError, ValueError):
            return []

    def running(self, service: str, revision: str) -> list[str]:
        """The revision's endpoints (by the stored spec); empty when nothing runs."""
        return self._endpoints(service, self.spec_of(service), revision)

    def _endpoints(self, service: str, spec: ServiceSpec, revision: str) -> list[str]:
        try:
            return self.place(spec, revision).endpoints()
        except SpecError:
            return []  # not runnable (an external revision the spec no longer lists)

    async def start(self, dep: Deployment, spec: ServiceSpec) -> None:
        """Start green (only what is missing). SpecError when it cannot run at all."""
        placement = self.place(spec, dep.revision)
        if placement.endpoints():
            return  # already running (a replayed StartGreen)
        for r in await placement.start(dep.id):
            if r.pid is not None:  # a process of ours: adopted again after a restart
                self.store.replicas.record(
                    r.service,
                    r.revision,
                    r.index,
                    port=r.port,
                    pid=r.pid,
                    pid_start_time=r.pid_start_time,
                    state="running",
                    started_at=r.started_at,
                )

    async def stop(self, service: str, revision: str, spec: ServiceSpec) -> None:
        try:
            placement = self.place(spec, revision)
        except SpecError:
            return  # nothing of ours can run it, so nothing runs
        await placement.stop()
        self.store.replicas.remove(service, revision)

    async def health(
        self, dep: Deployment, spec: ServiceSpec, revision: str | None = None
    ) -> list[ReplicaHealth]:
        """A revision's replicas' health (green's by default); empty when not started."""
        try:
            return await self.place(spec, revision or dep.revision).health()
        except NotFoundError:
            return []

    async def adopt(self, service: str, revision: str, records: Sequence[Replica]) -> None:
        """After a restart: take the recorded replicas over, start the missing ones."""
        placement = self.place(self.spec_of(service), revision)
        if placement.endpoints():
            return  # supervised here already (recover after a router restart)
        adoption = await placement.adopt(records)
        for gone in adoption.gone:
            self.store.replicas.remove(gone.service, gone.revision, gone.index)
        if adoption.gone:
            await placement.start()  # fills the gaps

    def logs(self, service: str, revision: str, replica: int | None = None, tail: int = 100) -> str:
        """What the replicas wrote, with the secret values they were given redacted."""
        spec = self.spec_of(service)
        text = self.place(spec, revision).logs(replica, tail)
        return redact(text, self.computes.secrets_of(spec))

    def read_logs(
        self,
        service: str,
        revision: str,
        replica: int | None = None,
        after: Mapping[int, int] | None = None,
        count: int = 100,
    ) -> LogRead:
        """A revision's output with positions, to follow it (``Placement.read_logs``), with
        the secret values its replicas were given redacted from every line (a secret of
        several lines, line by line: a follower's reads may part it)."""
        spec = self.spec_of(service)
        read = self.place(spec, revision).read_logs(replica, after, count)
        secrets = self.computes.secrets_of(spec)
        if not secrets:
            return read
        parts = {part for value in secrets for part in (value, *value.splitlines())}
        return dataclasses.replace(
            read,
            replicas=tuple(
                dataclasses.replace(r, lines=tuple(redact(line, parts) for line in r.lines))
                for r in read.replicas
            ),
        )

    def last_lines(
        self, service: str, revision: str, replica: int | None = None
    ) -> tuple[str, ...]:
        """The revision's last log lines (of one replica, or all), for an event."""
        try:
            text = self.logs(service, revision, replica, tail=LOG_LINES)
        except (NotFoundError, SpecError, OSError):
            return ()
        return tuple(text.splitlines()[-LOG_LINES:])

    def on_replica_event(self, event: ReplicaEvent) -> None:
        """Keep the store's replica records true as compute restarts or loses replicas, so a
        restarted control plane adopts the right processes (pass this as ``on_change``)."""
        r = event.replica
        if event.kind in (EventKind.STOPPED, EventKind.GONE):
            self.store.replicas.remove(r.service, r.revision, r.index)
        elif event.kind in (EventKind.STARTED, EventKind.RESTARTED, EventKind.ADOPTED):
            self.store.replicas.record(
                r.service,
                r.revision,
                r.index,
                port=r.port,
                pid=r.pid,
                pid_start_time=r.pid_start_time,
                state="running",
                started_at=r.started_at,
            )
        if event.kind in (EventKind.RESTARTED, EventKind.FAILED, EventKind.GONE):
            self.store.events.append(
                actor="compute",
                kind=f"replica.{event.kind.value}",
                subject=r.service,
                message=f"{r.revision} replica {r.index}: {event.detail or event.kind.value}",
            )

    # -- hooks ---------------------------------------------------------------------------

    def run_hook(self, dep: Deployment, spec: ServiceSpec, action: RunHook) -> None:
        """Start the hook unless it runs already (or finished and was not yet read)."""
        hooks = (
            spec.deployment.hooks.before_allow_traffic
            if action.stage is HookStage.BEFORE_ALLOW_TRAFFIC
            else spec.deployment.hooks.after_allow_traffic
        )
        hook = hooks[action.index]
        key = (dep.id, action.stage.value, action.index)
        if key in self._hooks:
            return
        port = spec.listener.test_port or spec.listener.port
        values = {
            "port": spec.listener.port,
            "test_port": port,
            "revision": dep.revision,
            "service": dep.service,
        }
        tls = spec.listener.tls
        scheme = "https" if tls is not None else "http"
        env = {
            "SLUICE_SERVICE": dep.service,
            "SLUICE_REVISION": dep.revision,
            "SLUICE_TEST_URL": f"{scheme}://127.0.0.1:{port}",
        }
        coro: Awaitable[HookResult]
        if hook.http is not None:
            url = f"{scheme}://127.0.0.1:{port}{hook.http.path}"
            verify: ssl.SSLContext | bool = True
            if tls is not None:  # our own router: trust exactly the service's certificates
                try:
                    verify = pinned_context([c.cert for c in tls.certificates])
                except (OSError, ssl.SSLError) as exc:
                    coro = _failed(f"GET {url}: cannot read the listener's certificates: {exc}")
                    self._hooks[key] = asyncio.ensure_future(coro)
                    return
            coro = run_http_hook(url, hook.http.expect_status, hook.effective_timeout, verify)
        else:
            assert hook.command is not None
            argv = [expand_placeholders(arg, values) for arg in hook.command]
            coro = run_command_hook(argv, env, hook.effective_timeout)
        self._hooks[key] = asyncio.ensure_future(coro)

    def hook_outcome(self, dep_id: str) -> HookOutcome | None:
        """The outcome of a finished hook of the deployment, handed out once."""
        for (owner, stage, index), task in list(self._hooks.items()):
            if owner == dep_id and task.done():
                del self._hooks[(owner, stage, index)]
                try:
                    result = task.result()
                except Exception as exc:  # a bug in the runner: the hook failed, say why
                    log.error("hook %s %d of %s crashed", stage, index, dep_id, exc_info=exc)
                    return HookOutcome(
                        HookStage(stage),
                        index,
                        False,
                        f"the hook runner failed: {type(exc).__name__}: {exc}",
                    )
                return HookOutcome(HookStage(stage), index, result.ok, result.detail)
        return None

    def forget(self, dep_id: str) -> None:
        """The deployment ended: cancel hooks still running for it."""
        for key, task in list(self._hooks.items()):
            if key[0] == dep_id:
                task.cancel()
                del self._hooks[key]


async def _failed(detail: str) -> HookResult:
    return HookResult(False, detail, 0.0)
