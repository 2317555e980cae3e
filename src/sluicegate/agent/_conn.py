"""One client connection of the agent's local API, bounded (hot path).

Parsing with httptools, answering synchronously inside the parser callback (so pipelined
requests are answered in order). What a client can make the agent hold is bounded like a
router listener: request line and header bytes (414/431, counted as they arrive), body
bytes (413), time to send a head (408), idle keep-alive time, and answers waiting for a
client that does not read them (parsing stops while ``limits.max_unsent`` bytes wait, and the
rest of what it sent stays unparsed, reading paused, until they drain).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import httptools

from sluicegate.agent._wire import json_response

if TYPE_CHECKING:
    from sluicegate.agent._http import AgentHttp

__all__ = ["AgentLimits", "Connection", "Connections"]

log = logging.getLogger(__name__)
_SWEEP = 0.25  # seconds between deadline checks while connections are open
_IDLE, _HEAD, _BODY, _STREAM = range(4)  # what a connection's deadline is for


@dataclass(frozen=True)
class AgentLimits:
    """Bounds of the local API (see docs/agent.md, Limits)."""

    max_url: int = 8192
    max_header_bytes: int = 32768
    max_body: int = 1024 * 1024
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    # Answers buffered for a client that does not read; above it parsing stops.
    max_unsent: int = 64 * 1024
    # An SDK stream whose client lets this much pile up unsent is cut (it reconnects and
    # gets the current snapshot: nothing is lost but the backlog).
    max_stream_backlog: int = 8 * 1024 * 1024


class _RefuseError(Exception):
    """Raised in a parser callback: answer ``status`` with ``message`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Connections:
    """The open connections of one server, for the deadline sweep (which runs only while
    there are some)."""

    def __init__(self, limits: AgentLimits) -> None:
        self.limits = limits
        self.open: set[Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        # Coarse loop time for deadlines (updated by the sweep): a clock read per request
        # would cost more than a deadline a quarter of a second late.
        self.now = 0.0

    def add(self, conn: Connection) -> None:
        self.open.add(conn)
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self.now = loop.time()
            self._sweeper = loop.call_later(_SWEEP, self._sweep)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = self.now = loop.time()
        for conn in [c for c in self.open if c.kind != _STREAM and c.deadline < now]:
            conn.expired()
        self._sweeper = loop.call_later(_SWEEP, self._sweep) if self.open else None

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


class Connection(asyncio.Protocol):
    __slots__ = (
        "app",
        "body",
        "body_digits",
        "body_size",
        "conns",
        "deadline",
        "head_bytes",
        "head_size",
        "if_none_match",
        "in_head",
        "kind",
        "last_event_id",
        "limits",
        "loop",
        "max_header_bytes",
        "parser",
        "pending",
        "transport",
        "url",
        "write_paused",
    )

    def __init__(self, app: AgentHttp) -> None:
        self.app = app
        self.conns = app.connections
        self.limits = app.connections.limits
        # Header bytes as counted by on_header (names and values, not ": " and CRLF).
        self.max_header_bytes = self.limits.max_header_bytes
        self.body_digits = len(str(self.limits.max_body))
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.kind = _IDLE
        self.deadline = self.loop.time() + self.limits.idle_timeout
        self.write_paused = False  # the client is not reading its answers
        self.pending: bytes | None = None  # read, not parsed while write_paused
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.body: list[bytes] = []
        self.body_size = 0
        self.head_size = 0
        self.head_bytes = -1  # bytes received while a head is incomplete (see _feed)
        self.in_head = False
        self.if_none_match: str | None = None
        self.last_event_id: str | None = None

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self.limits.max_unsent)
        self.app.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.app.connections.open.discard(self)
        if self.kind == _STREAM and self.transport is not None:
            self.app.subscribers.discard(self.transport)
        self.transport = None
        self.pending = None

    def pause_writing(self) -> None:
        if self.kind == _STREAM:
            # The SDK behind this stream stopped reading: cut it rather than buffer every
            # snapshot for it; it reconnects and gets the current one.
            log.warning("cutting a flag stream whose client stopped reading")
            if self.transport is not None:
                self.transport.abort()
            return
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.pending is not None:
            self.loop.call_soon(self._drain)

    def data_received(self, data: bytes) -> None:
        if self.kind == _STREAM:
            return
        if self.pending is not None:  # reading is paused while these wait; never reached
            self.pending += data
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parse ``data``; while answers wait unsent, stop and keep the rest unparsed."""
        if data.count(b"\r\n\r\n") > 1 or self.write_paused:
            if not self._feed_heads(data):
                return
        else:  # at most one request head in it (nearly every read): nothing to cut
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                self._parse_failed(exc)
                return
        if self.in_head:
            # httptools holds a header until its end before calling on_header: count the
            # bytes of an unfinished head as they come, from the read after the one in which
            # it began (that one is at most a read's worth).
            if self.head_bytes < 0:
                self.head_bytes = 0
            else:
                self.head_bytes += len(data)
                if self.head_bytes > self.limits.max_url + self.limits.max_header_bytes:
                    self._refuse(431, "request headers too large")

    def _feed_heads(self, data: bytes) -> bool:
        """Parse ``data`` cut after each request head, each answered before the next is
        parsed; False when it stopped early (answers wait unsent, a stream, an error)."""
        start, end = 0, len(data)
        while start < end:
            if self.write_paused or self.kind == _STREAM:
                if self.kind != _STREAM and self.transport is not None:
                    self.pending = data[start:]
                    self.transport.pause_reading()
                return False
            cut = data.find(b"\r\n\r\n", start)
            stop = end if cut < 0 else cut + 4
            try:
                self.parser.feed_data(memoryview(data)[start:stop])
            except httptools.HttpParserError as exc:
                self._parse_failed(exc)
                return False
            start = stop
        return True

    def _parse_failed(self, exc: Exception) -> None:
        if isinstance(exc, httptools.HttpParserCallbackError):
            ctx = exc.__context__
            if isinstance(ctx, _RefuseError):
                self._refuse(ctx.status, str(ctx))
            else:
                log.error("request parsing failed", exc_info=ctx)
                self._refuse(500, "internal error; see the agent log")
        else:
            self._refuse(400, "malformed request")

    def _drain(self) -> None:
        pending, self.pending = self.pending, None
        if pending is None or self.transport is None:
            return
        self._feed(pending)
        if self.pending is None and self.transport is not None and self.kind != _STREAM:
            self.transport.resume_reading()

    def expired(self) -> None:
        """The sweep found the deadline passed: 408 for a head still arriving, else close."""
        if self.kind in (_HEAD, _BODY):
            self._refuse(408, "request not received in time")
        elif self.transport is not None:
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        if self.transport is not None:
            self.transport.write(json_response(status, {"error": message}, False))
            self.transport.close()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()
        self.in_head = True
        self.kind = _HEAD
        self.deadline = self.conns.now + self.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.max_url:
            raise _RefuseError(414, f"request line over {self.limits.max_url} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self.head_size = self.head_size + len(name) + len(value)
        if size > self.max_header_bytes:
            raise _RefuseError(431, "request headers too large")
        lname = name.lower()
        if lname == b"content-length":
            # Refused before a byte of the body is read. (Fewer digits than the limit has:
            # under it, without parsing; llhttp has already refused a malformed value.)
            if len(value) >= self.body_digits and int(value) > self.limits.max_body:
                raise _RefuseError(413, f"body over {self.limits.max_body} bytes")
        elif lname == b"if-none-match":
            self.if_none_match = value.decode("latin-1")
        elif lname == b"last-event-id":
            self.last_event_id = value.decode("utf-8", "replace")

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.kind = _BODY  # the head's deadline stands for the body (OFREP bodies are small)

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.limits.max_body:
            raise _RefuseError(413, f"body over {self.limits.max_body} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None:
            return
        keep = bool(self.parser.should_keep_alive())
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        try:
            reply = self.app.dispatch(self, keep, body)
        except Exception:
            log.exception("request %r failed", self.url[:200])
            reply = json_response(500, {"errorDetails": "internal error; see the agent log"}, False)
            keep = False
        if reply is None:  # became a stream
            self.kind = _STREAM
            transport.set_write_buffer_limits(high=self.limits.max_stream_backlog)
            return
        self.kind = _IDLE
        self.deadline = self.conns.now + self.limits.idle_timeout
        transport.write(reply)
        if not keep:
            transport.close()
