"""A small HTTP/1.1 server for the router's admin API (off the hot path, but on its loop).

It parses with httptools, checks the bearer token in constant time *before* reading a body,
buffers bodies up to a limit and hands (method, path, query, body) to an async handler, one
request at a time per connection. Every connection is bounded like a data-plane one: URL and
header bytes (414/431, counted as they arrive), body bytes (413), time to send the head and
the body (408), idle keep-alive time, and connections open at once (503): a flood on the
admin port costs the process a few KiB per connection and never a long callback.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs, unquote

import httptools

__all__ = ["AdminLimits", "AdminRequest", "AdminResponse", "error", "serve_admin"]

log = logging.getLogger(__name__)
_SWEEP = 0.25  # seconds between deadline checks while connections are open
_HEAD, _BODY, _BUSY, _IDLE = range(4)  # what a connection's deadline is for


@dataclass(frozen=True)
class AdminLimits:
    """Bounds of the admin server (see docs/router.md, Limits)."""

    max_url: int = 8192
    max_header_bytes: int = 32768
    max_body: int = 4 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 60.0
    max_connections: int = 64


@dataclass
class AdminRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class AdminResponse:
    status: int
    body: Any = None  # JSON-serialisable, or str for text
    content_type: str = "application/json"

    def render(self, keep_alive: bool) -> bytes:
        if isinstance(self.body, str):
            payload = self.body.encode()
        else:
            payload = json.dumps(self.body, indent=None, separators=(",", ":")).encode() + b"\n"
        phrase = HTTPStatus(self.status).phrase
        head = (
            f"HTTP/1.1 {self.status} {phrase}\r\nContent-Type: {self.content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nCache-Control: no-store\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        return head.encode() + payload


Handler = Callable[[AdminRequest], Awaitable[AdminResponse]]


def error(status: int, message: str, **extra: Any) -> AdminResponse:
    return AdminResponse(status, {"error": message, **extra})


class _RefuseError(Exception):
    """Raised in a parser callback: answer ``response`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = error(status, message)


class _Server:
    """What the connections of one admin server share: handler, token, limits, and the
    open connections (for the cap and the deadline sweep)."""

    def __init__(
        self, handler: Handler, token: str | None, public: frozenset[str], limits: AdminLimits
    ) -> None:
        self.handler = handler
        self.token = token
        self.public = public
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.conns: set[_AdminProtocol] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> _AdminProtocol:
        return _AdminProtocol(self)

    def opened(self, conn: _AdminProtocol) -> bool:
        if len(self.conns) >= self.limits.max_connections:
            return False
        self.conns.add(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(_SWEEP, self._sweep)
        return True

    def _sweep(self) -> None:
        """Close connections past their deadline; runs only while connections are open."""
        now = self.loop.time()
        for conn in [c for c in self.conns if c.kind != _BUSY and c.deadline < now]:
            conn.expired()
        self._sweeper = self.loop.call_later(_SWEEP, self._sweep) if self.conns else None


class _AdminProtocol(asyncio.Protocol):
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.limits = server.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.kind = _IDLE
        self.deadline = server.loop.time() + server.limits.idle_timeout
        self.busy = False  # a request is being handled: nothing more is parsed
        self.pending: bytes | None = None  # read while busy, parsed after the answer
        self.waiting: deque[tuple[AdminRequest, bool]] = deque()  # parsed while busy
        self._reset()

    def _reset(self) -> None:
        self.url: list[bytes] = []
        self.url_size = 0
        self.head_size = 0  # header bytes seen (also counted as they arrive, below)
        self.received = 0  # bytes received since the head began
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.body_size = 0
        self.in_head = False

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if not self.server.opened(self):
            self.transport.write(error(503, "too many admin connections").render(False))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.conns.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.pending is not None:  # reading is paused while busy; never reached
            self.pending += data
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parse up to the end of each request head at a time, so that a request completing
        stops parsing: what follows waits in ``pending`` until the answer is out."""
        start, end = 0, len(data)
        head_cap = self.limits.max_url + self.limits.max_header_bytes
        while start < end:
            if self.busy:
                self.pending = data[start:]
                return
            if self.kind == _BODY:
                cut = data.find(b"\r\n\r\n", start)
                stop = end if cut < 0 else cut + 4
            else:
                # A head is at most head_cap bytes: neither search nor parse further at once
                # (a flood of one endless line then costs a few KiB of parsing per read).
                cut = data.find(b"\r\n\r\n", start, start + head_cap + 4)
                stop = min(end, start + head_cap + 1) if cut < 0 else cut + 4
            try:
                self.parser.feed_data(memoryview(data)[start:stop])
            except httptools.HttpParserCallbackError as exc:
                ctx = exc.__context__
                if isinstance(ctx, _RefuseError):
                    self._send(ctx.response, keep_alive=False)
                else:
                    log.error("admin request parsing failed", exc_info=ctx)
                    self._send(error(500, "internal error"), keep_alive=False)
                return
            except httptools.HttpParserError:
                self._send(error(400, "malformed request"), keep_alive=False)
                return
            if self.in_head:
                # httptools holds a header until its end before calling on_header: count the
                # bytes of an unfinished head here, or an endless header would be buffered.
                self.received += stop - start
                if self.received > head_cap:
                    self._send(error(431, "request headers too large"), keep_alive=False)
                    return
            start = stop

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()
        self.in_head = True
        if not self.busy:
            self.kind = _HEAD
            self.deadline = self.server.loop.time() + self.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self.url_size += len(url)
        if self.url_size > self.limits.max_url:
            raise _RefuseError(414, f"request line over {self.limits.max_url} bytes")
        self.url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > self.limits.max_header_bytes:
            raise _RefuseError(431, "request headers too large")
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.in_head = False
        method = self.parser.get_method().decode()
        path = unquote(b"".join(self.url).decode("latin-1").partition("?")[0])
        # The token is checked before the body is read: a caller without it never gets the
        # server to take up to max_body bytes, let alone parse them.
        if not self._authorized(method, path):
            raise _RefuseError(401, "missing or wrong bearer token")
        length = self.headers.get("content-length", "0")
        if length.isdigit() and int(length) > self.limits.max_body:
            raise _RefuseError(413, f"body over {self.limits.max_body} bytes")
        if not self.busy:
            self.kind = _BODY
            self.deadline = self.server.loop.time() + self.limits.body_timeout

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.limits.max_body:
            raise _RefuseError(413, f"body over {self.limits.max_body} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.transport is None:
            return
        keep = bool(self.parser.should_keep_alive())
        url = b"".join(self.url).decode("latin-1")
        path, _, qs = url.partition("?")
        req = AdminRequest(
            self.parser.get_method().decode(),
            unquote(path),
            parse_qs(qs, keep_blank_values=True),
            b"".join(self.body),
            self.headers,
        )
        if self.busy:  # the end of a body and the next head came in one piece
            self.waiting.append((req, keep))
            return
        self._start(req, keep)

    # -- requests ------------------------------------------------------------------------------

    def _authorized(self, method: str, path: str) -> bool:
        token = self.server.token
        if token is None or (method == "GET" and path in self.server.public):
            return True
        scheme, _, given = self.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    def _start(self, req: AdminRequest, keep: bool) -> None:
        assert self.transport is not None
        self.busy = True
        self.kind = _BUSY  # the handler's time is the handler's (a reload may take a while)
        self.transport.pause_reading()
        self.server.loop.create_task(self._run(req, keep))

    async def _run(self, req: AdminRequest, keep: bool) -> None:
        try:
            resp = await self.server.handler(req)
        except Exception as exc:  # a bug: answered and logged here, once, with its traceback
            log.exception("admin request %s %s failed", req.method, req.path)
            resp = error(500, f"internal error: {type(exc).__name__}: {exc}")
        self.busy = False
        self._send(resp, keep)
        if not keep or self.transport is None:
            return
        if self.waiting:
            self._start(*self.waiting.popleft())
            return
        self.kind = _IDLE
        self.deadline = self.server.loop.time() + self.limits.idle_timeout
        pending, self.pending = self.pending, None
        if pending is not None:
            self._feed(pending)
        if not self.busy and self.transport is not None:
            self.transport.resume_reading()

    def _send(self, resp: AdminResponse, keep_alive: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(resp.render(keep_alive))
        if not keep_alive:
            self.transport.close()

    def expired(self) -> None:
        """The sweep found the deadline passed: 408 for a head or body still arriving."""
        if self.kind == _IDLE:
            if self.transport is not None:
                self.transport.close()
            return
        what = "request head" if self.kind == _HEAD else "request body"
        self._send(error(408, f"{what} not received in time"), keep_alive=False)


async def serve_admin(
    handler: Handler,
    address: str,
    port: int,
    token: str | None,
    public: frozenset[str],
    sock: socket.socket | None = None,
    limits: AdminLimits | None = None,
) -> asyncio.Server:
    """Listen for admin requests on ``sock`` (already listening) or else on address:port;
    ``token`` None disables auth (``--insecure``)."""
    loop = asyncio.get_running_loop()
    server = _Server(handler, token, public, limits or AdminLimits())
    if sock is not None:
        return await loop.create_server(server, sock=sock)
    return await loop.create_server(server, address, port, reuse_address=True)
