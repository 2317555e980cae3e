"""What the agent serves and knows about its sync link; touched only on the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluicegate.agent._metrics import AgentMetrics
from sluicegate.clock import Clock
from sluicegate.flags.snapshot import ServingSet
from sluicegate.sdk import SyncStatus

__all__ = ["AgentState", "Health"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    ready: bool
    body: dict[str, Any]


class AgentState:
    """The serving set (swapped whole, never mutated), its source (``cache``/``server``),
    the sync status and the stream subscribers to tell about a change."""

    def __init__(self, env: str, clock: Clock, stale_after: float) -> None:
        self.env = env
        self.clock = clock
        self.stale_after = stale_after
        self.serving: ServingSet | None = None
        self.source = "none"
        self.metrics = AgentMetrics()
        self.sync = SyncStatus()
        self.started = clock.monotonic()
        self.listeners: list[Callable[[ServingSet], None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def apply(self, serving: ServingSet, source: str) -> None:
        """Serve ``serving`` from now on (on the loop thread) and tell the subscribers."""
        previous = self.serving
        if previous is not None and previous.etag == serving.etag:
            self.source = source
            return
        self.serving = serving
        self.source = source
        log.info(
            "serving flag set %s version %s (etag %s, from %s)",
            self.env,
            serving.version,
            serving.etag,
            source,
        )
        for listener in list(self.listeners):
            listener(serving)

    def sync_age(self) -> float | None:
        last = self.sync.last_contact
        return None if last is None else max(0.0, self.clock.monotonic() - last)

    def stale(self) -> bool:
        age = self.sync_age()
        return not self.sync.connected or age is None or age > self.stale_after

    def health(self) -> Health:
        serving = self.serving
        age = self.sync_age()
        body: dict[str, Any] = {
            "status": "starting" if serving is None else "ok",
            "env": self.env,
            "version": None if serving is None else serving.version,
            "etag": None if serving is None else serving.etag,
            "source": self.source,
            "connected": self.sync.connected,
            "sync_mode": self.sync.mode,
            "sync_age_seconds": None if age is None else round(age, 3),
            "stale": self.stale(),
            "last_error": self.sync.last_error,
        }
        return Health(serving is not None, body)

    def render_metrics(self) -> str:
        serving = self.serving
        return self.metrics.render(
            None if serving is None else serving.version,
            self.sync_age(),
            self.sync.connected,
            self.stale(),
        )
