"""The router as an HTTP/1.1 reverse proxy, end to end: a real router, a real sample app, sockets.

One sample app and one router serve the whole module. The router has one listener per case:

    web    -> group "app"    [app]                the ordinary path
    pool   -> group "pool"   [app]                its own upstream pool, to count connections
    flaky  -> group "flaky"  [dead port, app]     a target that refuses connections, then a live one
    dead   -> group "dead"   [dead port]          nothing listens
    proxied-> group "app"    [app]                trusts 127.0.0.1 as a proxy (X-Forwarded-*)

A second router with ``timeouts: {request: 1s}`` covers the 504. Health checks are off, so
only the tests talk to the app and the dead target stays in rotation.

Responses are read with a small parser written here (not httptools), so framing mistakes by
the router (a body after HEAD, stray bytes between pipelined answers) show up as failures.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import pytest

from tests._support import AppProcess, RouterProcess, free_port, rss_kib, start_app, start_router
from tests._support.ws import OP_BINARY, OP_TEXT, WebSocketClient

MB = 1 << 20
BIG = 50 * MB
# Streaming with backpressure keeps the router within a few socket buffers (it grows by under
# 1 MiB here). Without backpressure a 50 MB download grows it by some 35 MiB even with this
# client reading as fast as it can, so the bound sits well below that.
RSS_HEADROOM_KIB = 16 * 1024
PATTERN = b"0123456789abcdef"  # what /download sends, repeated


# -- a raw HTTP/1.1 client -----------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (several joined with ", "), None when absent."""
        values = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)


class RawClient:
    """One client connection on a plain socket: send any bytes, read whole responses."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 16)
        self.buf += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed mid-line: {self.buf[:200]!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError(f"closed with {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, *, head: bool = False) -> RawResponse:
        """The next response; ``head=True`` when it answers a HEAD request (no body)."""
        status_line = self._line().decode("latin-1")
        version, status, reason = [*status_line.split(" ", 2), ""][:3]
        assert version == "HTTP/1.1", status_line
        headers = []
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip().lower(), value.strip()))
        resp = RawResponse(int(status), reason, headers, b"")
        code = resp.status
        if head or code < 200 or code in (204, 304):
            return resp
        if resp.header("transfer-encoding") == "chunked":
            body = bytearray()
            while size := int(self._line().split(b";")[0], 16):
                body += self._exactly(size)
                assert self._exactly(2) == b"\r\n", "chunk not followed by CRLF"
            trailers = list(iter(self._line, b""))  # read up to the blank line, then dropped
            assert all(b":" in t for t in trailers), trailers
            resp.body = bytes(body)
        elif (length := resp.header("content-length")) is not None:
            resp.body = self._exactly(int(length))
        else:  # close-delimited: the body is everything until the server closes
            while self._fill():
                continue
            resp.body, self.buf = self.buf, b""
        return resp

    def closed_by_peer(self) -> bool:
        """True when the server has closed the connection and sent nothing more."""
        try:
            return not self.buf and not self._fill()
        except (ConnectionResetError, TimeoutError):
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def pattern(size: int) -> bytes:
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


# -- processes -------------------------------------------------------------------------------


def _group(name: str, targets: list[str]) -> dict[str, Any]:
    return {"name": name, "targets": targets, "health_check": {"enabled": False}}


def _listener(name: str, group: str) -> dict[str, Any]:
    return {
        "name": name,
        "port": free_port(),
        "default": {"forward": [{"target_group": group, "weight": 1}]},
    }


@pytest.fixture(scope="module")
def app() -> Iterator[AppProcess]:
    with start_app(version="v1", name="backend-1") as proc:
        yield proc


@pytest.fixture(scope="module")
def dead_target() -> str:
    """An address where nothing listens: connections are refused."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def router(app: AppProcess, dead_target: str) -> Iterator[RouterProcess]:
    config = {
        "listeners": [
            _listener("web", "app"),
            _listener("pool", "pool"),
            _listener("flaky", "flaky"),
            _listener("dead", "dead"),
            {**_listener("proxied", "app"), "trusted_proxies": ["127.0.0.0/8"]},
        ],
        "target_groups": [
            _group("app", [app.address]),
            _group("pool", [app.address]),
            _group("flaky", [dead_target, app.address]),
            _group("dead", [dead_target]),
        ],
    }
    with start_router(config) as r:
        yield r
        assert r.proc.poll() is None, f"router died:\n{r.logs()}"


