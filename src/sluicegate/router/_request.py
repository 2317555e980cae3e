"""The httptools side of a client connection (hot path): a request head parsed, checked,
routed and made into an :class:`Exchange`, and its body passed on.

``RequestParsing`` holds the parser callbacks of :class:`ClientProtocol`, which owns the
state (its ``__slots__``) and the connection; this class only declares what it uses.
"""

from __future__ import annotations

import asyncio
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, cast

import httptools

from sluicegate.router._exchange import Exchange
from sluicegate.router._head import RejectError, check_transfer_encoding, request_view, strip_named
from sluicegate.router._listen import host_port
from sluicegate.router._target import VALID_HOSTS, allowed_upgrade, resolve_target

if TYPE_CHECKING:
    from sluicegate.router._client import ClientProtocol
    from sluicegate.router._dataplane import DataPlane
    from sluicegate.router._listener import ListenerState

__all__ = ["HEADER", "IDLE", "NONE", "UPSTREAM", "RequestParsing"]

# Header codes: what on_header does with a request header beyond copying it upstream.
_COPY, _DROP, _HOST, _COOKIE, _XFF, _CONNECTION, _UPGRADE, _TE, _CL, _XFP = range(10)
_SPECIAL = {
    b"content-length": _CL,
    b"host": _HOST,
    b"cookie": _COOKIE,
    b"x-forwarded-for": _XFF,
    # Kept from a trusted proxy (with its -Port), else replaced by the router's own.
    b"x-forwarded-proto": _XFP,
    b"x-forwarded-port": _XFP,
    b"x-forwarded-host": _DROP,
    b"connection": _CONNECTION,
    b"upgrade": _UPGRADE,
    b"transfer-encoding": _TE,
    b"keep-alive": _DROP,
    b"proxy-connection": _DROP,
    b"te": _DROP,
    b"trailer": _DROP,
}

# Deadline kinds for the data plane's timeout sweep.
IDLE, HEADER, UPSTREAM, NONE = 0, 1, 2, 3
_PAUSE_BODY_BUFFER = 256 * 1024


