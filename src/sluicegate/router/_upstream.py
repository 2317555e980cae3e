"""The upstream side of the proxy: one keep-alive connection to a target (hot path).

A connection serves one exchange at a time and returns to its target's idle pool when the
response is complete and both sides allow reuse. Response bodies stream to the client as they
arrive; chunked or close-delimited bodies are re-chunked for HTTP/1.1 clients.
"""

from __future__ import annotations

import asyncio
import re
from time import perf_counter
from typing import TYPE_CHECKING, cast

import httptools

from sluicegate.router._client import NONE
from sluicegate.router._exchange import IDEMPOTENT, Exchange

if TYPE_CHECKING:
    from sluicegate.router._dataplane import DataPlane
    from sluicegate.router._table import Target

__all__ = ["UpstreamProtocol"]

# Response headers that are hop-by-hop (never forwarded), found in the lower-cased raw head.
# llhttp has already refused bare CR/LF and obs-fold, so "\r\n<name>:" only matches a line
# start.
_HOP = re.compile(
    rb"\r\n(connection|keep-alive|proxy-connection|te|trailer|transfer-encoding|upgrade):"
    rb"[ \t]*([^\r]*)"
)
# An upstream whose response head is larger than this is answered with a 502.
_MAX_HEAD = 64 * 1024


