"""The data plane of one process: listening sockets, routing snapshots, pools, timeouts, metrics.

It is driven through plain method calls (``apply_config``, ``set_weights``, ``set_health``,
``deregister``...) by the control side, in-process or over a worker's control channel. It
never reads files or the environment.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

from sluicegate.clock import Clock
from sluicegate.errors import ConflictError, NotFoundError, TransientError
from sluicegate.router._client import ClientProtocol
from sluicegate.router._exchange import Exchange
from sluicegate.router._flagslot import FlagSlot, compile_document
from sluicegate.router._metrics import NO_GROUP, MetricsRegistry, Series
from sluicegate.router._sticky import StickyCodec
from sluicegate.router._table import ListenerRoute, Target, TargetGroup, build_route, reweigh
from sluicegate.router._upstream import UpstreamProtocol
from sluicegate.spec.router import ListenerSpec, RouterConfig, parse_target

__all__ = ["DataPlane", "ListenerState"]

log = logging.getLogger("sluicegate.router")
_TICK = 0.25  # seconds between sweeps: timeouts, metric rotation, pool expiry


class ListenerState:
    """A listening socket and the routing snapshot its connections read per request."""

    __slots__ = ("name", "route", "server", "spec", "unrouted")

    def __init__(self, spec: ListenerSpec, route: ListenerRoute, unrouted: Series) -> None:
        self.name = spec.name
        self.spec = spec
        self.route = route
        self.unrouted = unrouted  # requests rejected before routing (400, 408, 414, 431)
        self.server: asyncio.Server | None = None


class DataPlane:
    def __init__(self, sticky_key: bytes, clock: Clock, reuse_port: bool = False,
                 metrics_enabled: bool = True) -> None:
        self.loop = asyncio.get_running_loop()
        self.clock = clock
        self.log = log
        self.reuse_port = reuse_port
        self.sticky_key = sticky_key
        self.codecs: dict[str, StickyCodec] = {}
        self.groups: dict[str, TargetGroup] = {}
        self.listeners: dict[str, ListenerState] = {}
        self.clients: set[ClientProtocol] = set()
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
        self.drain_timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.on_fail_open: Callable[[str], None] = lambda name: log.warning(
            "target group %s has no healthy target: failing open to all its targets", name)
        self._ticker: asyncio.TimerHandle | None = None
        self._rotator: asyncio.TimerHandle | None = None

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
        for state in self.listeners.values():
            if state.server is not None:
                state.server.close()
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
        """Make the plane match ``config``: open/close listeners, (de)register targets.

        Target groups and targets that survive keep their health, pools and counters. New
        listener ports are bound before anything else changes, so a port clash leaves the old
        configuration serving.
        """
        t = config.timeouts
        new_servers: dict[str, asyncio.Server] = {}
        try:
            for spec in config.listeners:
                old = self.listeners.get(spec.name)
                if old is None or (old.spec.port, old.spec.address) != (spec.port, spec.address):
                    new_servers[spec.name] = await self._listen(spec)
        except OSError as exc:
            for server in new_servers.values():
                server.close()
            raise TransientError(f"cannot open listener: {exc.strerror or exc}") from exc
        self.idle_timeout, self.header_timeout = t.idle, t.header
        self.request_timeout, self.connect_timeout = t.request, t.connect
        self.upstream_idle = t.upstream_idle
        self.max_request_line = config.limits.max_request_line
        self.max_header_bytes = config.limits.max_header_bytes
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
        for spec in config.listeners:
            route = build_route(spec, self.groups, self.metrics, self.codec, self.flags)
            state = self.listeners.get(spec.name)
            unrouted = self.metrics.get(spec.name, NO_GROUP)
            if state is None:
                state = self.listeners[spec.name] = ListenerState(spec, route, unrouted)
            else:
                state.spec, state.route = spec, route
            if spec.name in new_servers:
                if state.server is not None:
                    state.server.close()
                state.server = new_servers[spec.name]
        for name in set(self.listeners) - {s.name for s in config.listeners}:
            state = self.listeners.pop(name)
            if state.server is not None:
                state.server.close()
        self.config = config
        for server in new_servers.values():
            await server.start_serving()

    async def _listen(self, spec: ListenerSpec) -> asyncio.Server:
        sock = socket.socket(socket.AF_INET6 if ":" in spec.address else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((spec.address, spec.port))
        except OSError:
            sock.close()
            raise
        sock.listen(4096)
        sock.setblocking(False)
        state_name = spec.name
        # Not serving until apply_config has installed the listener's routing (see below).
        return await self.loop.create_server(
            lambda: ClientProtocol(self, self.listeners[state_name]), sock=sock,
            start_serving=False)

    def set_weights(self, listener: str, weights: Mapping[str, int],
                    rule: int | None = None) -> dict[str, int]:
        """Swap in new weights for one action, atomically; returns the weights now in force."""
        state = self.listeners.get(listener)
        if state is None:
            raise NotFoundError(f"no listener named {listener!r}")
        route = reweigh(state.route, state.spec, weights, rule, self.groups, self.metrics,
                        self.codec)
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

    # -- targets -------------------------------------------------------------------------------

    def _register(self, group: TargetGroup, addr: str) -> None:
        timer = self.drain_timers.pop((group.name, addr), None)
        if timer is not None:
            timer.cancel()
        host, port = parse_target(addr)
        existing = group.targets.get(addr)
        if existing is not None and existing.draining:
            existing.draining = False  # re-registered while draining: back in service
            return
        group.targets[addr] = Target(host, port)

    def register(self, group_name: str, addr: str) -> None:
        group = self._group(group_name)
        if addr in group.targets and not group.targets[addr].draining:
            raise ConflictError(f"{addr} is already registered in {group_name}")
        self._register(group, addr)
        group.refresh()

    def deregister(self, group_name: str, addr: str, delay: float | None = None) -> None:
        group = self._group(group_name)
        if addr not in group.targets or group.targets[addr].draining:
            raise NotFoundError(f"{addr} is not registered in {group_name}")
        self._deregister(group, addr, group.spec.deregistration_delay if delay is None else delay)

    def _deregister(self, group: TargetGroup, addr: str, delay: float) -> None:
        """Out of rotation now; in-flight requests get ``delay`` seconds to finish."""
        target = group.targets[addr]
        target.draining = True
        group.refresh()
        for up in target.idle:
            if up.transport is not None:
                up.transport.close()
        target.idle.clear()
        key = (group.name, addr)
        old = self.drain_timers.pop(key, None)
        if old is not None:
            old.cancel()
        self.drain_timers[key] = self.loop.call_later(delay, self._drained, group, addr)

    def _drained(self, group: TargetGroup, addr: str) -> None:
        self.drain_timers.pop((group.name, addr), None)
        target = group.targets.get(addr)
        if target is None or not target.draining:
            return
        for up in list(target.active):
            if up.transport is not None:
                up.transport.abort()  # the delay is over: whatever is left is cut
        del group.targets[addr]

    def set_health(self, group_name: str, addr: str, healthy: bool) -> None:
        group = self.groups.get(group_name)
        target = group.targets.get(addr) if group is not None else None
        if group is None or target is None:
            return  # deregistered meanwhile
        target.healthy = healthy
        if group.refresh():
            self.on_fail_open(group.name)

    def _group(self, name: str) -> TargetGroup:
        group = self.groups.get(name)
        if group is None:
            raise NotFoundError(f"no target group named {name!r}")
        return group

    def status(self) -> dict[str, Any]:
        return {
            "groups": {
                g.name: {
                    "fail_open": g.fail_open,
                    "targets": {
                        t.addr: {"healthy": t.healthy, "draining": t.draining,
                                 "in_flight": t.in_flight, "connections": len(t.active),
                                 "idle": len(t.idle)}
                        for t in g.targets.values()
                    },
                }
                for g in self.groups.values()
            },
            "listeners": {
                name: {
                    "default": s.route.default.weights(),
                    "rules": [a.weights() for _, a in s.route.rules],
                }
                for name, s in self.listeners.items()
            },
            "clients": len(self.clients),
            "flags": self.flags.status(),
        }

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
                self.loop.create_connection(lambda: UpstreamProtocol(self, target),
                                            target.host, target.port),
                self.connect_timeout)
        except (TimeoutError, OSError) as exc:
            target.in_flight -= 1
            timeout = isinstance(exc, asyncio.TimeoutError)
            if ex.client.active is not ex:
                return
            if not ex.retried:
                ex.retried = True
                self.dispatch(ex, exclude=target)
            else:
                ex.client.router_error(ex, 504 if timeout else 502,
                                       "upstream connect timed out" if timeout
                                       else "upstream refused the connection")
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
        for client in [c for c in self.clients if c.dkind != 3 and c.deadline < now]:
            client.timed_out()
        limit = now - self.upstream_idle
        for group in self.groups.values():
            for target in group.targets.values():
                idle = target.idle
                if idle and idle[0].idle_since < limit:
                    for up in [u for u in idle if u.idle_since < limit]:
                        idle.remove(up)
                        if up.transport is not None:
                            up.transport.close()
