"""uvicorn's HTTP/1.1 protocol with a bound on the time a client may take to send a request
head (the API server's ``--header-timeout``).

uvicorn bounds the idle time between requests (keep-alive) but not a head that arrives one
byte at a time, nor a connection that sends nothing at all: each holds a connection and its
buffers for as long as the client likes (slowloris). Here a timer runs whenever a request
head is awaited — from the connection's start and after every response — and the
connection is closed if the head is not complete in time.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HEADER_TIMEOUT", "BoundedH11Protocol", "bounded_h11"]

HEADER_TIMEOUT = 10.0


class BoundedH11Protocol(H11Protocol):
    header_timeout = HEADER_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: the request runs
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._stop_waiting()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def bounded_h11(header_timeout: float) -> type[BoundedH11Protocol]:
    """The protocol class with this head timeout (uvicorn takes a class)."""
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"header_timeout": header_timeout})
