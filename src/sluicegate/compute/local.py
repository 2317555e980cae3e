"""``LocalCompute``: a supervisor of local processes, the default place a revision runs.

Each replica is a subprocess in its own session (``start_new_session``), so it survives the
control plane, and can be stopped as a process group. Its stdout and stderr are appended to
``<state_dir>/logs/<service>/<revision>/<index>.log`` (rotated by size), together with a
line from the supervisor for every start, exit, restart and stop.

Liveness is polled, never left to asyncio child watchers: ``os.waitpid(pid, WNOHANG)`` for
our own children, ``/proc/PID/stat`` (state and start time) for replicas adopted after a
control-plane restart. A crashed replica is restarted **on the same port** (so the router's
targets stay valid) after a back-off that doubles with each quick crash in a row; only when
that port was taken meanwhile does it get a new one, reported as a RESTARTED event with the
new port. After ``RestartPolicy.max_quick_crashes`` crashes in a row, each within
``min_uptime`` of its start, the supervisor gives up on the replica (state FAILED, event
FAILED) until ``start`` is called again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
import os
import re
import shlex
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from sluicegate._child_env import child_env
from sluicegate._private import open_append
from sluicegate.clock import Clock, SystemClock
from sluicegate.compute import _http, _logfiles, _ports, _proc
from sluicegate.compute._bound import Bound
from sluicegate.compute._logfiles import LogRead
from sluicegate.compute._secrets import resolve_env
from sluicegate.compute.base import (
    Adoption,
    EventKind,
    LocalSpec,
    Replica,
    ReplicaEvent,
    ReplicaHealth,
    ReplicaState,
    check_names,
    tell,
)
from sluicegate.errors import ConflictError, NotFoundError, Problem, SpecError
from sluicegate.spec.service import ServiceSpec

__all__ = ["LocalCompute", "RestartPolicy"]

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{(port|revision|replica|service)\}")
_PORT_WAIT = 1.0  # seconds a restart waits for its old port before moving to a new one
_KILL_WAIT = 5.0  # seconds to wait for the kernel after SIGKILL before giving up on a pid


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a crashed replica, and when to stop trying.

    The n-th quick crash in a row waits ``backoff_initial * 2**(n-1)`` seconds (at most
    ``backoff_max``); a crash after ``min_uptime`` seconds of running starts a new count.
    """

    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    min_uptime: float = 10.0
    max_quick_crashes: int = 5


@dataclass
class _Slot:
    """The supervisor's mutable view of one replica."""

    replica: Replica
    state: ReplicaState
    started_at: float  # monotonic
    restarts: int = 0
    quick_crashes: int = 0
    restart_at: float = 0.0
    last_exit: str = ""
    port_wait_until: float = 0.0  # monotonic; 0 when not waiting for the old port


@dataclass
class _Revision:
    service: str
    revision: str
    spec: LocalSpec
    slots: dict[int, _Slot]


