"""A small HTTP/1.1 server for the router's admin API (off the hot path).

It parses with httptools, buffers bodies up to a limit, checks the bearer token in constant
time and hands (method, path, query, body) to an async handler. Keep-alive, no pipelining.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs, unquote

import httptools

__all__ = ["AdminRequest", "AdminResponse", "serve_admin"]

log = logging.getLogger(__name__)
_MAX_BODY = 4 * 1024 * 1024


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


class _AdminProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler, token: str | None, public: frozenset[str]) -> None:
        self.handler = handler
        self.token = token
        self.public = public
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.size = 0
        self.headers: dict[str, str] = {}
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(error(400, "malformed request"), keep_alive=False)

    def on_message_begin(self) -> None:
        self.url, self.body, self.size, self.headers = b"", [], 0, {}

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= _MAX_BODY:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.transport is None:
            return
        self.transport.pause_reading()  # one request at a time
        keep = bool(self.parser.should_keep_alive())
        path, _, qs = self.url.decode("latin-1").partition("?")
        req = AdminRequest(
            self.parser.get_method().decode(),
            unquote(path),
            parse_qs(qs, keep_blank_values=True),
            b"".join(self.body),
            self.headers,
        )
        if self.size > _MAX_BODY:
            self._send(error(413, f"body over {_MAX_BODY} bytes"), keep_alive=False)
            return
        if not self._authorized(req):
            self._send(error(401, "missing or wrong bearer token"), keep_alive=keep)
            return
        asyncio.get_running_loop().create_task(self._run(req, keep))

    def _authorized(self, req: AdminRequest) -> bool:
        if self.token is None or (req.method == "GET" and req.path in self.public):
            return True
        scheme, _, given = req.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        )

    async def _run(self, req: AdminRequest, keep: bool) -> None:
        try:
            resp = await self.handler(req)
        except Exception as exc:  # a bug: answered and logged here, once, with its traceback
            log.exception("admin request %s %s failed", req.method, req.path)
            resp = error(500, f"internal error: {type(exc).__name__}: {exc}")
        self._send(resp, keep)

    def _send(self, resp: AdminResponse, keep_alive: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(resp.render(keep_alive))
        if keep_alive:
            self.transport.resume_reading()
        else:
            self.transport.close()


async def serve_admin(
    handler: Handler,
    address: str,
    port: int,
    token: str | None,
    public: frozenset[str],
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Listen for admin requests on ``sock`` (already listening) or else on address:port;
    ``token`` None disables auth (``--insecure``)."""
    loop = asyncio.get_running_loop()
    if sock is not None:
        return await loop.create_server(lambda: _AdminProtocol(handler, token, public), sock=sock)
    return await loop.create_server(
        lambda: _AdminProtocol(handler, token, public), address, port, reuse_address=True
    )
