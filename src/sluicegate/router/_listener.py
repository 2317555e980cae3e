"""A listener of the data plane: its spec, routing and what each request adds from them, and
the listening socket (with its TLS terminator) its new connections arrive on."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING

from sluicegate.router._client import ClientProtocol
from sluicegate.router._metrics import Series
from sluicegate.router._table import ListenerRoute
from sluicegate.router._tls import TlsTerminator
from sluicegate.spec.router import ListenerSpec

if TYPE_CHECKING:
    from sluicegate.router._dataplane import DataPlane

__all__ = ["ListenerState", "Socket"]


class ListenerState:
    """A listening socket and the routing snapshot its connections read per request."""

    __slots__ = (
        "connections",
        "forwarded",
        "name",
        "redirect",
        "route",
        "socket",
        "spec",
        "trusted",
        "unrouted",
    )

    def __init__(self, spec: ListenerSpec, route: ListenerRoute, unrouted: Series) -> None:
        self.name = spec.name
        # Requests rejected before routing (400, 408, 414, 431), redirected, or refused by
        # the router's own limits (503 for max_connections or file descriptors).
        self.unrouted = unrouted
        self.socket: Socket | None = None
        self.connections = 0  # client connections accepted for this listener and still open
        self.configure(spec, route)

    def configure(self, spec: ListenerSpec, route: ListenerRoute) -> None:
        """Take ``spec`` and its routing; precompute what each request adds from them."""
        self.spec = spec
        self.route = route
        proto = b"https" if spec.tls is not None else b"http"
        # Appended to every forwarded head (after X-Forwarded-For).
        self.forwarded = b"X-Forwarded-Proto: %b\r\nX-Forwarded-Port: %d\r\n" % (proto, spec.port)
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in spec.trusted_proxies)
        r = spec.redirect
        # (status line, scheme://, :port or b"" when the scheme's default port)
        self.redirect: tuple[bytes, bytes, bytes] | None = None
        if r is not None:
            default_port = 443 if r.scheme == "https" else 80
            self.redirect = (
                b"HTTP/1.1 %d %b\r\n" % (r.status, _REASONS[r.status]),
                r.scheme.encode() + b"://",
                b"" if r.to_port == default_port else b":%d" % r.to_port,
            )

    def trusts(self, ip: bytes) -> bool:
        """Whether a client at ``ip`` is a trusted proxy (its X-Forwarded-* are kept)."""
        if not self.trusted:
            return False
        try:
            addr = ipaddress.ip_address(ip.decode())
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)


_REASONS = {
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
}


class Socket:
    """One listening socket and the listener its new connections belong to. A reload can
    hand the socket to another listener (a rename, two listeners swapping ports)."""

    __slots__ = ("plane", "server", "state", "tls")

    def __init__(self, plane: DataPlane, tls: bool) -> None:
        self.plane = plane
        self.state: ListenerState | None = None
        self.server: asyncio.Server | None = None
        self.tls = TlsTerminator() if tls else None

    def __call__(self) -> ClientProtocol:  # the server's protocol factory
        assert self.state is not None  # serving starts only once a listener owns the socket
        return ClientProtocol(self.plane, self.state)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
