"""Handles on data planes: the same calls whether the plane is in this process or a worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sluicegate.router._dataplane import DataPlane
from sluicegate.spec.router import RouterConfig

__all__ = ["LocalPlane", "PlaneHandle"]


class PlaneHandle(Protocol):
    """What the control side asks of a data plane. Each call returns once it is in force."""

    async def apply_config(self, config: RouterConfig) -> None: ...

    async def prepare_config(self, config: RouterConfig) -> None:
        """Open the sockets ``config`` needs and hold them (SpecError if one cannot open)."""

    async def commit_config(self) -> None:
        """Put the prepared config in force; no-op without one."""

    async def abort_config(self) -> None:
        """Close what the prepared config opened; no-op without one."""

    async def set_weights(
        self, listener: str, weights: Mapping[str, int], rule: int | None
    ) -> dict[str, int]: ...

    async def set_health(self, group: str, target: str, healthy: bool) -> None: ...

    async def set_flags(self, version: int, document: Mapping[str, Any]) -> None: ...

    async def register(self, group: str, target: str) -> None: ...

    async def deregister(self, group: str, target: str, delay: float | None) -> None: ...

    async def metrics(self, window: int) -> dict[str, Any]: ...

    async def check_certificates(self) -> list[str]:
        """Re-read every TLS listener's certificate files now; the refusals (kept serving
        the old ones), as ``field: problem`` strings."""

    async def status(self) -> dict[str, Any]: ...

    async def stop(self) -> None: ...


class LocalPlane:
    """The data plane runs on this event loop (``--workers 1``)."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def apply_config(self, config: RouterConfig) -> None:
        await self.plane.apply_config(config)

    async def prepare_config(self, config: RouterConfig) -> None:
        await self.plane.prepare_config(config)

    async def commit_config(self) -> None:
        await self.plane.commit_config()

    async def abort_config(self) -> None:
        self.plane.abort_config()

    async def set_weights(
        self, listener: str, weights: Mapping[str, int], rule: int | None
    ) -> dict[str, int]:
        return self.plane.set_weights(listener, weights, rule)

    async def set_health(self, group: str, target: str, healthy: bool) -> None:
        self.plane.set_health(group, target, healthy)

    async def set_flags(self, version: int, document: Mapping[str, Any]) -> None:
        self.plane.set_flags(version, document)

    async def register(self, group: str, target: str) -> None:
        self.plane.register(group, target)

    async def deregister(self, group: str, target: str, delay: float | None) -> None:
        self.plane.deregister(group, target, delay)

    async def metrics(self, window: int) -> dict[str, Any]:
        return self.plane.metrics.snapshot(window)

    async def check_certificates(self) -> list[str]:
        return self.plane.check_certificates(force=True)

    async def status(self) -> dict[str, Any]:
        return self.plane.status()

    async def stop(self) -> None:
        await self.plane.stop()
