"""The data plane's targets: registering, draining and health, and the status report.

``TargetRegistry`` is mixed into :class:`DataPlane`, which owns the state it declares.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sluicegate.errors import ConflictError, NotFoundError
from sluicegate.router._flagslot import FlagSlot
from sluicegate.router._table import Target, TargetGroup
from sluicegate.spec.router import parse_target

if TYPE_CHECKING:
    from sluicegate.router._client import ClientProtocol
    from sluicegate.router._listener import ListenerState

__all__ = ["TargetRegistry"]


class TargetRegistry:
    # DataPlane's, set up in its __init__.
    loop: asyncio.AbstractEventLoop
    groups: dict[str, TargetGroup]
    listeners: dict[str, ListenerState]
    clients: set[ClientProtocol]
    flags: FlagSlot
    drain_timers: dict[tuple[str, str], asyncio.TimerHandle]
    on_fail_open: Callable[[str], None]

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
                        t.addr: {
                            "healthy": t.healthy,
                            "draining": t.draining,
                            "in_flight": t.in_flight,
                            "connections": len(t.active),
                            "idle": len(t.idle),
                        }
                        for t in g.targets.values()
                    },
                }
                for g in self.groups.values()
            },
            "listeners": {
                name: {
                    "default": s.route.default.weights(),
                    "rules": [a.weights() for _, a in s.route.rules],
                    **(
                        {"tls": s.socket.tls.status()}
                        if s.socket is not None and s.socket.tls is not None
                        else {}
                    ),
                }
                for name, s in self.listeners.items()
            },
            "clients": len(self.clients),
            "flags": self.flags.status(),
        }