@pytest.fixture(scope="module")
def strict_router(app: AppProcess) -> Iterator[RouterProcess]:
    config = {
        "listeners": [_listener("web", "app")],
        "target_groups": [_group("app", [app.address])],
        "timeouts": {"request": "1s"},
    }
    with start_router(config) as r:
        yield r


@pytest.fixture
def web(router: RouterProcess) -> int:
    return router.listener_port("web")


@pytest.fixture
def client(router: RouterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router.listener_url("web"), timeout=30) as c:
        yield c


def backend_headers(resp: RawResponse | httpx.Response) -> list[tuple[str, str]]:
    """The request headers the app saw, names lower-cased (from its /headers answer)."""
    return [(k.lower(), v) for k, v in resp.json()["headers"]]


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k == name]


# -- keep-alive ------------------------------------------------------------------------------


def test_many_requests_over_one_client_connection_use_one_upstream_connection(
    router: RouterProcess, app: AppProcess
) -> None:
    app.reset()
    with RawClient(router.listener_port("pool")) as c:
        for i in range(40):
            c.send(f"GET /?i={i} HTTP/1.1\r\nHost: shop.example\r\n\r\n".encode())
            r = c.response()
            assert r.status == 200
            assert r.body == b"hello from v1 (backend-1)\n"
            assert r.header("connection") in (None, "keep-alive")
    assert app.stats()["by_path"] == {"/": 40}
    target = router.admin("GET", "/v1/status").json()["groups"]["pool"]["targets"][app.address]
    assert (target["connections"], target["idle"], target["in_flight"]) == (1, 1, 0)


