"""Pipelined requests are parsed only ``limits.max_pipelined`` ahead of the one being served.

A client may write thousands of requests in one go and never read an answer. The router
reads a socket buffer at a time; without a cap it parsed every request in that buffer into
a queued exchange (a head, routing state, buffers), so 60 such clients grew it by hundreds
of MiB. With the cap, what it holds per connection is the cap's worth of exchanges and the
unparsed rest of one read.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time

from tests._support import router_config, rss_kib
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory

CONNECTIONS = 60
# Each client: a slow request first (so every other one queues behind it), then this many
# pipelined GETs (about 570 KiB, several socket reads' worth).
PIPELINED = 20_000
RSS_BOUND_KIB = 32 * 1024  # the bound; before the cap this setup grew ~170 MiB
SLOW = b"GET /slow?ms=3000 HTTP/1.1\r\nHost: shop.example\r\n\r\n"
GET = b"GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n"


def test_sixty_clients_pipelining_without_reading_grow_the_router_by_under_32_mib(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    app = app_factory()
    router = router_factory(router_config({"app": [app]}, health_path="/healthz"))
    port = router.listener_port()
    assert len(get_many(port, 100)) == 100  # warm: pools, code paths, allocator arenas
    baseline = peak = rss_kib(router.pid)
    payload = SLOW + GET * PIPELINED
    clients: list[tuple[socket.socket, memoryview]] = []
    try:
        for _ in range(CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.setblocking(False)
            clients.append((sock, memoryview(payload)))
        # Write everything the router (and the kernel) will take; read nothing.
        stalled_since = time.monotonic()
        while time.monotonic() - stalled_since < 2.0:
            progressed = False
            for i, (sock, rest) in enumerate(clients):
                if rest:
                    with contextlib.suppress(BlockingIOError):
                        sent = sock.send(rest)
                        clients[i] = (sock, rest[sent:])
                        progressed = progressed or sent > 0
            if progressed:
                stalled_since = time.monotonic()
            peak = max(peak, rss_kib(router.pid))
            time.sleep(0.02)
        for _ in range(20):  # the router works through what it already read
            peak = max(peak, rss_kib(router.pid))
            time.sleep(0.05)
        taken = sum(len(payload) - len(rest) for _, rest in clients)
        # The router really was offered most of it (not a test that sent nothing).
        assert taken > CONNECTIONS * len(payload) // 4, taken
    finally:
        for sock, _ in clients:
            sock.close()
    grown = peak - baseline
    assert grown < RSS_BOUND_KIB, f"router grew {grown // 1024} MiB"
    assert router.proc.poll() is None


def test_pipelined_requests_beyond_the_cap_are_all_answered_in_order(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    """The cap delays parsing; it drops nothing: 2,000 pipelined GETs written at once get
    2,000 answers, in order (the app echoes each request's target)."""
    app = app_factory()
    router = router_factory(
        router_config({"app": [app]}, health_path="/healthz", limits={"max_pipelined": 4})
    )
    port = router.listener_port()
    n = 2000
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            b"".join(
                b"GET /headers?i=%d HTTP/1.1\r\nHost: shop.example\r\n\r\n" % i for i in range(n)
            )
            + b"GET /headers?i=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        received = b""
        while chunk := sock.recv(1 << 16):
            received += chunk
    assert received.count(b"HTTP/1.1 200 ") == n + 1
    targets = re.findall(rb'"target": ?"/headers\?i=([0-9a-z]+)"', received)
    assert targets == [b"%d" % i for i in range(n)] + [b"last"]
    assert router.proc.poll() is None
