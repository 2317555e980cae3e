#!/usr/bin/env python3
"""Sample web service for Sluicegate's demo, tests and benchmarks.

One asyncio.Protocol HTTP/1.1 server on httptools (uvloop when installed): keep-alive,
pipelining, request and response bodies streamed with backpressure (memory stays bounded
for any body size), a WebSocket echo, and admin switches to simulate a bad release.

    python examples/app.py --port 9001 [--host 127.0.0.1] [--version v1] [--name blue-1]

Prints ``ready <port>`` once listening (``--port 0`` picks a free port). SIGTERM stops
accepting, lets in-flight requests finish and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import random
import signal
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import _ws
import httptools

run: Callable[[Coroutine[Any, Any, None]], None]
try:
    import uvloop

    run = uvloop.run
except ImportError:  # uvloop is optional
    run = asyncio.run

PATTERN = b"0123456789abcdef"
BLOCK = PATTERN * 4096  # 64 KiB, the /download chunk
HIGH_WATER = 1 << 20  # bytes of request body buffered before reading from the socket pauses
ECHO_SLACK = 8 << 20  # /echo lets this much queue up so half-duplex clients don't deadlock


@dataclass
class State:
    version: str
    name: str
    health: int = 200
    fail: int = 0
    # A bad release on purpose: this share (0..100) of ordinary requests answers 500
    # (SHOP_FAIL_PERCENT, e.g. `sluice deploy shop -r v3 --set env.SHOP_FAIL_PERCENT=30`).
    fail_percent: float = 0.0
    requests: int = 0
    in_flight: int = 0
    by_path: collections.Counter[str] = field(default_factory=collections.Counter)
    connections: set[Connection] = field(default_factory=set)


class Stream:
    """Bytes from the client: one request body, or everything after a protocol upgrade."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.eof = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.expect_continue = False
        self.started = False

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.chunks.append(data)
        self.size += len(data)
        self._wake()
        if self.size > HIGH_WATER:
            self.conn.set_reading(False)

    def close(self, error: Exception | None = None) -> None:
        self.eof, self.error = error is None, error
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def read(self) -> bytes:
        """The next chunk, b"" at the end."""
        if self.expect_continue and not self.started:
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.started = True
        while not self.chunks:
            if self.eof:
                return b""
            if self.error is not None:
                raise self.error
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        data = self.chunks.popleft()
        self.size -= len(data)
        if self.size <= HIGH_WATER // 2:
            self.conn.set_reading(True)
        return data

    async def readexactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = await self.read()
            if not chunk:
                raise EOFError
            need = n - len(buf)
            if len(chunk) > need:
                self.chunks.appendleft(chunk[need:])
                self.size += len(chunk) - need
            buf += chunk[:need]
        return bytes(buf)

    async def discard(self) -> int:
        total = 0
        while chunk := await self.read():
            total += len(chunk)
        return total


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: list[tuple[str, str]]
    http_version: str
    keep_alive: bool
    upgrade: bool
    body: Stream
    counted: bool = False
    error: str = ""

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name), "")


class Response:
    def __init__(self, conn: Connection, req: Request) -> None:
        self.conn, self.req = conn, req
        self.started = self.chunked = self.has_body = False

    def start(self, status: int, headers: list[tuple[str, str]], length: int | None) -> None:
        st = self.conn.state
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        self.has_body = status not in (204, 304) and self.req.method != "HEAD"
        self.chunked = length is None and self.has_body
        lines = [f"HTTP/1.1 {status} {reason}", f"X-Version: {st.version}"]
        lines += [f"X-Served-By: {st.name}", *(f"{k}: {v}" for k, v in headers)]
        if length is not None and status not in (204, 304):
            lines.append(f"Content-Length: {length}")
        elif self.chunked:
            lines.append("Transfer-Encoding: chunked")
        if not self.req.keep_alive or self.conn.closing:
            lines.append("Connection: close")
        self.started = True
        self.conn.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def write(self, data: bytes, slack: int = 0) -> None:
        if data and self.has_body:
            framed = b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data
            await self.conn.send(framed, slack)

    async def end(self) -> None:
        if self.chunked:
            await self.conn.send(b"0\r\n\r\n")

    async def send(self, status: int, body: bytes | str, ctype: str = "text/plain") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.start(status, [("Content-Type", ctype)], len(data))
        await self.write(data)

    async def json(self, status: int, obj: Any) -> None:
        await self.send(status, json.dumps(obj) + "\n", "application/json")