class RequestParsing:
    # The state of the request being parsed and of the exchanges it makes.
    __slots__ = (
        "active",
        "cookie",
        "deadline",
        "dkind",
        "ex",
        "has_cl",
        "hbytes",
        "headers",
        "host",
        "hparts",
        "in_head",
        "queue",
        "size",
        "te",
        "te_chunked",
        "tokens",
        "upgrade_hdr",
        "upgrading",
        "url",
        "xff",
        "xfp",
    )

    # ClientProtocol's own, only read here.
    plane: DataPlane
    listener: ListenerState
    transport: asyncio.Transport | None
    parser: httptools.HttpRequestParser
    ip: bytes
    trusted: bool  # the client is a trusted proxy: its X-Forwarded-* are kept
    # The slots above (set up by ClientProtocol.__init__).
    ex: Exchange | None
    active: Exchange | None
    queue: deque[Exchange] | None
    upgrading: Exchange | None
    deadline: float
    dkind: int
    in_head: bool
    url: bytes
    hparts: list[bytes]
    headers: list[tuple[bytes, bytes]] | None
    size: int
    host: bytes | None
    cookie: bytes | None
    xff: bytes | None
    xfp: bool  # a trusted proxy sent X-Forwarded-Proto or -Port
    tokens: bytes | None
    upgrade_hdr: bytes | None
    te: bytes | None
    te_chunked: bool
    hbytes: int
    has_cl: bool

    def _pause(self) -> None:
        raise NotImplementedError  # ClientProtocol's: stop reading this connection

    def _reset_head(self) -> None:
        self.url = b""
        self.hparts = []
        self.headers = None
        self.size = 0
        self.host = None
        self.cookie = None
        self.xff = None
        self.xfp = False
        self.tokens = None
        self.upgrade_hdr = None
        self.te = None
        self.te_chunked = False
        # Head bytes received after the read in which the message began. httptools buffers
        # a header until its end before calling on_header, so the limit is enforced here.
        self.hbytes = -1
        self.has_cl = False

    def on_message_begin(self) -> None:
        self._reset_head()
        self.in_head = True
        if self.listener.route.rules:
            self.headers = []
        if self.active is None:  # else the request in progress keeps its own deadline
            self.deadline = self.plane.now + self.plane.header_timeout
            self.dkind = HEADER

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.plane.max_request_line:
            raise RejectError(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.size += len(name) + len(value) + 4
        if self.size > self.plane.max_header_bytes:
            raise RejectError(431, "request headers too large")
        lname = name.lower()
        code = _SPECIAL.get(lname, _COPY)
        if self.headers is not None:
            self.headers.append((lname, value))
        if code == _COPY:
            self.hparts += (name, b": ", value, b"\r\n")
        elif code == _HOST:
            if self.host is not None:
                raise RejectError(400, "more than one Host header")
            self.host = value
            self.hparts += (name, b": ", value, b"\r\n")
        elif code == _COOKIE:
            self.cookie = value if self.cookie is None else self.cookie + b"; " + value
            self.hparts += (name, b": ", value, b"\r\n")
        elif code == _XFF:
            self.xff = value if self.xff is None else self.xff + b", " + value
        elif code == _CONNECTION:
            self.tokens = value if self.tokens is None else self.tokens + b"," + value
        elif code == _UPGRADE:
            self.upgrade_hdr = value
        elif code == _TE:
            self.te = value if self.te is None else self.te + b"," + value
        elif code == _CL:
            self.hparts += (name, b": ", value, b"\r\n")
            self.has_cl = value.strip() not in (b"0", b"")
        elif code == _XFP and self.trusted:
            self.xfp = True
            self.hparts += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        version = parser.get_http_version()
        http11 = version == "1.1"
        if not http11 and version != "1.0":
            raise RejectError(505 if version > "1.1" else 400, "unsupported HTTP version")
        if http11 and self.host is None:
            raise RejectError(400, "missing Host header")
        if self.te is not None:
            check_transfer_encoding(self.te, http11)
            self.te_chunked = True
        method: bytes = parser.get_method()
        if method == b"CONNECT":
            raise RejectError(405, "CONNECT is not supported")
        url = self.url
        if (
            url[0] != 0x2F  # not "/": absolute form (or "*"); llhttp never gives an empty one
            or self.host not in VALID_HOSTS  # also None: no Host
            or b"%" in url
            or b"/." in url
        ):  # else (nearly always) there is nothing to check or normalize
            self.url, self.host, self.hparts, self.headers = resolve_target(
                url, self.host, self.hparts, self.headers, self._local_host
            )
        upgrade = False
        if self.upgrade_hdr is not None and parser.should_upgrade():
            # Only protocols the listener allows; any other Upgrade (h2c) is left out and
            # the request goes upstream as plain HTTP/1.1, as a server ignoring it would.
            allowed = frozenset(p.lower().encode() for p in self.listener.spec.upgrades)
            self.upgrade_hdr = allowed_upgrade(self.upgrade_hdr, allowed)
            upgrade = self.upgrade_hdr is not None
        has_body = self.te_chunked or self.has_cl
        plane = self.plane
        listener = self.listener
        if listener.redirect is not None:
            self._redirect(listener.redirect, has_body)
            return
        route = listener.route
        view = None
        if self.headers is not None and route.rules:
            view = request_view(self.url, self.host, self.headers)
        action = route.choose(view)
        entry, set_cookie = action.decide(self.cookie, plane.now_sec)
        hparts = self.hparts
        if self.tokens is not None:
            hparts = strip_named(hparts, self.tokens)
        # A client's own X-Forwarded-For is believed only from a trusted proxy.
        xff = self.xff + b", " + self.ip if self.trusted and self.xff is not None else self.ip
        tail = [b"X-Forwarded-For: ", xff, b"\r\n"]
        if not self.xfp:
            tail.append(listener.forwarded)
        tail += (b"X-Forwarded-Host: ", self.host, b"\r\n")
        if self.te_chunked:
            tail.append(b"Transfer-Encoding: chunked\r\n")
        if upgrade:
            tail += (b"Connection: upgrade\r\nUpgrade: ", self.upgrade_hdr or b"", b"\r\n")
        tail.append(b"\r\n")
        head = b"".join((method, b" ", self.url, b" HTTP/1.1\r\n", *hparts, *tail))
        ex = Exchange(
            cast("ClientProtocol", self),  # only ever mixed into it
            method,
            head,
            entry,
            set_cookie,
            bool(parser.should_keep_alive()),
            http11,
            self.te_chunked,
            has_body,
            upgrade,
            perf_counter(),
        )
        self.ex = ex
        if upgrade:
            self.upgrading = ex
        if self.active is None:
            self.active = ex
            self.deadline = plane.now + plane.request_timeout
            self.dkind = UPSTREAM
            plane.dispatch(ex)
        else:
            if self.queue is None:
                self.queue = deque()
            # Routed now, served later: remember what the decision rested on, so it can be
            # made again if the routing changes meanwhile (a rollback must not wait).
            ex.routed = (route, view, self.cookie)
            self.queue.append(ex)
            self._pause()

    def _redirect(self, redirect: tuple[bytes, bytes, bytes], has_body: bool) -> None:
        """Answer a redirect listener's request: same host (without its port), path and
        query on the target port and scheme. A request with a body closes the connection
        (its body is not read)."""
        transport = self.transport
        if transport is None:
            return
        status_line, scheme, port = redirect
        host = self.host or b""
        bracket = host.find(b"]")  # [v6]:port
        host = host[: bracket + 1] if bracket > 0 else host.partition(b":")[0]
        keep = bool(self.parser.should_keep_alive()) and not has_body
        transport.write(
            b"".join(
                (
                    status_line,
                    b"Location: ",
                    scheme,
                    host,
                    port,
                    self.url if self.url[:1] == b"/" else b"/",  # OPTIONS * -> /
                    b"\r\nContent-Length: 0\r\n",
                    b"" if keep else b"Connection: close\r\n",
                    b"\r\n",
                )
            )
        )
        self.listener.unrouted.record(int(status_line[9:12]), 0.0)
        if not keep:
            self._pause()
            transport.close()
            return
        self.deadline = self.plane.now + self.plane.idle_timeout
        self.dkind = IDLE

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        if ex is None:
            return
        data = b"%x\r\n%b\r\n" % (len(body), body) if ex.chunked else body
        up = ex.upstream
        if up is not None and up.transport is not None and ex is self.active:
            up.transport.write(data)
            # timeouts.request counts from the end of the request: a long upload that keeps
            # moving slides the deadline instead of getting a 504 half-way.
            self.deadline = self.plane.now + self.plane.request_timeout
        else:
            ex.body.append(data)
            ex.buffered += len(data)
            if ex.buffered > _PAUSE_BODY_BUFFER:
                self._pause()

    def on_message_complete(self) -> None:
        ex = self.ex
        if ex is None:
            return
        self.ex = None
        if ex.chunked:
            up = ex.upstream
            if up is not None and up.transport is not None and ex is self.active:
                up.transport.write(b"0\r\n\r\n")
            else:
                ex.body.append(b"0\r\n\r\n")
        ex.body_done = True
        if not ex.keep_alive:
            self._pause()  # nothing after a Connection: close request is read

    def _local_host(self) -> bytes:
        """``address:port`` the client connected to: the Host of a request without one."""
        assert self.transport is not None
        local = self.transport.get_extra_info("sockname")
        return host_port(str(local[0]), int(local[1])).encode()
