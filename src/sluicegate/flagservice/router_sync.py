"""Keep the router's flag set equal to one environment's current flag-set version.

Flag rules in the router evaluate one compiled flag set. This loop polls the store for the
environment's current version (an apply, a revert, a rollout completing or rolling back all
change it) and asks the router which version it holds; when they differ it pushes the
current one. Asking the router each time also covers a router that was restarted empty.
During a rollout the router keeps the current (fully rolled-out) version until the rollout
completes: it does not split users between the old and the new version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from sluicegate.errors import NotFoundError
from sluicegate.store import Store

__all__ = ["FlagSink", "RouterFlagSync"]

log = logging.getLogger(__name__)


class FlagSink(Protocol):
    """What the sync needs of a router (``RouterClient`` is one)."""

    async def set_flags(self, version: int, document: Mapping[str, Any]) -> list[str]: ...

    async def flags(self) -> dict[str, Any]: ...


class RouterFlagSync:
    def __init__(self, store: Store, env: str, sink: FlagSink, interval: float = 0.5) -> None:
        """``sink`` is the router's handle; it is the caller's to close (the server's one
        router handle follows the router across restarts)."""
        self.store = store
        self.env = env
        self.interval = interval
        self.sink = sink

    async def sync_once(self) -> int | None:
        """Push the environment's current version if the router holds another; returns the
        version the router now holds (None: the environment has no version yet)."""
        try:
            current = self.store.flags.environment(self.env).current_version
        except NotFoundError:
            return None
        if current is None:
            return None
        held = (await self.sink.flags()).get("version")
        if held != current:
            document = self.store.flags.version(self.env, current).document
            await self.sink.set_flags(current, document)
            log.info("router flag set: %s version %d (was %s)", self.env, current, held)
        return current

    async def tick(self) -> None:
        """One round, for the supervisor."""
        await self.sync_once()
