"""``ContainerCompute``: revisions as containers on Podman or Docker hosts (Engine API).

Each replica is one container, labelled ``sluicegate.service/.revision/.replica/
.deployment``, with the app's port published on its host's address at a port chosen free
here. Containers outlive the server; after a restart ``adopt`` (and ``start``, ``stop``)
find them by label, so nothing runs twice and nothing is left behind.

Supervision (``check``, every tick of the server's ``replicas`` engine): one list call per
engine. A container that exits before it ever answered its health check is given up on at
once (state FAILED: the deployment fails with its last log lines); one that exits later
is started again (same container, same port) after a back-off, ``RestartPolicy`` as for
local processes, its restart count kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sluicegate.clock import Clock, SystemClock
from sluicegate.compute import _http, _ports
from sluicegate.compute._bound_container import BoundContainer
from sluicegate.compute._container_parts import (
    LABEL,
    ContainerSpec,
    HostRef,
    container_name,
    create_body,
    describe_exit,
    find_default_host,
    labels_of,
)
from sluicegate.compute._engine import Engine, EngineError
from sluicegate.compute._logfiles import LogLines, LogRead
from sluicegate.compute._secrets import resolve_env
from sluicegate.compute.base import (
    Adoption,
    EventKind,
    Replica,
    ReplicaEvent,
    ReplicaHealth,
    ReplicaState,
    check_names,
    tell,
)
from sluicegate.compute.local import RestartPolicy
from sluicegate.errors import NotFoundError, Problem, SpecError
from sluicegate.spec.service import ServiceSpec

__all__ = ["ContainerCompute", "ContainerSpec", "HostRef"]

log = logging.getLogger(__name__)

_WHERE = "compute.container"
_LOG_ALL = 5000  # lines read at most to follow a container's log by position


@dataclass
class _Box:
    """The supervisor's view of one replica's container."""

    replica: Replica
    host: HostRef
    cid: str
    state: ReplicaState
    started_at: float  # monotonic
    restarts: int = 0
    quick_crashes: int = 0
    restart_at: float = 0.0
    healthy_once: bool = False
    last_exit: str = ""


@dataclass
class _Revision:
    service: str
    revision: str
    spec: ContainerSpec
    boxes: dict[int, _Box]


class ContainerCompute:
    """Runs revisions as containers (implements ``Compute[ContainerSpec]``).

    ``default_host``: ``sluice server --container-host``; without it, CONTAINER_HOST /
    DOCKER_HOST (from ``environ``) or a local socket (one ``socket_exists`` finds) is used
    for specs that name no ``hosts``.
    """

    def __init__(
        self,
        *,
        default_host: str | None = None,
        clock: Clock | None = None,
        on_change: Callable[[ReplicaEvent], object] | None = None,
        restart: RestartPolicy | None = None,
        environ: Mapping[str, str] | None = None,
        socket_exists: Callable[[str], bool] = os.path.exists,
    ) -> None:
        self._default_host = default_host
        self._environ = os.environ if environ is None else environ
        self._exists = socket_exists
        self._clock: Clock = clock or SystemClock()
        self._on_change = on_change
        self._policy = restart or RestartPolicy()
        self._revisions: dict[tuple[str, str], _Revision] = {}
        self._engines: dict[str, Engine] = {}
        self._checking = asyncio.Lock()

    # -- the selector's side ---------------------------------------------------------------

    def hosts_of(self, service: ServiceSpec) -> tuple[list[HostRef], list[Problem]]:
        container = service.compute.container
        if container is None:
            return [], []
        if container.hosts:
            return [HostRef(h.url, h.address) for h in container.hosts], []
        found, tried = find_default_host(self._default_host, self._environ, self._exists)
        if found is None:
            return [], [Problem(f"{_WHERE}.hosts", (
                f"no container host: none given here, no --container-host, no CONTAINER_HOST"
                f" or DOCKER_HOST, and no engine socket at {tried}"))]  # fmt: skip
        return [found], []

    def problems_of(self, service: ServiceSpec) -> list[Problem]:
        """Refused at apply: secrets the server cannot read, no host to run on."""
        container = service.compute.container
        if container is None:
            return []
        return [*resolve_env(container.env, f"{_WHERE}.env")[2], *self.hosts_of(service)[1]]

    def secrets_of(self, service: ServiceSpec) -> list[str]:
        container = service.compute.container
        return [] if container is None else list(resolve_env(container.env, "")[1].values())

    def place(self, service: ServiceSpec, revision: str, env: Mapping[str, str]) -> BoundContainer:
        container = service.compute.container
        if container is None:
            raise SpecError([Problem(_WHERE, "the service does not run as containers")])
        plain, secret, problems = resolve_env(container.env, f"{_WHERE}.env")
        hosts, host_problems = self.hosts_of(service)
        if problems or host_problems:
            raise SpecError([*problems, *host_problems])
        spec = ContainerSpec(
            image=container.image,
            port=container.port,
            hosts=tuple(hosts),
            env={**plain, **env, **secret},
            command=container.command,
            replicas=container.replicas,
            memory=container.memory,
            cpus=container.cpus,
            stop_grace=container.stop_grace,
            pull=container.pull,
            init=container.init,
            health_path=service.health_check.path,
        )
        return BoundContainer(self, service.service, revision, spec)

    # -- the Compute interface --------------------------------------------------------------

    async def start(
        self, service: str, revision: str, spec: ContainerSpec, deployment: str | None = None
    ) -> list[Replica]:
        """Start the missing replicas (and those given up on); stop any beyond the count.
        SpecError with the engine's words when the image or a host cannot be had."""
        check_names(service, revision)
        problems = spec.problems()
        if problems:
            raise SpecError(problems)
        rev = self._revisions.get((service, revision))
        if rev is None:
            rev = _Revision(service, revision, spec, {})
            await self._find(rev, remove_stopped=True)
            self._revisions[(service, revision)] = rev
        rev.spec = spec
        for box in list(rev.boxes.values()):
            if box.state is ReplicaState.FAILED:
                await self._remove(rev, box, 0.0, EventKind.STOPPED, "given up; replaced")
        missing = [i for i in range(spec.replicas) if i not in rev.boxes]
        pulled: set[tuple[str, str]] = set()
        ports = _ports.allocate(len(missing), avoid=self._ports_in_use()) if missing else []
        for index, port in zip(missing, ports, strict=True):
            await self._create(rev, index, port, deployment, pulled)
        extra = [b for i, b in rev.boxes.items() if i >= spec.replicas]
        for box in extra:
            await self._remove(rev, box, spec.stop_grace, EventKind.STOPPED, "scaled in")
        return self._replicas(rev)

    async def health(
        self, service: str, revision: str, *, timeout: float = 2.0
    ) -> list[ReplicaHealth]:
        rev = self._get(service, revision)
        boxes = sorted(rev.boxes.values(), key=lambda b: b.replica.index)

        async def one(box: _Box) -> ReplicaHealth:
            if box.state is not ReplicaState.RUNNING:
                detail = box.last_exit or box.state.value
                if box.state is ReplicaState.RESTARTING:
                    wait = max(0.0, box.restart_at - self._clock.monotonic())
                    detail = f"{box.last_exit}; restarting in {wait:.1f}s"
                return ReplicaHealth(box.replica, False, None, detail, box.state, box.restarts)
            healthy, code, detail = await _http.probe(
                http, box.replica.address, rev.spec.health_path
            )
            box.healthy_once = box.healthy_once or healthy
            return ReplicaHealth(box.replica, healthy, code, detail, box.state, box.restarts)

        async with _http.client(timeout) as http:
            return list(await asyncio.gather(*(one(b) for b in boxes)))

    async def stop(self, service: str, revision: str, grace: float | None = None) -> None:
        rev = self._revisions.get((service, revision))
        if rev is None:
            return
        wait = rev.spec.stop_grace if grace is None else grace
        boxes = list(rev.boxes.values())
        await asyncio.gather(
            *(self._remove(rev, b, wait, EventKind.STOPPED, "stopped") for b in boxes)
        )
        self._revisions.pop((service, revision), None)

    async def stop_spec(self, service: str, revision: str, spec: ContainerSpec) -> None:
        """Stop the revision, also when this server never knew it (a restart in between):
        its containers are found by label on the spec's hosts."""
        if (service, revision) not in self._revisions:
            rev = _Revision(service, revision, spec, {})
            try:
                await self._find(rev, remove_stopped=True)
            except SpecError as exc:  # a host that never answered ran nothing of ours
                log.warning("stop %s %s: %s", service, revision, exc)
                return
            self._revisions[(service, revision)] = rev
        await self.stop(service, revision, spec.stop_grace)

    def endpoints(self, service: str, revision: str) -> list[str]:
        return [r.address for r in self._replicas(self._get(service, revision))]

    def replicas(self, service: str, revision: str) -> list[Replica]:
        return self._replicas(self._get(service, revision))

    async def adopt(
        self, service: str, revision: str, spec: ContainerSpec, records: Sequence[Replica]
    ) -> Adoption:
        """Take over the revision's running containers, found by label (records only say
        which replicas to expect); stopped ones are removed, and nothing running is touched."""
        check_names(service, revision)
        rev = self._revisions.get((service, revision))
        if rev is None:
            rev = _Revision(service, revision, spec, {})
            await self._find(rev, remove_stopped=True)
            self._revisions[(service, revision)] = rev
        result = Adoption(adopted=self._replicas(rev))
        for box in rev.boxes.values():
            self._emit(EventKind.ADOPTED, box, f"container {box.cid[:12]} on {box.host.url}")
        for record in records:
            if record.index not in rev.boxes:
                result.gone.append(record)
        return result

    def logs(self, service: str, revision: str, replica: int | None = None, tail: int = 100) -> str:
        parts = []
        for index, lines in self._read(service, revision, replica, tail):
            if replica is not None:
                return "\n".join(lines)
            parts.append("\n".join([f"==> replica {index} <==", *lines]))
        return "\n\n".join(parts)

    def read_logs(
        self,
        service: str,
        revision: str,
        replica: int | None = None,
        after: Mapping[int, int] | None = None,
        count: int = 100,
    ) -> LogRead:
        """Positions count lines of the container's log (its last 5,000 are read to find
        them): a follower sees lines once while the log is shorter than that."""
        if after is None:
            return LogRead(
                tuple(
                    LogLines(index, tuple(lines), len(lines))
                    for index, lines in self._read(service, revision, replica, count)
                )
            )
        read = []
        for index, lines in self._read(service, revision, replica, _LOG_ALL):
            position = after.get(index, 0)
            chunk = lines[position : position + count]
            more = position + count < len(lines)
            read.append(LogLines(index, tuple(chunk), position + len(chunk), more=more))
        return LogRead(tuple(read))

    async def aclose(self) -> None:
        engines, self._engines = self._engines, {}
        for engine in engines.values():
            await engine.aclose()

    # -- supervision ------------------------------------------------------------------------

    async def check(self) -> None:
        """One supervision pass: notice exited containers, restart due ones."""
        async with self._checking:
            states: dict[str, dict[str, str]] = {}
            for url in {b.host.url for r in self._revisions.values() for b in r.boxes.values()}:
                try:
                    listed = await self._engine(url).containers({f"{LABEL}.service": ""})
                except EngineError as exc:
                    log.warning("container check: %s", exc)
                    continue
                states[url] = {str(c["Id"]): str(c.get("State", "")) for c in listed}
            now = self._clock.monotonic()
            for rev in list(self._revisions.values()):
                for box in list(rev.boxes.values()):
                    seen = states.get(box.host.url)
                    if seen is None:
                        continue  # the engine did not answer: nothing known, nothing done
                    if box.state is ReplicaState.RUNNING and seen.get(box.cid) != "running":
                        await self._exited(rev, box, now)
                    elif box.state is ReplicaState.RESTARTING and now >= box.restart_at:
                        await self._restart(rev, box)

    async def _exited(self, rev: _Revision, box: _Box, now: float) -> None:
        # Asked again, one by one: the list may predate a container started meanwhile.
        try:
            info = await self._engine(box.host.url).inspect(box.cid)
        except EngineError as exc:
            log.warning("container check: %s", exc)
            return
        if box.state is not ReplicaState.RUNNING or rev.boxes.get(box.replica.index) is not box:
            return  # stopped or replaced while we asked
        if info is not None and info.get("State", {}).get("Running"):
            return
        how = describe_exit(info.get("State", {})) if info else "was removed"
        uptime = now - box.started_at
        box.last_exit = f"container {box.cid[:12]} {how} after {uptime:.1f}s"
        quick = uptime < self._policy.min_uptime
        box.quick_crashes = box.quick_crashes + 1 if quick else 0
        if not box.healthy_once or box.quick_crashes >= self._policy.max_quick_crashes:
            box.state = ReplicaState.FAILED
            why = "before it ever answered its health check" if not box.healthy_once else (
                f"crashed {box.quick_crashes} times in a row")  # fmt: skip
            box.last_exit += f"; {why}, gave up"
            self._emit(EventKind.FAILED, box, box.last_exit)
            return
        delay = min(
            self._policy.backoff_max,
            self._policy.backoff_initial * 2 ** max(0, box.quick_crashes - 1),
        )
        box.state = ReplicaState.RESTARTING
        box.restart_at = now + delay
        self._emit(EventKind.EXITED, box, f"{box.last_exit}; restarting in {delay:.1f}s")

    async def _restart(self, rev: _Revision, box: _Box) -> None:
        engine = self._engine(box.host.url)
        box.restarts += 1
        box.started_at = self._clock.monotonic()
        try:
            if await engine.inspect(box.cid) is None:  # removed by hand: make it anew
                rev.boxes.pop(box.replica.index, None)
                new = await self._create(rev, box.replica.index, box.replica.port, None, set())
                new.restarts = box.restarts
                box = new
            else:
                await engine.start(box.cid)
        except (EngineError, SpecError) as exc:
            box.last_exit = f"could not be started again: {exc}"
            box.state = ReplicaState.FAILED
            self._emit(EventKind.FAILED, box, box.last_exit)
            return
        box.state = ReplicaState.RUNNING
        self._emit(EventKind.RESTARTED, box, f"container {box.cid[:12]} started again")

    # -- helpers ----------------------------------------------------------------------------

    def _engine(self, url: str) -> Engine:
        engine = self._engines.get(url)
        if engine is None:
            engine = self._engines[url] = Engine(url)
        return engine

    async def _find(self, rev: _Revision, *, remove_stopped: bool) -> None:
        """Fill ``rev.boxes`` with the revision's running containers on its hosts (by label);
        remove stopped ones. SpecError naming a host that does not answer."""
        for host in {h.url: h for h in rev.spec.hosts}.values():
            engine = self._engine(host.url)
            try:
                found = await engine.containers(labels_of(rev.service, rev.revision))
            except EngineError as exc:
                raise SpecError([Problem(f"{_WHERE}.hosts", f"{exc} ({host.chosen})")]) from exc
            for c in found:
                labels = c.get("Labels") or {}
                index_text = str(labels.get(f"{LABEL}.replica", ""))
                if c.get("State") != "running" or not index_text.isdigit():
                    if remove_stopped:
                        await engine.remove(str(c["Id"]))
                    continue
                index = int(index_text)
                port = _published_port(c, rev.spec.port)
                if index in rev.boxes or port is None:
                    await engine.stop(str(c["Id"]), rev.spec.stop_grace)  # a duplicate
                    await engine.remove(str(c["Id"]))
                    continue
                replica = Replica(rev.service, rev.revision, index, port, host=host.address,
                                  container=str(c["Id"]), image=_digest(c.get("ImageID")),
                                  engine=host.url)  # fmt: skip
                rev.boxes[index] = _Box(
                    replica, host, str(c["Id"]), ReplicaState.RUNNING,
                    self._clock.monotonic() - self._policy.min_uptime, healthy_once=True,
                )  # fmt: skip

    async def _create(
        self,
        rev: _Revision,
        index: int,
        port: int,
        deployment: str | None,
        pulled: set[tuple[str, str]],
    ) -> _Box:
        spec = rev.spec
        host = spec.host_for(index)
        engine = self._engine(host.url)
        image = spec.image_for(rev.service, rev.revision, index)
        try:
            await self._ensure_image(engine, image, spec.pull, pulled)
            body = create_body(spec, rev.service, rev.revision, index, port, deployment)
            name = container_name(rev.service, rev.revision, index)
            try:
                cid = await engine.create(name, body)
            except EngineError as exc:
                if exc.status != 409:
                    raise
                await engine.remove(name)  # a leftover of an earlier run with our name
                cid = await engine.create(name, body)
            try:
                await engine.start(cid)
            except EngineError:
                await engine.remove(cid)
                raise
            info = await engine.inspect(cid) or {}
        except EngineError as exc:
            raise SpecError([Problem(_WHERE, f"replica {index}: {exc} ({host.chosen})")]) from exc
        replica = Replica(
            rev.service, rev.revision, index, port, host=host.address,
            started_at=self._clock.now(), container=cid, image=_digest(info.get("Image")),
            engine=host.url,
        )  # fmt: skip
        box = _Box(replica, host, cid, ReplicaState.RUNNING, self._clock.monotonic())
        rev.boxes[index] = box
        self._emit(EventKind.STARTED, box, f"container {cid[:12]} on {host.url}, port {port}")
        return box

    async def _ensure_image(
        self, engine: Engine, image: str, pull: str, pulled: set[tuple[str, str]]
    ) -> None:
        if (engine.url, image) in pulled:
            return
        if pull == "always" or (pull == "missing" and await engine.image(image) is None):
            await engine.pull(image)
        elif pull == "never" and await engine.image(image) is None:
            raise EngineError(
                f"{engine.url}: image {image} does not exist there, and pull is never"
                " (build or load it on that host, or set pull: missing)"
            )
        pulled.add((engine.url, image))

    async def _remove(
        self, rev: _Revision, box: _Box, grace: float, kind: EventKind, detail: str
    ) -> None:
        box.state = ReplicaState.STOPPING
        engine = self._engine(box.host.url)
        with contextlib.suppress(EngineError):
            await engine.stop(box.cid, grace)
        try:
            await engine.remove(box.cid)
        except EngineError as exc:
            log.warning("cannot remove container %s: %s", box.cid[:12], exc)
        rev.boxes.pop(box.replica.index, None)
        self._emit(kind, box, f"container {box.cid[:12]} {detail}")

    def _read(
        self, service: str, revision: str, replica: int | None, tail: int
    ) -> list[tuple[int, list[str]]]:
        rev = self._revisions.get((service, revision))
        if rev is None or not rev.boxes:
            raise NotFoundError(f"no containers of {service} revision {revision} here")
        indexes = sorted(rev.boxes) if replica is None else [replica]
        out = []
        for index in indexes:
            box = rev.boxes.get(index)
            if box is None:
                raise NotFoundError(f"no container for {service} {revision} replica {index}")
            try:
                out.append((index, self._engine(box.host.url).logs(box.cid, tail)))
            except EngineError as exc:
                out.append((index, [f"[sluicegate] cannot read the logs: {exc}"]))
        return out

    def _emit(self, kind: EventKind, box: _Box, detail: str) -> None:
        tell(self._on_change, ReplicaEvent(kind, box.replica, detail, box.restarts))

    def _get(self, service: str, revision: str) -> _Revision:
        rev = self._revisions.get((service, revision))
        if rev is None:
            raise NotFoundError(f"{service} revision {revision} is not running here")
        return rev

    def _replicas(self, rev: _Revision) -> list[Replica]:
        return [rev.boxes[i].replica for i in sorted(rev.boxes)]

    def _ports_in_use(self) -> set[int]:
        return {b.replica.port for r in self._revisions.values() for b in r.boxes.values()}

    def box_info(self, service: str, revision: str) -> list[dict[str, object]]:
        """Per replica: host, container id, state, restarts (for status views)."""
        rev = self._get(service, revision)
        return [
            {"index": i, "host": b.host.url, "container": b.cid[:12], "state": b.state.value,
             "restarts": b.restarts}
            for i, b in sorted(rev.boxes.items())
        ]  # fmt: skip


def _digest(image_id: object) -> str | None:
    """``sha256:<hex>`` whether the engine wrote the prefix or not (Podman lists it bare)."""
    text = str(image_id or "")
    return f"sha256:{text.removeprefix('sha256:')}" if text else None


def _published_port(container: Mapping[str, object], port: int) -> int | None:
    """The host port a listed container publishes ``port`` on."""
    for entry in container.get("Ports") or []:  # type: ignore[attr-defined]
        if entry.get("PrivatePort") == port and entry.get("PublicPort"):
            return int(entry["PublicPort"])
    return None
