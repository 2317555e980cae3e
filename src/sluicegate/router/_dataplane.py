"""The data plane of one process: listening sockets, routing snapshots, pools, timeouts, metrics.

It is driven through plain method calls (``apply_config``, ``set_weights``, ``set_health``,
``deregister``...) by the control side, in-process or over a worker's control channel. It
never reads the environment, and no files but the TLS certificates the config names
(``_tls``: loaded on every config change, and again when they change on disk).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

from sluicegate.clock import Clock
from sluicegate.errors import NotFoundError, Problem, SpecError, TransientError
from sluicegate.router._admission import Admission
from sluicegate.router._client import ClientProtocol
from sluicegate.router._exchange import Exchange
from sluicegate.router._fds import is_fd_exhaustion
from sluicegate.router._flagslot import FlagSlot, compile_document
from sluicegate.router._listen import host_port, open_listener, reason
from sluicegate.router._listener import ListenerState, Socket
from sluicegate.router._metrics import NO_GROUP, MetricsRegistry
from sluicegate.router._sticky import StickyCodec
from sluicegate.router._table import Target, TargetGroup, build_route, reweigh
from sluicegate.router._targets import TargetRegistry
from sluicegate.router._tls import (
    CertificateSet,
    Stamp,
    load_certificates,
    stamp,
)
from sluicegate.router._upstream import UpstreamProtocol
from sluicegate.spec.router import ListenerSpec, RouterConfig

__all__ = ["DataPlane", "ListenerState"]  # ListenerState from _listener, for old imports

log = logging.getLogger(__name__)
_TICK = 0.25  # seconds between sweeps: timeouts, metric rotation, pool expiry
_CERT_CHECK_TICKS = 4  # certificate files are looked at every 4th sweep (1 s)


_Key = tuple[str, int, bool]  # (address, port, TLS?) of a listening socket


class DataPlane(TargetRegistry):
    def __init__(
        self,
        sticky_key: bytes,
        clock: Clock,
        reuse_port: bool = False,
        metrics_enabled: bool = True,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.clock = clock
        self.log = log
        self.reuse_port = reuse_port
        self.sticky_key = sticky_key
        self.codecs: dict[str, StickyCodec] = {}
        self.groups: dict[str, TargetGroup] = {}
        self.listeners: dict[str, ListenerState] = {}
        self.clients: set[ClientProtocol] = set()
        self.upstreams = 0  # upstream connections open (with clients: descriptors held)
        self.admission = Admission(log)
        self.config: RouterConfig | None = None
        self.metrics = MetricsRegistry(enabled=metrics_enabled)
        self.flags = FlagSlot()  # outlives configs: routes rebuilt on reload share it
        self.now = self.loop.time()  # coarse monotonic time for deadlines (updated per tick)
        self.now_sec = int(clock.now())  # coarse wall-clock second for cookies and metrics
        self.idle_timeout = 60.0
        self.header_timeout = 10.0
        self.request_timeout = 60.0
        self.connect_timeout = 3.0
        self.upstream_idle = 30.0
        self.max_request_line = 8192
        self.max_header_bytes = 32768
        self.max_pipelined = 16
        self.drain_timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.on_fail_open: Callable[[str], None] = lambda name: log.warning(
            "target group %s has no healthy target: failing open to all its targets", name
        )
        self._ticker: asyncio.TimerHandle | None = None
        self._rotator: asyncio.TimerHandle | None = None
        self._ticks = 0
        # A prepared change: its config, the sockets opened for it (not yet serving), and
        # the certificates loaded for its TLS listeners (by listener name).
        self._pending: (
            tuple[RouterConfig, dict[_Key, Socket], dict[str, tuple[CertificateSet, Stamp]]] | None
        ) = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, config: RouterConfig) -> None:
        await self.apply_config(config)
        self.metrics.rotate(self.now_sec)
        self._ticker = self.loop.call_later(_TICK, self._tick)
        self._schedule_rotation()

    async def stop(self) -> None:
        for timer in (self._ticker, self._rotator):
            if timer is not None:
                timer.cancel()
        self.abort_config()
        for state in self.listeners.values():
            if state.socket is not None:
                state.socket.close()
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.close()
        for group in self.groups.values():
            for target in group.targets.values():
                for up in list(target.active):
                    if up.transport is not None:
                        up.transport.close()

    def codec(self, cookie_name: str) -> StickyCodec:
        c = self.codecs.get(cookie_name)
        if c is None:
            c = self.codecs[cookie_name] = StickyCodec(self.sticky_key, cookie_name)
        return c

    # -- configuration -------------------------------------------------------------------------

    async def apply_config(self, config: RouterConfig) -> None:
        """Make the plane match ``config``: :meth:`prepare_config`, then :meth:`commit_config`.
        A port that cannot be opened raises SpecError and changes nothing."""
        await self.prepare_config(config)
        await self.commit_config()

    async def prepare_config(self, config: RouterConfig) -> None:
        """Phase one of a change: open every listening socket ``config`` needs that this
        plane does not hold yet (same address and port), and keep them, not serving, until
        :meth:`commit_config` or :meth:`abort_config`. Nothing else changes.

        Raises SpecError with a problem at ``listeners[i].port`` for each port that cannot
        be opened; then nothing is kept open.
        """
        self.abort_config()
        held = self._held()
        opened: dict[_Key, Socket] = {}
        problems: list[Problem] = []
        # Certificates are read on every change: a config PUT also reloads them.
        certs: dict[str, tuple[CertificateSet, Stamp]] = {}
        for i, spec in enumerate(config.listeners):
            if spec.tls is not None:
                files = stamp(spec.tls.certificates)
                try:
                    certs[spec.name] = (load_certificates(spec.tls, f"listeners[{i}].tls"), files)
                except SpecError as exc:
                    problems += exc.problems
        if problems:
            raise SpecError(problems)
        for i, spec in enumerate(config.listeners):
            key = (spec.address, spec.port, spec.tls is not None)
            if key in held or key in opened:
                continue
            try:
                # Plain <-> TLS on a port this plane holds: the same listening socket, served
                # anew (a second socket on the port could not be opened).
                opened[key] = await self._listen(key, held.get((key[0], key[1], not key[2])))
            except OSError as exc:
                problems.append(Problem(f"listeners[{i}].port", self._cannot_listen(spec, exc)))
        if problems:
            for sock in opened.values():
                sock.close()
            raise SpecError(problems)
        self._pending = (config, opened, certs)

    def abort_config(self) -> None:
        """Drop a prepared change: close the sockets opened for it. No-op without one."""
        pending, self._pending = self._pending, None
        if pending is not None:
            for sock in pending[1].values():
                sock.close()

    async def commit_config(self) -> None:
        """Phase two: put the prepared config in force. No-op without a prepared change
        (a worker started meanwhile was given the new config at its start).

        Target groups and targets that survive keep their health, pools and counters. A
        listening socket goes to whichever listener now names its address and port; one no
        listener names is closed. Connections already open stay with the listener they
        were accepted for.
        """
        if self._pending is None:
            return
        (config, opened, certs), self._pending = self._pending, None
        held = self._held()
        t = config.timeouts
        self.idle_timeout, self.header_timeout = t.idle, t.header
        self.request_timeout, self.connect_timeout = t.request, t.connect
        self.upstream_idle = t.upstream_idle
        self.max_request_line = config.limits.max_request_line
        self.max_header_bytes = config.limits.max_header_bytes
        self.max_pipelined = config.limits.max_pipelined
        self.metrics.window = int(config.metrics_window)
        for gspec in config.target_groups:
            group = self.groups.get(gspec.name)
            if group is None:
                group = self.groups[gspec.name] = TargetGroup(gspec)
            else:
                group.spec = gspec
                group.least_outstanding = gspec.algorithm == "least_outstanding_requests"
            wanted = set(gspec.targets)
            for addr in wanted:
                known = group.targets.get(addr)
                if known is None or known.draining:  # a draining target comes back
                    self._register(group, addr)
            for addr in set(group.targets) - wanted:
                if not group.targets[addr].draining:  # already going: its timer stands
                    self._deregister(group, addr, gspec.deregistration_delay)
            group.refresh()
        for name in set(self.groups) - {g.name for g in config.target_groups}:
            group = self.groups[name]
            for addr in list(group.targets):
                self._deregister(group, addr, group.spec.deregistration_delay)
            # The group object lives on in in-flight exchanges; it just leaves routing.
            del self.groups[name]
        claimed: set[_Key] = set()
        for spec in config.listeners:
            route = build_route(spec, self.groups, self.metrics, self.codec, self.flags)
            state = self.listeners.get(spec.name)
            unrouted = self.metrics.get(spec.name, NO_GROUP)
            if state is None:
                state = self.listeners[spec.name] = ListenerState(spec, route, unrouted)
            else:
                state.configure(spec, route)
            key = (spec.address, spec.port, spec.tls is not None)
            sock = opened.get(key) or held.get(key)
            if sock is None:  # only if the plane changed between prepare and commit
                raise TransientError(f"listener {spec.name!r} lost its socket; retry the change")
            if sock.tls is not None and spec.tls is not None:
                sock.tls.install(spec.tls, *certs[spec.name])
            sock.state, state.socket = state, sock
            claimed.add(key)
        for name in set(self.listeners) - {s.name for s in config.listeners}:
            del self.listeners[name]
        for key, sock in held.items():
            if key not in claimed:
                sock.close()
        self.config = config
        for sock in opened.values():
            assert sock.server is not None
            await sock.server.start_serving()
        self.admission.fds.recount(len(self.clients) + self.upstreams, self.now)

    def _held(self) -> dict[_Key, Socket]:
        return {
            (s.spec.address, s.spec.port, s.spec.tls is not None): s.socket
            for s in self.listeners.values()
            if s.socket is not None
        }

    async def _listen(self, key: _Key, twin: Socket | None = None) -> Socket:
        """A new listening socket for ``key``, not serving yet; with ``twin`` (held, the
        other protocol on the same port) a duplicate of its descriptor: the twin is closed
        at commit and this one goes on listening, with no moment the port is free."""
        address, port, tls = key
        sock = Socket(self, tls)
        if twin is not None and twin.server is not None and twin.server.sockets:
            raw = socket.socket(fileno=os.dup(twin.server.sockets[0].fileno()))
            raw.setblocking(False)
        else:
            raw = open_listener(address, port, self.reuse_port)
        try:
            # Not serving until commit_config has installed the listener's routing (and,
            # for TLS, its certificates: the SNI callback reads them).
            if sock.tls is None:
                sock.server = await self.loop.create_server(sock, sock=raw, start_serving=False)
            else:
                sock.server = await self.loop.create_server(
                    sock,
                    sock=raw,
                    ssl=sock.tls.context,
                    # A handshake is part of the request head: bounded by the same timeout.
                    ssl_handshake_timeout=self.header_timeout,
                    ssl_shutdown_timeout=5.0,
                    start_serving=False,
                )
        except BaseException:
            raw.close()
            raise
        return sock

    def _cannot_listen(self, spec: ListenerSpec, exc: OSError) -> str:
        why = reason(exc)
        if exc.errno == errno.EADDRINUSE:
            mine = next((s for s in self.listeners.values() if s.spec.port == spec.port), None)
            why += (
                " (another program holds it)"
                if mine is None
                else f" (listener {mine.name!r} of this router holds "
                f"{host_port(mine.spec.address, mine.spec.port)})"
            )
        return f"cannot listen on {host_port(spec.address, spec.port)}: {why}"

    def set_weights(
        self, listener: str, weights: Mapping[str, int], rule: int | None = None
    ) -> dict[str, int]:
        """Swap in new weights for one action, atomically; returns the weights now in force."""
        state = self.listeners.get(listener)
        if state is None:
            raise NotFoundError(f"no listener named {listener!r}")
        if state.spec.redirect is not None:
            raise NotFoundError(f"listener {listener!r} redirects: it has no weights to set")
        route = reweigh(
            state.route, state.spec, weights, rule, self.groups, self.metrics, self.codec
        )
        state.route = route
        action = route.default if rule is None else route.rules[rule][1]
        return action.weights()

    def set_flags(self, version: int, document: Mapping[str, Any]) -> None:
        """Compile and swap in a flag set; a bad one raises SpecError, the old one stays."""
        self.flags.load(compile_document(version, document))

    def weights(self, listener: str, rule: int | None = None) -> dict[str, int]:
        state = self.listeners[listener]
        action = state.route.default if rule is None else state.route.rules[rule][1]
        return action.weights()

    # -- request dispatch (hot path) -------------------------------------------------------------

    def dispatch(self, ex: Exchange, exclude: Target | None = None) -> None:
        group = ex.entry.group
        target = group.next_target(exclude)
        if target is None:
            if exclude is not None:
                ex.client.router_error(ex, 502, "no other target to retry on")
            else:
                ex.client.router_error(ex, 503, f"target group {group.name} has no targets")
            return
        ex.target = target
        target.in_flight += 1
        idle = target.idle
        # An Upgrade gets a connection of its own: it becomes a tunnel and never returns to
        # the pool, and a fresh connection cannot carry state from earlier exchanges.
        while idle and not ex.upgrade:
            up = idle.pop()
            if up.transport is not None and not up.transport.is_closing():
                up.send(ex)
                return
        self.loop.create_task(self._connect(ex, target))

    async def _connect(self, ex: Exchange, target: Target) -> None:
        try:
            _, up = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: UpstreamProtocol(self, target), target.host, target.port
                ),
                self.connect_timeout,
            )
        except (TimeoutError, OSError) as exc:
            target.in_flight -= 1
            timeout = isinstance(exc, asyncio.TimeoutError)
            if ex.client.active is not ex:
                return
            if is_fd_exhaustion(exc):
                # Ours, not the target's: no retry elsewhere, and not counted against the
                # target group (a canary guard must not blame a release for it).
                held = len(self.clients) + self.upstreams
                self.admission.out_of_fds(
                    f"answering 503 instead of connecting to {target.addr}", held, self.now
                )
                ex.client.router_error(ex, 503, "the router is out of file descriptors", False)
                return
            if not ex.retried:
                ex.retried = True
                self.dispatch(ex, exclude=target)
            else:
                ex.client.router_error(
                    ex,
                    504 if timeout else 502,
                    "upstream connect timed out" if timeout else "upstream refused the connection",
                )
            return
        if ex.client.active is not ex or ex.client.transport is None:
            target.in_flight -= 1
            if up.transport is not None:
                up.reused = True
                up.idle_since = self.now
                target.idle.append(up)
            return
        up.send(ex)

    def retry(self, ex: Exchange, target: Target, stale: bool) -> None:
        """Once more for an exchange whose connection failed before any response byte.

        A pooled connection the upstream had already closed is retried on the same target
        (its next connection is fresh); a failed new connection moves on to another target.
        """
        if ex.client.active is not ex:
            return
        if stale:
            ex.target = target
            target.in_flight += 1
            self.loop.create_task(self._connect(ex, target))
        else:
            self.dispatch(ex, exclude=target)

    # -- the tick --------------------------------------------------------------------------------

    def _schedule_rotation(self) -> None:
        wall = self.clock.now()
        # Fire just after the wall-clock second turns, so each request lands in its second.
        self._rotator = self.loop.call_later(int(wall) + 1 - wall + 0.0005, self._rotate)

    def _rotate(self) -> None:
        second = int(self.clock.now())
        if second != self.now_sec:
            self.now_sec = second
            self.metrics.rotate(second)
        self._schedule_rotation()

    def _tick(self) -> None:
        self._ticker = self.loop.call_later(_TICK, self._tick)
        now = self.now = self.loop.time()
        self._ticks += 1
        if self._ticks % _CERT_CHECK_TICKS == 0:
            self.check_certificates()
        for client in [c for c in self.clients if c.dkind != 3 and c.deadline < now]:
            client.timed_out()
        self.admission.tick(len(self.clients) + self.upstreams, now)
        limit = now - self.upstream_idle
        for group in self.groups.values():
            for target in group.targets.values():
                idle = target.idle
                if idle and idle[0].idle_since < limit:
                    for up in [u for u in idle if u.idle_since < limit]:
                        idle.remove(up)
                        if up.transport is not None:
                            up.transport.close()

    # -- certificates ----------------------------------------------------------------------------

    def check_certificates(self, force: bool = False) -> list[str]:
        """Reload the certificates of each TLS listener whose files changed on disk. A set
        that cannot serve is refused (logged, shown in status); the old one keeps serving,
        and it is tried again when the files change once more."""
        config = self.config
        if config is None:
            return []
        errors = []
        for i, spec in enumerate(config.listeners):
            state = self.listeners.get(spec.name)
            sock, tls = (state.socket, spec.tls) if state is not None else (None, None)
            if sock is None or sock.tls is None or tls is None:
                continue
            sock.tls.refresh(spec.name, tls, f"listeners[{i}].tls", log, force)
            if sock.tls.error is not None:
                errors.append(sock.tls.error)
        return errors