class Connection(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: asyncio.Queue[Request | None] = asyncio.Queue()
        self.current: Request | None = None
        self.url, self.headers = b"", list[tuple[str, str]]()
        self.pending = 0  # requests begun and not yet answered
        self.raw: Stream | None = None  # the bytes after an upgrade
        self.closing = self.reading_paused = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.task: asyncio.Task[None] | None = None

    # -- transport side ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop: no subclass
        transport.set_write_buffer_limits(high=256 * 1024)
        self.state.connections.add(self)
        self.task = asyncio.get_running_loop().create_task(self.serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.writable.set()
        for stream in (self.current.body if self.current else None, self.raw):
            if stream is not None and not stream.eof:
                stream.close(ConnectionResetError("client went away"))
        if self.task is not None:
            self.task.cancel()
        while not self.queue.empty():  # pipelined requests that will never be answered
            req = self.queue.get_nowait()
            if req is not None and req.counted:
                self.state.in_flight -= 1

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def set_reading(self, on: bool) -> None:
        t = self.transport
        if t is None or t.is_closing() or on != self.reading_paused:
            return
        self.reading_paused = not on
        t.resume_reading() if on else t.pause_reading()

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("client went away")
        self.transport.write(data)

    async def send(self, data: bytes, slack: int = 0) -> None:
        self.write(data)
        assert self.transport is not None
        if self.transport.get_write_buffer_size() > slack:
            await self.writable.wait()

    def data_received(self, data: bytes) -> None:
        if self.raw is not None:
            self.raw.feed(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.raw = Stream(self)
            self.raw.feed(data[exc.args[0] :])
        except httptools.HttpParserError as exc:
            if self.current is not None:
                self.current.body.close(ConnectionResetError("bad request"))
            self.set_reading(False)
            bad = Request("", "", "", {}, [], "1.1", False, False, Stream(self), error=str(exc))
            self.queue.put_nowait(bad)

    # -- httptools callbacks ----------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url, self.headers = b"", []
        self.pending += 1

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        target = self.url.decode("latin-1")
        parts = urlsplit(target)
        req = Request(
            self.parser.get_method().decode(), target, parts.path or "/",
            dict(parse_qsl(parts.query)), self.headers, self.parser.get_http_version(),
            self.parser.should_keep_alive(), self.parser.should_upgrade(), Stream(self),
        )  # fmt: skip
        req.body.expect_continue = req.header("expect").lower() == "100-continue"
        if not req.path.startswith("/admin/"):
            req.counted = True
            self.state.requests += 1
            self.state.in_flight += 1
            self.state.by_path[req.path] += 1
        self.current = req
        self.queue.put_nowait(req)

    def on_body(self, body: bytes) -> None:
        if self.current is not None:
            self.current.body.feed(body)

    def on_message_complete(self) -> None:
        if self.current is not None:
            self.current.body.close()
        self.current = None

    # -- request loop -----------------------------------------------------------------
    async def serve(self) -> None:
        while (req := await self.queue.get()) is not None:
            resp = Response(self, req)
            try:
                if req.error:
                    await resp.send(400, f"bad request: {req.error}\n")
                else:
                    await handle(self.state, req, resp, self)
                if not resp.started:
                    await resp.send(500, "handler sent no response\n")
                if self.raw is not None or (req.body.expect_continue and not req.body.started):
                    req.keep_alive = False  # unread body the client may never send
                elif req.keep_alive:
                    await req.body.discard()
            except (ConnectionError, EOFError):
                req.keep_alive = False
            except Exception as exc:  # a bug in a handler: answer 500 if still possible
                traceback.print_exc()
                if not resp.started:
                    await resp.send(500, f"internal error: {exc!r}\n")
                req.keep_alive = False
            finally:
                self.pending -= 1
                if req.counted:
                    self.state.in_flight -= 1
            if not req.keep_alive or self.closing:
                break
        if self.transport is not None:
            self.transport.close()

    def shutdown(self) -> None:
        """Finish the request in progress, then close; close idle connections now."""
        self.closing = True
        if self.transport is None:
            return
        if self.raw is not None:  # a WebSocket: say "going away" and close
            self.transport.write(_ws.close_frame(1001, "server shutting down"))
            self.transport.close()
        elif self.pending == 0:
            self.transport.close()


def _int(query: dict[str, str], key: str, default: int | None = None) -> int:
    value = query.get(key)
    if value is None and default is not None:
        return default
    try:
        return int(value or "")
    except ValueError:
        raise ValueError(f"query parameter {key!r} must be an integer") from None


async def handle(st: State, req: Request, resp: Response, conn: Connection) -> None:
    path, method, q = req.path, req.method, req.query
    get = method in ("GET", "HEAD")
    try:
        if path.startswith("/admin/"):
            await admin(st, req, resp)
        elif path == "/healthz" and get:
            await resp.send(st.health, "ok\n" if st.health == 200 else "unhealthy\n")
        elif st.fail or (st.fail_percent and random.random() * 100 < st.fail_percent):
            await req.body.discard()
            await resp.send(st.fail or 500, f"simulated failure ({st.version}, {st.name})\n")
        elif path == "/" and get:
            await resp.send(200, f"hello from {st.version} ({st.name})\n")
        elif path == "/echo" and method in ("POST", "PUT"):
            resp.start(200, [("Content-Type", req.header("content-type") or "text/plain")], None)
            while chunk := await req.body.read():
                await resp.write(chunk, ECHO_SLACK)
            await resp.end()
        elif path == "/upload" and method in ("POST", "PUT"):
            digest, total = hashlib.sha256(), 0
            while chunk := await req.body.read():
                digest.update(chunk)
                total += len(chunk)
            await resp.json(200, {"bytes": total, "sha256": digest.hexdigest()})
        elif path == "/download" and get:
            size = _int(q, "size", 0)
            if size < 0:
                raise ValueError("size must be >= 0")
            chunked = q.get("chunked", "0") not in ("0", "", "false")
            resp.start(200, [("Content-Type", "application/octet-stream")],
                       None if chunked else size)  # fmt: skip
            while size > 0:
                await resp.write(BLOCK[: min(size, len(BLOCK))])
                size -= len(BLOCK)
            await resp.end()
        elif path == "/slow" and get:
            await asyncio.sleep(_int(q, "ms", 1000) / 1000)
            await resp.send(200, f"slow {q.get('ms', '1000')} ms\n")
        elif path == "/headers":
            peer = conn.transport.get_extra_info("peername") if conn.transport else None
            await resp.json(200, {
                "method": method, "path": path, "target": req.target, "query": q,
                "http_version": req.http_version, "headers": [list(h) for h in req.headers],
                "peer": list(peer[:2]) if peer else None,
            })  # fmt: skip
        elif path.startswith("/status/"):
            code = int(path.removeprefix("/status/")) if path[8:].isdigit() else 0
            if not 200 <= code <= 599:
                await resp.send(400, "status must be 200..599\n")
            else:
                await resp.send(code, b"" if code in (204, 304) else f"status {code}\n")
        elif path == "/ws" and get:
            await websocket(req, resp, conn)
        else:
            await resp.send(404, f"no route for {method} {path}\n")
    except ValueError as exc:
        if resp.started:
            raise
        await resp.send(400, f"{exc}\n")


async def admin(st: State, req: Request, resp: Response) -> None:
    route = (req.method, req.path)
    if route == ("GET", "/admin/stats"):
        await resp.json(200, {
            "requests": st.requests, "by_path": dict(st.by_path), "in_flight": st.in_flight,
            "version": st.version, "name": st.name, "health": st.health, "fail": st.fail,
        })  # fmt: skip
    elif route == ("POST", "/admin/reset"):
        st.requests = 0
        st.by_path.clear()
        await resp.json(200, {"reset": True})
    elif route == ("POST", "/admin/health"):
        status = _int(req.query, "status")
        if not 200 <= status <= 599:
            raise ValueError("status must be 200..599")
        st.health = status
        await resp.json(200, {"health": status})
    elif route == ("POST", "/admin/fail"):
        status = _int(req.query, "status")
        if status and not 200 <= status <= 599:
            raise ValueError("status must be 0 (off) or 200..599")
        st.fail = status
        await resp.json(200, {"fail": status})
    else:
        await resp.send(404, f"no admin route for {req.method} {req.path}\n")


async def websocket(req: Request, resp: Response, conn: Connection) -> None:
    key = req.header("sec-websocket-key")
    if not req.upgrade or req.header("upgrade").lower() != "websocket":
        resp.start(426, [("Upgrade", "websocket"), ("Content-Type", "text/plain")], 22)
        await resp.write(b"websocket upgrade only")
        req.keep_alive = False
        return
    if not key or req.header("sec-websocket-version") != "13":
        await resp.send(400, "need Sec-WebSocket-Key and Sec-WebSocket-Version: 13\n")
        req.keep_alive = False
        return
    resp.started = True
    conn.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Accept: %b\r\n\r\n"
               % _ws.accept_key(key).encode())  # fmt: skip
    raw = conn.raw or Stream(conn)
    conn.raw = raw
    await _ws.echo(raw.readexactly, conn.send)
    req.keep_alive = False


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    state = State(
        args.version,
        args.name or f"{args.version}-{os.getpid()}",
        fail_percent=float(os.environ.get("SHOP_FAIL_PERCENT", "0") or 0),
    )
    server = await loop.create_server(lambda: Connection(state), args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    if not args.name:
        state.name = f"{args.version}-{port}"
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {port}", flush=True)
    await stop.wait()
    server.close()
    for conn in list(state.connections):
        conn.shutdown()
    for _ in range(300):  # in-flight requests get up to 30 s to finish
        if not state.connections:
            break
        await asyncio.sleep(0.1)
    for conn in list(state.connections):
        if conn.transport is not None:
            conn.transport.abort()


def cli() -> None:
    parser = argparse.ArgumentParser(description="Sluicegate sample web service")
    parser.add_argument("--port", type=int, default=9001, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--version", default=os.environ.get("SHOP_VERSION", "v1"))
    parser.add_argument("--name", default=None, help="defaults to <version>-<port>")
    args = parser.parse_args()
    try:
        run(main(args))
    except OSError as exc:
        raise SystemExit(f"app: cannot listen on {args.host}:{args.port}: {exc.strerror}") from None


if __name__ == "__main__":
    cli()
