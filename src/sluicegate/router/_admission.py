"""Whether a new client connection may stay: its listener's ``max_connections`` and the
process's file descriptors. A refused one gets a 503 and is closed at once.

Refusals come in floods, so each kind is logged as one clear line now and then (see
:class:`RateLimitedLog`), not one line per connection.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sluicegate.router._fds import FdBudget
from sluicegate.router._ratelog import RateLimitedLog
from sluicegate.router._responses import error_response

if TYPE_CHECKING:
    from sluicegate.router._listener import ListenerState

__all__ = ["Admission"]

FULL = error_response(503, "the listener is at its max_connections", False, None)
NO_FDS = error_response(503, "the router is out of file descriptors", False, None)


class Admission:
    """Decides for each accepted connection; owned by one data plane."""

    def __init__(self, log: logging.Logger) -> None:
        self.fds = FdBudget()
        self.said = RateLimitedLog(log)

    def admit(self, listener: ListenerState, held: int, now: float) -> bytes | None:
        """None to serve the connection, else the answer to send before closing it.

        ``held``: client and upstream connections the plane has open."""
        cap = listener.spec.max_connections
        if listener.connections >= cap:
            self.said.warn(
                f"full:{listener.name}",
                f"listener {listener.name} has {listener.connections} connections open, its"
                f" max_connections ({cap}): refusing new connections with 503 until some close",
                now,
            )
            return FULL
        if not self.fds.room_for_client(held):
            self.out_of_fds("refusing new connections with 503", held, now)
            return NO_FDS
        return None

    def out_of_fds(self, doing: str, held: int, now: float) -> None:
        fds = self.fds
        self.said.warn(
            "fds",
            f"the router is out of file descriptors (about {fds.base + held} open, limit"
            f" {fds.limit}, RLIMIT_NOFILE): {doing}. This is the router's own limit, not a"
            " target's problem: raise the hard limit (LimitNOFILE=, ulimit -Hn) or lower"
            " max_connections",
            now,
        )

    def tick(self, held: int, now: float) -> None:
        if self.fds.tick(held, now):
            self.out_of_fds("new connections may be dropped", held, now)
