"""One request/response exchange as it moves from client to upstream and back."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluicegate.router._client import ClientProtocol
    from sluicegate.router._match import RequestView
    from sluicegate.router._table import Entry, ListenerRoute, Target
    from sluicegate.router._upstream import UpstreamProtocol

__all__ = ["IDEMPOTENT", "Exchange"]

IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))


class Exchange:
    __slots__ = (
        "body",
        "body_done",
        "buffered",
        "chunked",
        "client",
        "entry",
        "has_body",
        "head",
        "http11",
        "keep_alive",
        "method",
        "response_started",
        "retried",
        "routed",
        "set_cookie",
        "start",
        "status",
        "target",
        "tunnel_data",
        "upgrade",
        "upstream",
    )

    def __init__(
        self,
        client: ClientProtocol,
        method: bytes,
        head: bytes,
        entry: Entry,
        set_cookie: bytes | None,
        keep_alive: bool,
        http11: bool,
        chunked: bool,
        has_body: bool,
        upgrade: bool,
        start: float,
    ) -> None:
        self.client = client
        self.method = method
        self.head = head
        self.entry = entry
        self.set_cookie = set_cookie
        self.keep_alive = keep_alive
        self.http11 = http11
        self.chunked = chunked  # request body is chunked: re-frame it upstream
        self.has_body = has_body
        self.upgrade = upgrade
        # perf_counter() at the request head: uvloop's loop.time() has millisecond
        # resolution, far too coarse for a latency histogram of sub-millisecond requests.
        self.start = start
        self.body: list[bytes] = []  # framed body bytes not yet sent upstream
        self.buffered = 0
        self.body_done = not has_body
        self.target: Target | None = None
        self.upstream: UpstreamProtocol | None = None
        self.response_started = False
        self.retried = False
        self.status = 0
        self.tunnel_data: list[bytes] = []  # client bytes after an Upgrade request
        # For a pipelined exchange: (route, rule view, cookie header) it was routed with.
        self.routed: tuple[ListenerRoute, RequestView | None, bytes | None] | None = None
