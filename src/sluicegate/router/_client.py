"""The client side of the proxy: read a connection, parse and route its requests (the
callbacks in ``_request``), serve them one at a time, stream bodies both ways (hot path).

One ``ClientProtocol`` per accepted connection. llhttp (via httptools) is strict and already
rejects the request-smuggling vectors (CL with TE, duplicate CL, bad chunk sizes, obs-fold,
bare CR/LF); we add the checks it leaves to the application: the Host header, HTTP/0.9,
CONNECT, size limits (414/431), and transfer codings other than a lone "chunked" (llhttp
only checks those after on_headers_complete, i.e. after we would have dispatched). Any of
these answers a clean 4xx/5xx and closes; the head is never forwarded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, cast

import httptools

from sluicegate.router._exchange import Exchange
from sluicegate.router._head import RejectError
from sluicegate.router._request import HEADER, IDLE, NONE, UPSTREAM, RequestParsing
from sluicegate.router._responses import error_response
from sluicegate.router._target import is_request_line_without_version

if TYPE_CHECKING:
    from sluicegate.router._dataplane import DataPlane
    from sluicegate.router._listener import ListenerState

__all__ = ["NONE", "ClientProtocol"]


class ClientProtocol(RequestParsing, asyncio.Protocol):
    __slots__ = (
        "admitted",
        "ip",
        "listener",
        "parser",
        "pending",
        "plane",
        "read_paused",
        "rejected",
        "transport",
        "trusted",
        "tunnel",
        "upstream_paused",
    )

    def __init__(self, plane: DataPlane, listener: ListenerState) -> None:
        self.plane = plane
        self.listener = listener
        self.admitted = False  # counted in listener.connections (not refused at once)
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.ex: Exchange | None = None  # the exchange whose request is being parsed
        self.active: Exchange | None = None  # the exchange being served
        self.queue: deque[Exchange] | None = None  # pipelined exchanges waiting their turn
        self.pending: bytes | None = None  # read but not parsed while the queue is full
        self.tunnel: asyncio.Transport | None = None  # after a 101: the upstream transport
        # An exchange allowed to upgrade: every byte after its request is for the new protocol.
        self.upgrading: Exchange | None = None
        self.read_paused = False
        self.upstream_paused = False
        self.rejected: bytes | None = None  # an error answer due after the requests before it
        self.ip = b"unknown"
        self.trusted = False
        self.deadline = 0.0
        self.dkind = IDLE
        self.in_head = False  # between on_message_begin and on_headers_complete
        self.url = b""
        self.hparts: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.size = 0
        self.host: bytes | None = None
        self.cookie: bytes | None = None
        self.xff: bytes | None = None
        self.xfp = False
        self.tokens: bytes | None = None
        self.upgrade_hdr: bytes | None = None
        self.te: bytes | None = None
        self.te_chunked = False
        self.hbytes = -1
        self.has_cl = False

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        plane = self.plane
        listener = self.listener
        refusal = plane.admission.admit(listener, len(plane.clients) + plane.upstreams, plane.now)
        if refusal is not None:
            listener.unrouted.record(503, 0.0)
            self.transport.write(refusal)
            self.transport.close()
            return
        self.admitted = True
        listener.connections += 1
        peer = transport.get_extra_info("peername")
        if peer:
            self.ip = str(peer[0]).encode()
            self.trusted = listener.trusts(self.ip)
        plane.clients.add(self)
        self.deadline = plane.now + plane.idle_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        if self.admitted:
            self.admitted = False
            self.listener.connections -= 1
        self.plane.clients.discard(self)
        ex = self.active
        self.active = None
        self.queue = None
        self.pending = None
        if ex is not None and ex.upstream is not None:
            ex.upstream.abandon(ex)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        up = self.upgrading
        if up is not None and up.body_done:
            up.tunnel_data.append(data)  # bytes for the upstream once it agrees to upgrade
            return
        if self.pending is not None:  # reading is paused while these wait; never reached
            self.pending += data
            return
        if self.queue is None and data.find(b"\r\n\r\n") + 4 == len(data):
            # One request head, at the end (nearly every read): nothing to cut.
            try:
                self.parser.feed_data(data)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
                self._parse_failed(exc, data, 0)
        else:
            self._feed(data)
        if self.in_head:
            if self.hbytes < 0:
                self.hbytes = 0  # the read that began the message: at most one read's worth
            else:
                self.hbytes += len(data)
                plane = self.plane
                if self.hbytes > plane.max_header_bytes + plane.max_request_line:
                    self._reject(431, "request headers too large")

    def _feed(self, data: bytes) -> None:
        """Parse ``data``, cut after each request head, so that no more than
        ``max_pipelined`` requests ever wait behind the one being served.

        A single read can carry thousands of pipelined requests; once the queue is full the
        rest of the read waits unparsed in ``pending`` (reading paused) until it empties.
        A cut at a head's end is always a valid place to stop feeding llhttp.
        """
        end = len(data)
        start = 0
        while True:
            queue = self.queue
            if queue and len(queue) >= self.plane.max_pipelined:
                self.pending = data[start:]
                self._pause()
                return
            cut = data.find(b"\r\n\r\n", start)
            stop = end if cut < 0 else cut + 4
            # A request that begins here without its whole head (a rare path): HTTP/0.9?
            if (
                cut < 0
                and not self.in_head
                and self.ex is None
                and is_request_line_without_version(data, start, end)
            ):
                self._reject(400, "HTTP/0.9 requests are not supported")
                return
            try:
                self.parser.feed_data(data if stop - start == end else memoryview(data)[start:stop])
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
                self._parse_failed(exc, data, start)
                return
            if stop == end:
                return
            start = stop

    def _parse_failed(self, exc: Exception, data: bytes, start: int) -> None:
        """llhttp stopped in ``data[start:]``: at the end of an Upgrade request (what follows is
        the new protocol's, or more HTTP if the upgrade was left out), or at an error."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            start += exc.args[0]
            up = self.upgrading
            if up is not None:
                up.tunnel_data.append(data[start:])
            elif start < len(data):  # an Upgrade left out: HTTP/1.1 goes on after it
                self._feed(data[start:])
        elif isinstance(exc, httptools.HttpParserCallbackError):
            ctx = exc.__context__
            if isinstance(ctx, RejectError):
                self._reject(ctx.status, ctx.reason)
            else:
                self.plane.log.exception("request handling failed", exc_info=ctx)
                self._reject(500, "internal error")
        else:
            self._reject(400, str(exc) or "malformed request")

    def _drain(self) -> None:
        """The queue emptied: parse what was held back, then read again if nothing waits."""
        data, self.pending = self.pending, None
        if data is None or self.transport is None:
            return
        self._feed(data)
        active = self.active
        if self.pending is None and not self.queue and (active is None or active.keep_alive):
            self._resume()

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.pause_reading()
            return
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.resume_reading()
            return
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.resume_reading()

    # The upstream pauses our reading while its send buffer is full (an upload). That is a
    # pause of its own, apart from ours (pipelining, Connection: close): both must be lifted
    # to read again, and the exchange ending lifts the upstream's, so a connection never stays
    # paused for the next request.

    def pause_by_upstream(self) -> None:
        if not self.upstream_paused and self.transport is not None:
            self.upstream_paused = True
            if not self.read_paused:
                self.transport.pause_reading()

    def resume_by_upstream(self) -> None:
        if self.upstream_paused:
            self.upstream_paused = False
            if not self.read_paused and self.transport is not None:
                self.transport.resume_reading()

    # -- called by the upstream side -----------------------------------------------------------

    def flush_body(self, ex: Exchange) -> None:
        """The upstream connection for ``ex`` is ready: send what was buffered, read on."""
        if ex.body:
            assert ex.upstream is not None and ex.upstream.transport is not None
            ex.upstream.transport.writelines(ex.body)
            ex.body = []
            ex.buffered = 0
        if self.read_paused and (self.queue is None or not self.queue) and ex.keep_alive:
            self._resume()

    def exchange_done(self, ex: Exchange) -> None:
        """The response to ``ex`` has been written; serve the next pipelined request."""
        if ex is not self.active:
            return
        self.active = None
        if self.upstream_paused:
            self.resume_by_upstream()
        transport = self.transport
        if transport is None:
            return
        if not ex.keep_alive or not ex.body_done:
            transport.close()
            return
        plane = self.plane
        queue = self.queue
        if queue:
            nxt = queue.popleft()
            self.active = nxt
            self.deadline = plane.now + plane.request_timeout
            self.dkind = UPSTREAM
            if nxt.routed is not None and nxt.routed[0] is not self.listener.route:
                _, view, cookie = nxt.routed
                action = self.listener.route.choose(view)
                nxt.entry, nxt.set_cookie = action.decide(cookie, plane.now_sec)
            plane.dispatch(nxt)
        elif self.rejected is not None:
            transport.write(self.rejected)  # a malformed request after the ones just served
            transport.close()
        else:
            if self.in_head:  # the next request's head is arriving
                self.deadline = plane.now + plane.header_timeout
                self.dkind = HEADER
            else:
                self.deadline = plane.now + plane.idle_timeout
                self.dkind = IDLE
            if self.read_paused:
                self._resume()

    def start_tunnel(self, upstream: asyncio.Transport, ex: Exchange) -> None:
        self.tunnel = upstream
        self.dkind = NONE
        if ex.tunnel_data:
            upstream.writelines(ex.tunnel_data)
            ex.tunnel_data = []
        if self.read_paused:
            self._resume()

    def router_error(self, ex: Exchange, status: int, reason: str, blame: bool = True) -> None:
        """Answer ``ex`` with a router-generated error (502/503/504) and count it: against
        its target group, or (``blame`` False: the router's own trouble) as unrouted."""
        if ex is not self.active or self.transport is None:
            return
        latency = perf_counter() - ex.start
        if not blame:
            self.listener.unrouted.record(status, latency)
        elif status in (502, 504):
            ex.entry.series.record_router_error(status, latency)
        else:
            ex.entry.series.record(status, latency)
        keep = ex.keep_alive and ex.body_done and not ex.upgrade
        self.transport.write(error_response(status, reason, keep, ex.set_cookie))
        if not keep:
            ex.keep_alive = False
        self.exchange_done(ex)

    def timed_out(self) -> None:
        """Called by the data plane's sweep when ``deadline`` has passed."""
        transport = self.transport
        if transport is None:
            return
        if self.dkind == HEADER:
            self.listener.unrouted.record(408, 0.0)
            transport.write(error_response(408, "request header timeout", False, None))
            transport.close()
        elif self.dkind == UPSTREAM and self.active is not None:
            ex = self.active
            if ex.upstream is not None:
                ex.upstream.abandon(ex)
            ex.keep_alive = False
            self.router_error(ex, 504, "upstream timed out")
        else:
            transport.close()

    # -- helpers -------------------------------------------------------------------------------

    def _reject(self, status: int, reason: str) -> None:
        self.in_head = False
        self.listener.unrouted.record(status, 0.0)
        transport = self.transport
        if transport is None:
            return
        ex = self.active
        bad = self.ex  # the exchange whose body was being read, if the error is in a body
        self.ex = None
        answer = error_response(status, reason, False, None)
        if ex is not None and bad is not ex:
            # Pipelined: the requests before the bad one are answered first, in order, then
            # the error (answering it now would pair it with the request in progress).
            queue = self.queue
            if queue and queue[-1] is bad:
                queue.pop()
            self.rejected = answer
            self._pause()
            return
        if ex is None or not ex.response_started:
            transport.write(answer)
        # Nothing more goes upstream: a connect still in progress finds the exchange gone,
        # and a connection that carried part of this request is never reused.
        self.active = None
        self.queue = None
        if ex is not None and ex.upstream is not None:
            ex.upstream.abandon(ex)
        transport.close()

    def _pause(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.read_paused and self.transport is not None and self.rejected is None:
            if self.pending is not None:  # bytes already read come first; reading waits
                self.plane.loop.call_soon(self._drain)
                return
            self.read_paused = False
            if not self.upstream_paused:
                self.transport.resume_reading()