class UpstreamProtocol(asyncio.Protocol):
    __slots__ = (
        "chunked",
        "close_after",
        "ex",
        "got_bytes",
        "has_cl",
        "head_at",
        "idle_since",
        "in_head",
        "out",
        "parser",
        "plane",
        "raw",
        "read_paused",
        "rechunk",
        "reused",
        "target",
        "transport",
        "tunnel",
        "until_close",
        "upgrade_hdr",
    )

    def __init__(self, plane: DataPlane, target: Target) -> None:
        self.plane = plane
        self.target = target
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.ex: Exchange | None = None
        self.tunnel = False
        self.reused = False
        self.idle_since = 0.0
        self.read_paused = False  # by the client's backpressure (see pause_reading)
        # Bytes for the client gathered during one data_received, written with one syscall.
        self.out: list[bytes] = []
        self._reset()

    def _reset(self) -> None:
        # The response head is taken from the raw bytes (not per-header callbacks: one C-level
        # scan instead of a Python call per header); ``raw`` holds them until the head is done.
        self.raw: list[bytes] = []
        self.in_head = True
        self.head_at = 0  # where the current head starts in ``raw`` (after a 1xx)
        self.got_bytes = False
        self.close_after = False
        self.rechunk = False  # re-frame the body as chunked for the client
        self.chunked = False  # the upstream sent a chunked body
        self.until_close = False  # the body ends when the upstream closes
        self.has_cl = False
        self.upgrade_hdr: bytes | None = None

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.target.active.add(self)
        self.plane.upstreams += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.plane.upstreams -= 1
        target = self.target
        target.active.discard(self)
        if self in target.idle:
            target.idle.remove(self)
        ex = self.ex
        if ex is None:
            return
        if ex.response_started and self.until_close and not self.tunnel:
            # A body delimited by close ends here: that is its normal end (no pooling: the
            # transport is gone).
            self.on_message_complete()
            return
        self.ex = None
        target.in_flight -= 1
        client = ex.client
        if self.tunnel:
            if client.transport is not None:
                client.transport.close()
            return
        if ex.response_started:
            if client.transport is not None:
                client.transport.close()  # a truncated response: the client must notice
            return
        # The request was sent, so only the keep-alive race is retried: a pooled connection
        # the upstream closed before reading it, for a request safe to send twice.
        retryable = (
            not self.got_bytes
            and not ex.retried
            and self.reused
            and ex.method in IDEMPOTENT
            and not ex.has_body
        )
        if retryable:
            ex.retried = True
            self.plane.retry(ex, target, stale=self.reused)
        else:
            client.router_error(ex, 502, "upstream closed the connection")

    def data_received(self, data: bytes) -> None:
        if self.tunnel:
            ex = self.ex
            if ex is not None and ex.client.transport is not None:
                ex.client.transport.write(data)
            return
        self.got_bytes = True
        parser = self.parser
        if parser is None or self.ex is None:
            # Bytes on an idle connection: the upstream is confused; never reuse it.
            if self.transport is not None:
                self.transport.close()
            return
        if self.in_head:
            self.raw.append(data)
            if len(self.raw) > 16 and sum(map(len, self.raw)) > _MAX_HEAD:
                self._fail_protocol()
                return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._start_tunnel(data[exc.args[0] :])
        except httptools.HttpParserError:
            self._fail_protocol()
        if self.out:
            self._flush()

    def _flush(self) -> None:
        out = self.out
        self.out = []
        ex = self.ex
        transport = ex.client.transport if ex is not None else None
        if transport is not None:
            transport.write(out[0] if len(out) == 1 else b"".join(out))

    def pause_writing(self) -> None:
        ex = self.ex
        if ex is not None:
            ex.client.pause_by_upstream()

    def resume_writing(self) -> None:
        ex = self.ex
        if ex is not None:
            ex.client.resume_by_upstream()

    def pause_reading(self) -> None:
        """The client cannot take more: stop reading the response (download backpressure)."""
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    # -- driven by the data plane and the client side ------------------------------------------

    def send(self, ex: Exchange) -> None:
        """Start ``ex`` on this connection: write the head and whatever body is buffered."""
        self.ex = ex
        ex.upstream = self
        self._reset()
        if self.parser is None:
            self.parser = httptools.HttpResponseParser(self)
        assert self.transport is not None
        if ex.body:
            # Head and the body bytes that came with it, in one syscall.
            self.transport.write(b"".join((ex.head, *ex.body)))
            ex.body = []
            ex.buffered = 0
        else:
            self.transport.write(ex.head)
        client = ex.client
        if client.read_paused:
            client.flush_body(ex)  # body buffered while connecting, or reading paused

    def abandon(self, ex: Exchange) -> None:
        """The client went away or timed out: this connection's state is unknown; close it."""
        if self.ex is ex:
            self.ex = None
            self.target.in_flight -= 1
            if self.transport is not None:
                self.transport.abort()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_headers_complete(self) -> None:
        ex = self.ex
        parser = self.parser
        assert ex is not None and parser is not None
        status = parser.get_status_code()
        client = ex.client
        transport = client.transport
        raw = self.raw[0] if len(self.raw) == 1 else b"".join(self.raw)
        start = self.head_at
        end = raw.find(b"\r\n\r\n", start) + 2
        line_end = raw.find(b"\r\n", start)
        # "HTTP/1.x " is 9 bytes; keep the status code and reason as the upstream sent them.
        status_line = b"HTTP/1.1 " + raw[start + 9 : line_end] + b"\r\n"
        headers = raw[line_end:end]  # "\r\nName: value ... \r\n"
        low = headers.lower()
        self.has_cl = b"\r\ncontent-length:" in low
        cut = None
        for m in _HOP.finditer(low):
            name, value = m.group(1), m.group(2)
            if name == b"connection":
                if b"close" in value:
                    self.close_after = True
            elif name == b"transfer-encoding":
                self.chunked = True
            elif name == b"upgrade":
                self.upgrade_hdr = headers[m.start(2) : m.end(2)]
            if cut is None:
                cut = []
            cut.append((m.start(), low.find(b"\r\n", m.end())))
        if cut is not None:
            kept, pos = [], 0
            for a, b in cut:
                kept.append(headers[pos:a])
                pos = b
            kept.append(headers[pos:])
            headers = b"".join(kept)
        if status < 200 and status != 101:
            # Interim response (100 Continue, 103 Early Hints): relay it and keep waiting.
            if transport is not None and ex.http11:
                self.out.append(b"".join((status_line, headers[2:], b"\r\n")))
            self.head_at = end + 2
            return
        self.in_head = False
        self.raw = []
        if status == 101 and not ex.upgrade:
            # Switching a connection the client never asked to switch would hand it a raw
            # tunnel to the upstream, past routing and parsing: a protocol error (502).
            raise ValueError("101 Switching Protocols to a request without Upgrade")
        ex.status = status
        ex.response_started = True
        client.dkind = NONE  # the request deadline is met
        tail: list[bytes] = []
        no_body = ex.method == b"HEAD" or status in (204, 304)
        if status == 101:
            tail += (b"Connection: upgrade\r\nUpgrade: ", self.upgrade_hdr or b"", b"\r\n")
        elif no_body:
            pass
        elif self.chunked or not self.has_cl:
            # Chunked upstream, or a body delimited by close: re-chunk for HTTP/1.1 clients;
            # an HTTP/1.0 client gets the raw bytes and a close at the end.
            if not self.chunked:
                self.until_close = self.close_after = True
            if ex.http11:
                self.rechunk = True
                tail.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.rechunk = False
                ex.keep_alive = False
        if status != 101:
            if ex.upgrade:
                # The upstream declined the upgrade. What the client sent after its request
                # was meant for the new protocol, so neither connection can go on as HTTP.
                ex.keep_alive = False
                self.close_after = True
            if not ex.keep_alive or not ex.body_done:
                tail.append(b"Connection: close\r\n")
                ex.keep_alive = False
            elif not ex.http11:
                tail.append(b"Connection: keep-alive\r\n")
        if ex.set_cookie is not None:
            tail.append(ex.set_cookie)
        if transport is not None:
            self.out.append(b"".join((status_line, headers[2:], *tail, b"\r\n")))
        if no_body and status != 101:
            # llhttp cannot know a HEAD response has no body; finish it ourselves and let the
            # next exchange start with a fresh parser.
            self.parser = None
            self._complete(ex)

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        if ex is None:
            return
        if self.rechunk:
            self.out.append(b"%x\r\n%b\r\n" % (len(body), body))
        else:
            self.out.append(body)

    def on_message_complete(self) -> None:
        ex = self.ex
        if ex is None or ex.status in (0, 101):
            return
        if self.rechunk:
            self.out.append(b"0\r\n\r\n")
        self._complete(ex)

    # -- internals -----------------------------------------------------------------------------

    def _complete(self, ex: Exchange) -> None:
        if self.out:
            self._flush()
        self.ex = None
        self.target.in_flight -= 1
        plane = self.plane
        ex.entry.series.record(ex.status, perf_counter() - ex.start)
        transport = self.transport
        if transport is not None:
            if self.close_after or not ex.body_done or self.target.draining:
                transport.close()
            else:
                # The response may end while the client is still slow: a pooled connection
                # must never wait in the pool with its reading paused.
                self.resume_reading()
                self.reused = True
                self.idle_since = plane.now
                self.target.idle.append(self)
        ex.client.exchange_done(ex)

    def _start_tunnel(self, leftover: bytes) -> None:
        ex = self.ex
        if ex is None or self.transport is None:
            return
        self.tunnel = True
        ex.entry.series.record(101, perf_counter() - ex.start)
        if self.out:
            self._flush()
        client = ex.client
        if leftover and client.transport is not None:
            client.transport.write(leftover)
        client.start_tunnel(self.transport, ex)

    def _fail_protocol(self) -> None:
        ex = self.ex
        if ex is not None:
            ex.retried = True  # a malformed response is not retried
        if self.transport is not None:
            self.transport.abort()  # connection_lost answers the client