class LocalCompute:
    """Runs revisions as supervised processes on 127.0.0.1 (implements ``Compute[LocalSpec]``).

    ``on_change`` is called (synchronously, from the event loop) with a :class:`ReplicaEvent`
    whenever a replica gets a new process, exits, is given up on, adopted, found gone or
    stopped; record PIDs from it. Supervision runs in a task of the running event loop,
    created by the first ``start``/``adopt``; ``aclose`` ends it and leaves processes running.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        on_change: Callable[[ReplicaEvent], object] | None = None,
        poll_interval: float = 0.5,
        restart: RestartPolicy | None = None,
        log_max_bytes: int = 10 << 20,
        log_backups: int = 2,
        supervise: bool = True,
    ) -> None:
        self._state_dir = Path(state_dir)
        self._clock: Clock = clock or SystemClock()
        self._on_change = on_change
        self._poll = poll_interval
        self._policy = restart or RestartPolicy()
        self._log_max = log_max_bytes
        self._log_backups = log_backups
        self._revisions: dict[tuple[str, str], _Revision] = {}
        self._task: asyncio.Task[None] | None = None
        self._self_supervise = supervise  # False: the caller runs ``check`` on its own loop

    def problems_of(self, service: ServiceSpec) -> list[Problem]:
        """What this backend refuses in the spec at apply: secret env values it cannot read
        (a command that cannot start fails its deployment at once, with the cause)."""
        local = service.compute.local
        if local is None:
            return []
        return resolve_env(local.env, "compute.local.env")[2]

    def secrets_of(self, service: ServiceSpec) -> list[str]:
        """The secret values the spec's replicas get (to redact them from events)."""
        local = service.compute.local
        return [] if local is None else list(resolve_env(local.env, "")[1].values())

    def place(
        self, service: ServiceSpec, revision: str, env: Mapping[str, str]
    ) -> Bound[LocalSpec]:
        """``revision`` of ``service`` here (the selector's ``local`` backend); the
        revision's ``env`` is laid over the spec's."""
        local = service.compute.local
        if local is None:
            raise SpecError([Problem("compute.local", "the service does not run locally")])
        plain, secret, problems = resolve_env(local.env, "compute.local.env")
        if problems:
            raise SpecError(problems)
        spec = LocalSpec(
            command=list(local.command),
            env={**plain, **env, **secret},
            replicas=local.replicas,
            cwd=local.cwd,
            health_path=service.health_check.path,
            stop_grace=local.stop_grace,
        )
        return Bound(self, service.service, revision, spec)

    # -- the Compute interface ------------------------------------------------------------

    async def start(self, service: str, revision: str, spec: LocalSpec) -> list[Replica]:
        """Start the missing replicas (and those given up on); stop any beyond the count."""
        check_names(service, revision)
        problems = spec.problems()
        if spec.cwd is not None and not os.path.isdir(spec.cwd):
            problems.append(Problem("compute.local.cwd", f"{spec.cwd!r} is not a directory"))
        if problems:
            raise SpecError(problems)
        rev = self._revisions.get((service, revision))
        if rev is None:
            rev = _Revision(service, revision, spec, {})
            self._revisions[(service, revision)] = rev
        rev.spec = spec
        self._ensure_supervising()
        missing = [
            i
            for i in range(spec.replicas)
            if i not in rev.slots or rev.slots[i].state == ReplicaState.FAILED
        ]
        ports = _ports.allocate(len(missing), avoid=self._ports_in_use()) if missing else []
        started: list[_Slot] = []
        try:
            for index, port in zip(missing, ports, strict=True):
                replica = self._spawn(rev, index, port)
                restarts = rev.slots[index].restarts if index in rev.slots else 0
                slot = _Slot(replica, ReplicaState.RUNNING, self._clock.monotonic(), restarts)
                rev.slots[index] = slot
                started.append(slot)
                self._emit(EventKind.STARTED, slot, f"pid {replica.pid} on port {port}")
        except OSError as exc:
            await asyncio.gather(*(self._stop_slot(rev, s, 0.0) for s in started))
            for s in started:
                rev.slots.pop(s.replica.index, None)
            if not rev.slots:
                self._revisions.pop((service, revision), None)
            raise SpecError(
                [Problem("compute.local.command", f"cannot run {spec.command[0]!r}: {exc}")]
            ) from exc
        extra = [s for i, s in rev.slots.items() if i >= spec.replicas]
        await asyncio.gather(*(self._stop_slot(rev, s, spec.stop_grace) for s in extra))
        return self._replicas(rev)

    async def health(
        self, service: str, revision: str, *, timeout: float = 2.0
    ) -> list[ReplicaHealth]:
        rev = self._get(service, revision)
        slots = sorted(rev.slots.values(), key=lambda s: s.replica.index)
        async with _http.client(timeout) as http:
            return list(await asyncio.gather(*(self._health(rev, s, http) for s in slots)))

    async def stop(self, service: str, revision: str, grace: float | None = None) -> None:
        rev = self._revisions.get((service, revision))
        if rev is None:
            return
        wait = rev.spec.stop_grace if grace is None else grace
        await asyncio.gather(*(self._stop_slot(rev, s, wait) for s in list(rev.slots.values())))
        if not rev.slots:
            self._revisions.pop((service, revision), None)

    def endpoints(self, service: str, revision: str) -> list[str]:
        return [r.address for r in self.replicas(service, revision)]

    def replicas(self, service: str, revision: str) -> list[Replica]:
        """The current record of every replica, by index (NotFoundError when not running)."""
        return self._replicas(self._get(service, revision))

    async def adopt(
        self, service: str, revision: str, spec: LocalSpec, records: Sequence[Replica]
    ) -> Adoption:
        """Take over the recorded replicas whose process is alive and is the same process
        (same start time, still leading its own process group); the rest are gone, and
        nothing is signalled. Adopted replicas are supervised (and restarted) from here on."""
        check_names(service, revision)
        problems = spec.problems()
        if problems:
            raise SpecError(problems)
        if (service, revision) in self._revisions:
            raise ConflictError(f"{service} revision {revision} is already supervised here")
        indexes = [r.index for r in records]
        if len(set(indexes)) != len(indexes):
            raise ValueError(f"records of {service}/{revision} repeat a replica index")
        for record in records:
            if (record.service, record.revision) != (service, revision):
                raise ValueError(f"record {record} is not of {service}/{revision}")
        rev = _Revision(service, revision, spec, {})
        self._revisions[(service, revision)] = rev
        result = Adoption()
        long_ago = self._clock.monotonic() - self._policy.min_uptime
        for record in sorted(records, key=lambda r: r.index):
            slot = _Slot(record, ReplicaState.RUNNING, long_ago)
            if (
                record.pid is not None
                and record.pid_start_time is not None
                and _proc.is_same_process(record.pid, int(record.pid_start_time))
            ):
                slot.replica = replace(
                    record,
                    pid_start_time=int(record.pid_start_time),
                    log_path=record.log_path or str(self._log_path(rev, record.index)),
                )
                rev.slots[record.index] = slot
                result.adopted.append(slot.replica)
                self._note(slot.replica, f"adopted pid {record.pid} on port {record.port}")
                self._emit(EventKind.ADOPTED, slot, f"pid {record.pid}")
            else:
                result.gone.append(record)
                self._emit(EventKind.GONE, slot, f"pid {record.pid} is not running any more")
        self._ensure_supervising()
        return result

    def logs(self, service: str, revision: str, replica: int | None = None, tail: int = 100) -> str:
        """Read from disk, so logs of stopped or adopted revisions are there too."""
        parts = []
        for index, path in self._log_files(service, revision, replica):
            lines = _logfiles.tail_lines(path, tail)
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
        """Complete lines with their positions (see ``_logfiles``): per replica the last
        ``count``, or with ``after`` (positions by replica index) at most ``count`` after
        each replica's position, none twice and none left out across rotations. From disk,
        like ``logs``."""
        read = []
        for index, path in self._log_files(service, revision, replica):
            if after is None:
                read.append(_logfiles.read_tail(path, index, count, self._log_backups))
            else:
                position = after.get(index)
                read.append(_logfiles.read_after(path, index, position, count, self._log_backups))
        return LogRead(tuple(read))

    def _log_files(
        self, service: str, revision: str, replica: int | None
    ) -> list[tuple[int, Path]]:
        """The revision's log files by replica index (one, or all); NotFoundError if none."""
        check_names(service, revision)
        directory = self._state_dir / "logs" / service / revision
        if replica is not None:
            path = directory / f"{replica}.log"
            if not path.exists():
                raise NotFoundError(f"no logs for {service} revision {revision} replica {replica}")
            return [(replica, path)]
        found = sorted((int(p.stem), p) for p in directory.glob("*.log") if p.stem.isdigit())
        if not found:
            raise NotFoundError(f"no logs for {service} revision {revision}")
        return found

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- supervision ---------------------------------------------------------------------

    def _ensure_supervising(self) -> None:
        if not self._self_supervise:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name="sluicegate-local-compute"
            )

    async def _supervise(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # one bad tick must not end supervision
                log.exception("local compute: supervision tick failed")
            await asyncio.sleep(self._poll)

    def check(self) -> None:
        """One supervision pass: notice exits, restart due replicas, rotate big logs.

        Runs every ``poll_interval`` seconds by itself; public so a caller can force a pass.
        """
        now = self._clock.monotonic()
        for rev in list(self._revisions.values()):
            for slot in list(rev.slots.values()):
                if slot.state == ReplicaState.RUNNING:
                    self._check_running(rev, slot, now)
                elif slot.state == ReplicaState.RESTARTING and now >= slot.restart_at:
                    self._restart(rev, slot)
                if slot.state == ReplicaState.RUNNING and slot.replica.log_path:
                    _logfiles.rotate_if_large(
                        Path(slot.replica.log_path), self._log_max, self._log_backups
                    )

    def _check_running(self, rev: _Revision, slot: _Slot, now: float) -> None:
        replica = slot.replica
        assert replica.pid is not None and replica.pid_start_time is not None
        alive, exit = _proc.is_alive(replica.pid, replica.pid_start_time)
        if alive:
            return
        self._crashed(rev, slot, _proc.describe_exit(exit or _proc.Exit()), now)

    def _crashed(self, rev: _Revision, slot: _Slot, how: str, now: float) -> None:
        uptime = now - slot.started_at
        quick = uptime < self._policy.min_uptime
        slot.quick_crashes = slot.quick_crashes + 1 if quick else 0
        slot.last_exit = f"pid {slot.replica.pid} {how} after {uptime:.1f}s"
        if slot.quick_crashes >= self._policy.max_quick_crashes:
            slot.state = ReplicaState.FAILED
            detail = f"{slot.last_exit}; crashed {slot.quick_crashes} times in a row, gave up"
            self._note(slot.replica, detail)
            self._emit(EventKind.FAILED, slot, detail)
            log.warning("%s/%s replica %d: %s", rev.service, rev.revision, slot.replica.index,
                        detail)  # fmt: skip
            return
        doublings = max(0, slot.quick_crashes - 1)
        delay = min(self._policy.backoff_max, self._policy.backoff_initial * 2**doublings)
        slot.state = ReplicaState.RESTARTING
        slot.restart_at = now + delay
        detail = f"{slot.last_exit}; restarting in {delay:.1f}s"
        self._note(slot.replica, detail)
        self._emit(EventKind.EXITED, slot, detail)
        log.info("%s/%s replica %d: %s", rev.service, rev.revision, slot.replica.index, detail)

    def _restart(self, rev: _Revision, slot: _Slot) -> None:
        now = self._clock.monotonic()
        port = slot.replica.port
        if not _ports.is_free(port):
            # The kernel releases a dead process's sockets a few milliseconds after it
            # becomes a zombie: wait a little for the old port before taking a new one.
            if slot.port_wait_until == 0.0:
                slot.port_wait_until = now + _PORT_WAIT
            if now < slot.port_wait_until:
                slot.restart_at = now + min(self._poll, 0.05)
                return
            port = _ports.allocate(1, avoid=self._ports_in_use())[0]
        slot.port_wait_until = 0.0
        slot.restarts += 1
        try:
            slot.replica = self._spawn(rev, slot.replica.index, port)
        except OSError as exc:
            slot.started_at = now
            self._crashed(rev, slot, f"could not be restarted ({exc})", now)
            return
        slot.state = ReplicaState.RUNNING
        slot.started_at = now
        self._emit(EventKind.RESTARTED, slot, f"pid {slot.replica.pid} on port {port}")

    async def _stop_slot(self, rev: _Revision, slot: _Slot, grace: float) -> None:
        """SIGTERM the replica's process group, SIGKILL it after ``grace``; forget the slot."""
        slot.state = ReplicaState.STOPPING
        replica = slot.replica
        how = "was not running"
        if replica.pid is not None and replica.pid_start_time is not None:
            how = await self._terminate(replica.pid, replica.pid_start_time, grace)
        rev.slots.pop(replica.index, None)
        self._note(replica, f"stopped: pid {replica.pid} {how}")
        self._emit(EventKind.STOPPED, slot, how)

    async def _terminate(self, pid: int, start_time: int, grace: float) -> str:
        alive, exit = _proc.is_alive(pid, start_time)
        if not alive:
            return "was not running"
        if not _proc.is_same_process(pid, start_time):
            return "was not running"  # alive but no longer our group leader: leave it be
        _proc.kill_group(pid, signal.SIGTERM)
        deadline = self._clock.monotonic() + grace
        while alive and self._clock.monotonic() < deadline:
            await asyncio.sleep(min(0.05, max(0.0, deadline - self._clock.monotonic())))
            alive, exit = _proc.is_alive(pid, start_time)
        if not alive:
            _proc.kill_group(pid, signal.SIGKILL)  # stragglers the replica left in its group
            return f"{_proc.describe_exit(exit or _proc.Exit())} after SIGTERM"
        _proc.kill_group(pid, signal.SIGKILL)
        deadline = self._clock.monotonic() + _KILL_WAIT
        while alive and self._clock.monotonic() < deadline:
            await asyncio.sleep(0.02)
            alive, exit = _proc.is_alive(pid, start_time)
        if alive:
            log.error("pid %d survived SIGKILL for %.0fs", pid, _KILL_WAIT)
            return "survived SIGKILL"
        return f"ignored SIGTERM for {grace:g}s; killed by SIGKILL"

    async def _health(self, rev: _Revision, slot: _Slot, http: httpx.AsyncClient) -> ReplicaHealth:
        replica = slot.replica
        if slot.state != ReplicaState.RUNNING:
            if slot.state == ReplicaState.RESTARTING:
                wait = max(0.0, slot.restart_at - self._clock.monotonic())
                detail = f"{slot.last_exit}; restarting in {wait:.1f}s"
            elif slot.state == ReplicaState.FAILED:
                detail = f"{slot.last_exit}; crashed {slot.quick_crashes} times in a row, gave up"
            else:
                detail = "stopping"
            return ReplicaHealth(replica, False, None, detail, slot.state, slot.restarts)
        restarts = slot.restarts  # as of the probe: the supervisor may change the slot meanwhile
        healthy, code, detail = await _http.probe(http, replica.address, rev.spec.health_path)
        return ReplicaHealth(replica, healthy, code, detail, ReplicaState.RUNNING, restarts)

    # -- helpers -------------------------------------------------------------------------

    def _spawn(self, rev: _Revision, index: int, port: int) -> Replica:
        values = {
            "port": str(port),
            "revision": rev.revision,
            "replica": str(index),
            "service": rev.service,
        }

        def render(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        spec = rev.spec
        command = [render(arg) for arg in spec.command]
        env = child_env({k: render(v) for k, v in spec.env.items()})
        log_path = self._log_path(rev, index)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        _logfiles.rotate_if_large(log_path, self._log_max, self._log_backups)
        try:
            pid, start_time = _proc.spawn(command, env, spec.cwd, str(log_path))
        except OSError as exc:  # in the replica's log too, so `sluice logs` tells why
            self._note(
                Replica(rev.service, rev.revision, index, port, log_path=str(log_path)),
                f"cannot start {shlex.join(command)}: {exc.strerror or exc}",
            )
            raise
        replica = Replica(
            rev.service,
            rev.revision,
            index,
            port,
            pid,
            start_time,
            str(log_path),
            started_at=self._clock.now(),
        )
        self._note(replica, f"started pid {pid} on port {port}: {shlex.join(command)}")
        return replica

    def _log_path(self, rev: _Revision, index: int) -> Path:
        return self._state_dir / "logs" / rev.service / rev.revision / f"{index}.log"

    def _note(self, replica: Replica, message: str) -> None:
        """A supervisor line in the replica's log, so ``sluice logs`` tells the whole story."""
        if not replica.log_path:
            return
        when = _dt.datetime.fromtimestamp(self._clock.now(), tz=_dt.UTC)
        line = f"[sluicegate {when.isoformat(timespec='seconds')}] replica {replica.index}: "
        try:
            with open(open_append(replica.log_path), "a", encoding="utf-8") as f:
                f.write(line + message + "\n")
        except OSError as exc:
            log.warning("cannot write to %s: %s", replica.log_path, exc)

    def _emit(self, kind: EventKind, slot: _Slot, detail: str) -> None:
        tell(self._on_change, ReplicaEvent(kind, slot.replica, detail, slot.restarts))

    def _get(self, service: str, revision: str) -> _Revision:
        rev = self._revisions.get((service, revision))
        if rev is None:
            raise NotFoundError(f"{service} revision {revision} is not running here")
        return rev

    def _replicas(self, rev: _Revision) -> list[Replica]:
        return [rev.slots[i].replica for i in sorted(rev.slots)]

    def _ports_in_use(self) -> set[int]:
        return {s.replica.port for rev in self._revisions.values() for s in rev.slots.values()}