# -- request and response bodies ---------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 300_001])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_request_body_reaches_the_backend_intact(
    client: httpx.Client, framing: str, size: int
) -> None:
    data = os.urandom(size)
    if framing == "content-length":
        r = client.post("/upload", content=data)
        assert r.request.headers["content-length"] == str(size)
    else:
        r = client.post("/upload", content=iter([data[: size // 2], data[size // 2 :]]))
        assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 200
    assert r.json() == {"bytes": size, "sha256": hashlib.sha256(data).hexdigest()}


def test_download_with_content_length_is_passed_through(client: httpx.Client) -> None:
    r = client.get("/download", params={"size": 1_000_003})
    assert r.status_code == 200
    assert r.headers["content-length"] == "1000003"
    assert "transfer-encoding" not in r.headers
    assert r.content == pattern(1_000_003)


def test_chunked_download_stays_chunked(client: httpx.Client) -> None:
    r = client.get("/download", params={"size": 1_000_003, "chunked": 1})
    assert r.status_code == 200
    assert r.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in r.headers
    assert r.content == pattern(1_000_003)


def test_echo_streams_a_body_back_while_it_is_still_being_sent(client: httpx.Client) -> None:
    data = os.urandom(2 * MB)
    r = client.post("/echo", content=iter(data[i : i + 65536] for i in range(0, len(data), 65536)))
    assert r.status_code == 200
    assert r.content == data


def test_50_mb_upload_streams_through_in_bounded_router_memory(
    router: RouterProcess, client: httpx.Client
) -> None:
    assert client.get("/").status_code == 200  # warm: the upstream connection exists
    baseline = peak = rss_kib(router.pid)
    block = os.urandom(MB)
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        nonlocal peak
        for _ in range(BIG // MB):
            digest.update(block)
            yield block
            peak = max(peak, rss_kib(router.pid))

    r = client.post("/upload", content=body(), headers={"Content-Length": str(BIG)}, timeout=60)
    assert r.status_code == 200
    assert r.json() == {"bytes": BIG, "sha256": digest.hexdigest()}
    assert peak - baseline < RSS_HEADROOM_KIB, f"router grew {(peak - baseline) // 1024} MiB"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_50_mb_download_streams_through_in_bounded_router_memory(
    router: RouterProcess, client: httpx.Client, chunked: bool
) -> None:
    assert client.get("/").status_code == 200
    baseline = peak = rss_kib(router.pid)
    digest = hashlib.sha256()
    received = next_sample = 0
    params = {"size": BIG, "chunked": int(chunked)}
    with client.stream("GET", "/download", params=params, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == ("chunked" if chunked else None)
        for data in r.iter_raw(1 << 18):
            digest.update(data)
            received += len(data)
            if received >= next_sample:
                peak = max(peak, rss_kib(router.pid))
                next_sample += MB
    block = PATTERN * 4096
    expected = hashlib.sha256()
    for _ in range(BIG // len(block)):
        expected.update(block)
    assert received == BIG
    assert digest.hexdigest() == expected.hexdigest()
    assert peak - baseline < RSS_HEADROOM_KIB, f"router grew {(peak - baseline) // 1024} MiB"


# -- WebSocket ---------------------------------------------------------------------------------


def test_websocket_echo_through_the_router_text_and_binary(web: int) -> None:
    with WebSocketClient("127.0.0.1", web, "/ws") as ws:
        assert ws.status == 101
        assert ws.response_headers["upgrade"].lower() == "websocket"
        ws.send_text("héllo, router")
        assert ws.recv() == (OP_TEXT, "héllo, router".encode())
        for size in (0, 125, 126, 65535, 65536, 300_000):
            data = os.urandom(size)
            ws.send_binary(data)
            assert ws.recv() == (OP_BINARY, data)
        assert ws.close(1000) == 1000


# -- headers -----------------------------------------------------------------------------------


def test_x_forwarded_headers_from_an_untrusted_client_are_replaced(
    client: httpx.Client, web: int
) -> None:
    r = client.get(
        "/headers",
        headers={
            "Host": "shop.example:8080",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",  # the client's claim; the router knows better
            "X-Forwarded-Host": "evil.example",
        },
    )
    assert r.status_code == 200
    seen = backend_headers(r)
    assert values(seen, "x-forwarded-for") == ["127.0.0.1"]
    assert values(seen, "x-forwarded-proto") == ["http"]
    assert values(seen, "x-forwarded-port") == [str(web)]
    assert values(seen, "x-forwarded-host") == ["shop.example:8080"]
    assert values(seen, "host") == ["shop.example:8080"]


def test_x_forwarded_for_is_the_client_address_when_absent(client: httpx.Client) -> None:
    seen = backend_headers(client.get("/headers"))
    assert values(seen, "x-forwarded-for") == ["127.0.0.1"]


def test_several_x_forwarded_for_headers_from_a_trusted_proxy_are_joined_in_order(
    router: RouterProcess,
) -> None:
    with RawClient(router.listener_port("proxied")) as c:
        c.send(
            b"GET /headers HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 198.51.100.1\r\n"
            b"X-Forwarded-For: 198.51.100.2, 198.51.100.3\r\n\r\n"
        )
        seen = backend_headers(c.response())
    assert values(seen, "x-forwarded-for") == [
        "198.51.100.1, 198.51.100.2, 198.51.100.3, 127.0.0.1"
    ]


def test_hop_by_hop_headers_are_not_forwarded(web: int) -> None:
    with RawClient(web) as c:
        c.send(
            b"GET /headers HTTP/1.1\r\n"
            b"Host: shop.example\r\n"
            b"Connection: keep-alive, X-Foo\r\n"
            b"Keep-Alive: timeout=5\r\n"
            b"TE: trailers\r\n"
            b"Trailer: X-Checksum\r\n"
            b"Proxy-Connection: keep-alive\r\n"
            b"X-Foo: only for the first hop\r\n"
            b"X-Bar: end to end\r\n"
            b"\r\n"
        )
        r = c.response()
        assert r.status == 200
        seen = {k for k, _ in backend_headers(r)}
        # the connection stays usable after the Connection header was consumed
        c.send(b"GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n")
        assert c.response().status == 200
    for name in ("connection", "keep-alive", "te", "trailer", "proxy-connection", "x-foo"):
        assert name not in seen, f"{name} was forwarded"
    assert "x-bar" in seen


# -- message framing ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [0, 1], ids=["content-length", "chunked"])
def test_head_gets_headers_without_a_body_and_the_connection_goes_on(
    web: int, chunked: int
) -> None:
    with RawClient(web) as c:
        c.send(f"HEAD /download?size=5000&chunked={chunked} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        r = c.response(head=True)
        assert r.status == 200
        if not chunked:
            assert r.header("content-length") == "5000"
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        nxt = c.response()  # stray body bytes from the HEAD would break this parse
        assert (nxt.status, nxt.body) == (200, b"hello from v1 (backend-1)\n")


def test_204_and_304_have_no_body_and_the_connection_goes_on(web: int) -> None:
    with RawClient(web) as c:
        for code in (204, 304):
            c.send(f"GET /status/{code} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            r = c.response()
            assert (r.status, r.body) == (code, b"")
            assert r.header("transfer-encoding") is None
            assert r.header("content-length") in (None, "0")
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response().body == b"hello from v1 (backend-1)\n"


def test_http_1_0_client_gets_its_answer_and_a_close(web: int) -> None:
    with RawClient(web) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.response()
        assert (r.status, r.body) == (200, b"hello from v1 (backend-1)\n")
        assert r.header("connection") == "close"
        assert c.closed_by_peer()


def test_http_1_0_keep_alive_client_keeps_its_connection(web: int) -> None:
    with RawClient(web) as c:
        for _ in range(3):
            c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.response()
            assert (r.status, r.body) == (200, b"hello from v1 (backend-1)\n")
            assert r.header("connection") == "keep-alive"


def test_http_1_0_client_gets_a_chunked_upstream_body_unchunked_then_a_close(web: int) -> None:
    with RawClient(web) as c:
        c.send(b"GET /download?size=200000&chunked=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.response()  # no length, no chunking: the body runs to the close
        assert r.status == 200
        assert r.header("transfer-encoding") is None
        assert r.body == pattern(200_000)


def test_pipelined_requests_are_answered_in_order(web: int) -> None:
    with RawClient(web) as c:
        c.send(
            b"GET /slow?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /headers?n=3 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        first, second, third = c.response(), c.response(), c.response()
    assert (first.status, first.body) == (200, b"slow 200 ms\n")
    assert second.json() == {"bytes": 5, "sha256": hashlib.sha256(b"hello").hexdigest()}
    assert third.json()["query"] == {"n": "3"}


def test_expect_100_continue_gets_the_interim_answer_before_the_body(web: int) -> None:
    body = os.urandom(100_000)
    with RawClient(web, timeout=5) as c:
        c.send(
            b"POST /upload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        interim = c.response()  # times out if the router waits for the body first
        assert interim.status == 100
        c.send(body)
        r = c.response()
    assert r.status == 200
    assert r.json() == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


# -- failures ----------------------------------------------------------------------------------


def test_refused_backend_is_a_502_from_the_router(router: RouterProcess) -> None:
    r = httpx.get(router.listener_url("dead") + "/", timeout=10)
    assert r.status_code == 502
    assert r.headers["x-sluicegate-error"] == "1"
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("502 Bad Gateway: ")


def test_backend_slower_than_the_request_timeout_is_a_504(strict_router: RouterProcess) -> None:
    started = time.monotonic()
    r = httpx.get(strict_router.listener_url("web") + "/slow?ms=3000", timeout=10)
    elapsed = time.monotonic() - started
    assert r.status_code == 504
    assert r.headers["x-sluicegate-error"] == "1"
    assert r.text.startswith("504 Gateway Timeout: ")
    assert 0.7 < elapsed < 2.5  # the 0.25 s sweep may fire a little early or late


def test_gets_are_retried_on_another_target_when_one_refuses(
    router: RouterProcess, app: AppProcess, dead_target: str
) -> None:
    app.reset()
    with httpx.Client(base_url=router.listener_url("flaky"), timeout=10) as c:
        statuses = [c.get("/").status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert app.stats()["by_path"] == {"/": 10}
    dead = router.admin("GET", "/v1/status").json()["groups"]["flaky"]["targets"][dead_target]
    assert dead["connections"] == 0


def test_posts_are_retried_on_another_target_when_one_refuses(
    router: RouterProcess, app: AppProcess
) -> None:
    """Nothing of the POST reached the refusing target, so sending it elsewhere is safe."""
    app.reset()
    with httpx.Client(base_url=router.listener_url("flaky"), timeout=10) as c:
        for i in range(6):
            data = os.urandom(100_000 + i)
            r = c.post("/upload", content=data)
            assert r.status_code == 200
            assert r.json() == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert app.stats()["by_path"] == {"/upload": 6}
