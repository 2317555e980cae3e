"""Hostile and malformed input to the router: every request-smuggling vector gets a clean error
answer (never a dropped connection), the backend sees at most one request, and the router lives.

One sample app and one router serve the module, with tight limits so the cases stay small:
``timeouts: {header: 1s}``, ``limits: {max_request_line: 1024, max_header_bytes: 2048}``.
Health checks are off, so the app's request counts come from the tests alone. After each case a
normal request on a new connection must still be served (and is the ``"/"`` the app counts).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._support import AppProcess, RouterProcess, free_port, start_app, start_router

MAX_REQUEST_LINE = 1024
MAX_HEADER_BYTES = 2048
STATUS_LINE = re.compile(rb"HTTP/1\.1 [1-5][0-9][0-9] ")


# -- processes -------------------------------------------------------------------------------


class SwitchingBackend:
    """A fake upstream that answers every request with 101 Switching Protocols, then raw bytes.

    The sample app switches protocols only when asked to, so it cannot play the buggy or
    hostile backend that switches unasked; this thread on a plain socket does.
    """

    RAW = b"RAW BYTES FROM A TUNNEL NOBODY ASKED FOR"

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                head = b""
                with contextlib.suppress(OSError):  # the router may hang up at any point
                    while b"\r\n\r\n" not in head and (data := conn.recv(4096)):
                        head += data
                    conn.sendall(
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\n\r\n" + self.RAW
                    )
                    conn.recv(1)  # until the router hangs up

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def app() -> Iterator[AppProcess]:
    with start_app(version="v1", name="backend-1") as proc:
        yield proc


@pytest.fixture(scope="module")
def switching_backend() -> Iterator[SwitchingBackend]:
    backend = SwitchingBackend()
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def router(app: AppProcess, switching_backend: SwitchingBackend) -> Iterator[RouterProcess]:
    def listener(name: str, group: str) -> dict[str, Any]:
        forward = [{"target_group": group, "weight": 1}]
        return {"name": name, "port": free_port(), "default": {"forward": forward}}

    config = {
        "listeners": [listener("web", "app"), listener("rogue", "rogue")],
        "target_groups": [
            {"name": "app", "targets": [app.address], "health_check": {"enabled": False}},
            {
                "name": "rogue",
                "targets": [switching_backend.address],
                "health_check": {"enabled": False},
            },
        ],
        "timeouts": {"header": "1s"},
        "limits": {"max_request_line": MAX_REQUEST_LINE, "max_header_bytes": MAX_HEADER_BYTES},
    }
    with start_router(config) as r:
        yield r
        assert r.proc.poll() is None, f"router died:\n{r.logs()}"


@pytest.fixture
def port(router: RouterProcess, app: AppProcess) -> int:
    """The web listener's port, with the app's counters reset."""
    app.reset()
    return router.listener_port("web")


# -- helpers ---------------------------------------------------------------------------------


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a new connection; everything the router sends until it closes.

    Fails when the router leaves the connection open past ``timeout`` or resets it without
    an answer.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"connection still open after {timeout}s; got {received[:300]!r}")
        except ConnectionResetError:
            if not received:
                pytest.fail("connection reset without an answer")
    return received


def assert_error_answer(raw: bytes, status: int) -> str:
    """``raw`` is exactly one router error answer with ``status`` that closes; returns its text."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete response head: {raw[:300]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith(f"HTTP/1.1 {status} "), raw[:300]
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    assert headers["x-sluicegate-error"] == "1"
    assert headers["connection"] == "close"
    assert len(body) == int(headers["content-length"]), "bytes after the error answer"
    return body.decode()


def backend_saw_besides_a_normal_request(router: RouterProcess, app: AppProcess) -> dict[str, int]:
    """The router is alive and serves GET / on a new connection; what else the app has seen."""
    assert router.proc.poll() is None, f"router died:\n{router.logs()}"
    r = httpx.get(router.listener_url("web") + "/", timeout=10)
    assert r.status_code == 200
    seen: dict[str, int] = app.stats()["by_path"]
    assert seen.get("/") == 1, seen
    del seen["/"]
    return seen


# -- the request-smuggling vectors -----------------------------------------------------------


def test_content_length_with_transfer_encoding_is_rejected_and_backend_sees_nothing(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: shop.example\r\n\r\n"
    raw = exchange(
        port,
        b"POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: %d\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n%b" % (5 + len(smuggled), smuggled),
    )
    assert_error_answer(raw, 400)
    assert raw.count(b"HTTP/1.1 ") == 1  # no second answer for the smuggled request
    assert backend_saw_besides_a_normal_request(router, app) == {}


H = b"Host: shop.example\r\n"
MALFORMED_HEADS = [
    pytest.param(
        b"POST /upload HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        b"0\r\n\r\n",
        400,
        id="transfer-encoding-then-content-length",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        id="two-different-content-lengths",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        400,
        id="two-identical-content-lengths",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello",
        400,
        id="content-length-list",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello",
        400,
        id="content-length-with-sign",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
        400,
        id="content-length-overflow",
    ),
    pytest.param(
        b"GET /hostile HTTP/1.1\r\n" + H + b"X-Folded: a\r\n b\r\n\r\n",
        400,
        id="obs-fold",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        400,
        id="obs-fold-in-transfer-encoding",
    ),
    pytest.param(
        b"GET /hostile HTTP/1.1\r\n" + H + b"X-Bare: a\rb\r\n\r\n",
        400,
        id="bare-cr-in-header-value",
    ),
    pytest.param(
        b"GET /hostile HTTP/1.1\nHost: shop.example\nX-A: b\n\n",
        400,
        id="bare-lf-line-endings",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        400,
        id="transfer-encoding-chunked-not-last",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        400,
        id="transfer-encoding-xchunked",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nhello",
        400,
        id="transfer-encoding-without-chunked",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        400,
        id="two-transfer-encoding-headers",
    ),
    pytest.param(
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        id="transfer-coding-the-router-cannot-forward",
    ),
    pytest.param(
        b"POST /upload HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        id="transfer-encoding-in-http-1.0",
    ),
    pytest.param(
        b"GET /hostile HTTP/1.1\r\n" + H + b"X-Spaced : a\r\n\r\n",
        400,
        id="space-before-colon",
    ),
    pytest.param(
        b"GET /hostile HTTP/1.1\r\nHost : shop.example\r\n\r\n",
        400,
        id="space-before-colon-in-host",
    ),
    pytest.param(
        b"GET /hostile HTTP/1.1\r\n" + H + b"X-Nul: a\x00b\r\n\r\n",
        400,
        id="nul-in-header-value",
    ),
    pytest.param(b"GET /hostile\x00 HTTP/1.1\r\n" + H + b"\r\n", 400, id="nul-in-target"),
    pytest.param(b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400, id="space-in-target"),
    pytest.param(b"get /hostile HTTP/1.1\r\n" + H + b"\r\n", 400, id="lower-case-method"),
    pytest.param(b"GET /\r\n\r\n", 400, id="http-0.9"),
    pytest.param(b"GET ftp://shop.example/ HTTP/1.1\r\n" + H + b"\r\n", 400, id="ftp-target"),
    pytest.param(
        b"GET http://user@shop.example/ HTTP/1.1\r\n" + H + b"\r\n", 400, id="userinfo-in-target"
    ),
    pytest.param(b"GET http:///hostile HTTP/1.1\r\n" + H + b"\r\n", 400, id="target-without-host"),
    pytest.param(b"GET /hostile HTTP/1.1\r\n\r\n", 400, id="http-1.1-without-host"),
    pytest.param(
        b"GET /hostile HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        400,
        id="two-host-headers",
    ),
    pytest.param(b"GET /hostile HTTP/2.0\r\n" + H + b"\r\n", 505, id="http-2.0-request-line"),
    pytest.param(
        b"CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n",
        405,
        id="connect",
    ),
    pytest.param(
        b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n" + H + b"\r\n",
        414,
        id="request-line-over-the-limit",
    ),
    pytest.param(
        b"GET /hostile HTTP/1.1\r\n"
        + H
        + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 100) for i in range(30))
        + b"\r\n",
        431,
        id="headers-over-the-limit",
    ),
]


@pytest.mark.parametrize(("request_bytes", "status"), MALFORMED_HEADS)
def test_malformed_head_is_rejected_and_backend_sees_nothing(
    router: RouterProcess, app: AppProcess, port: int, request_bytes: bytes, status: int
) -> None:
    assert_error_answer(exchange(port, request_bytes), status)
    assert backend_saw_besides_a_normal_request(router, app) == {}


MALFORMED_CHUNKED_BODIES = [
    pytest.param(b"zz\r\nhello\r\n0\r\n\r\n", id="bad-chunk-size"),
    pytest.param(b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", id="chunk-size-overflow"),
    pytest.param(b"5\r\nhelloXX\r\n0\r\n\r\n", id="chunk-longer-than-its-size"),
    pytest.param(b"5\nhello\r\n0\r\n\r\n", id="bare-lf-after-chunk-size"),
    pytest.param(b"5;a=\x01\r\nhello\r\n0\r\n\r\n", id="control-char-in-chunk-extension"),
]


@pytest.mark.parametrize("body", MALFORMED_CHUNKED_BODIES)
def test_malformed_chunked_body_is_rejected_and_backend_sees_at_most_its_head(
    router: RouterProcess, app: AppProcess, port: int, body: bytes
) -> None:
    """The head went upstream before the body was read; the body error cuts that request off
    (its upstream connection is dropped, never reused), and nothing after it is forwarded."""
    assert httpx.get(router.listener_url("web") + "/smuggled").status_code == 404  # warm pool
    app.reset()
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: shop.example\r\n\r\n"
    raw = exchange(
        port,
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body + smuggled,
    )
    assert_error_answer(raw, 400)
    assert backend_saw_besides_a_normal_request(router, app) in ({}, {"/upload": 1})


def test_unterminated_header_over_the_limit_is_a_431_without_waiting_for_its_end(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    """httptools holds a header until its end; the router must count the bytes as they come."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /hostile HTTP/1.1\r\n" + H + b"X-Endless: ")
        # The router answers and closes long before 4 MiB of a header that never ends.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(64):
                sock.sendall(b"v" * 65536)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    assert_error_answer(received, 431)  # not the 408 the header timeout would give
    assert time.monotonic() - started < 0.9
    assert backend_saw_besides_a_normal_request(router, app) == {}


def test_slow_header_block_gets_408_then_close(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    started = time.monotonic()
    raw = exchange(port, b"GET /hostile HTTP/1.1\r\n" + H + b"X-Slow: still typing", timeout=5)
    elapsed = time.monotonic() - started
    assert_error_answer(raw, 408)
    assert 0.7 < elapsed < 2.5  # header timeout 1s, checked every 0.25 s
    assert backend_saw_besides_a_normal_request(router, app) == {}


def test_connection_header_cannot_strip_content_length_to_smuggle_a_request(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    """Content-Length named in Connection stays: without it the body would reach the upstream
    as a request of its own."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: shop.example\r\n\r\n"
    raw = exchange(
        port,
        b"POST /upload HTTP/1.1\r\n" + H + b"Connection: close, Content-Length\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(smuggled), smuggled),
    )
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["bytes"] == len(smuggled)
    assert backend_saw_besides_a_normal_request(router, app) == {"/upload": 1}


def test_connection_header_cannot_strip_host(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    raw = exchange(port, b"GET /headers HTTP/1.1\r\n" + H + b"Connection: close, Host\r\n\r\n")
    seen = json.loads(raw.partition(b"\r\n\r\n")[2])["headers"]
    assert [v for k, v in seen if k.lower() == "host"] == ["shop.example"]


def test_absolute_form_target_goes_upstream_in_origin_form_with_its_host(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    """RFC 9112 3.2.2: the target's authority wins over Host. Rules and upstream then agree on
    host and path (a path rule cannot be bypassed with ``http://host/path``)."""
    raw = exchange(
        port,
        b"GET http://other.example/headers?a=1 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 200 ")
    answer = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert answer["target"] == "/headers?a=1"
    hosts = [(k.lower(), v) for k, v in answer["headers"] if k.lower().endswith("host")]
    assert sorted(hosts) == [("host", "other.example"), ("x-forwarded-host", "other.example")]


# -- pipelining and upgrades -----------------------------------------------------------------


def test_error_for_a_bad_pipelined_request_comes_after_the_answers_before_it(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    """Answers pair with requests by order: an early 400 would be read as the slow one's."""
    raw = exchange(
        port,
        b"GET /slow?ms=200 HTTP/1.1\r\n" + H + b"\r\n"
        b"GET /download?size=3 HTTP/1.1\r\n" + H + b"\r\n"
        b"GET /hostile HTTP/1.1\r\n" + H + b"X-Spaced : a\r\n\r\n"
        b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n",
    )
    first, rest = raw.split(b"\r\n\r\nslow 200 ms\n", 1)
    assert first.startswith(b"HTTP/1.1 200 ")
    second, third = rest.split(b"\r\n\r\n012", 1)
    assert second.startswith(b"HTTP/1.1 200 ")
    assert assert_error_answer(third, 400) == "400 Bad Request: Invalid header token\n"
    assert backend_saw_besides_a_normal_request(router, app) == {"/slow": 1, "/download": 1}


def test_pipelined_request_behind_a_slow_one_is_not_cut_by_the_header_timeout(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    """The second head arrived complete; waiting behind a 1.5 s answer is not a slow client."""
    raw = exchange(
        port,
        b"GET /slow?ms=1500 HTTP/1.1\r\n" + H + b"\r\n"
        b"GET /download?size=3 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:300]
    assert b"\r\n\r\nslow 1500 ms\nHTTP/1.1 200 " in raw
    assert raw.endswith(b"\r\n\r\n012")
    assert backend_saw_besides_a_normal_request(router, app) == {"/slow": 1, "/download": 1}


def test_declined_upgrade_ends_the_connection_after_the_answer(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    """What follows an Upgrade request belongs to the new protocol; if the backend declines,
    none of it may be read as HTTP (upgrade smuggling), so the connection ends with the
    answer. (An Upgrade the listener does not allow, such as h2c, is never forwarded: see
    test_request_target.py.)"""
    raw = exchange(
        port,
        b"GET /headers HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nConnection: close\r\n" in raw.partition(b"\r\n\r\n")[0] + b"\r\n"
    assert raw.count(b"HTTP/1.1 ") == 1
    assert backend_saw_besides_a_normal_request(router, app) == {"/headers": 1}


def test_upstream_101_to_a_request_without_upgrade_is_a_502_not_a_tunnel(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    raw = exchange(
        router.listener_port("rogue"),
        b"GET /internal HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
    )
    assert SwitchingBackend.RAW not in raw
    assert assert_error_answer(raw, 502).startswith("502 Bad Gateway: ")
    assert backend_saw_besides_a_normal_request(router, app) == {}


# -- fuzz ------------------------------------------------------------------------------------


VALID_REQUESTS = [
    b"GET /hostile?q=1 HTTP/1.1\r\nHost: shop.example\r\nX-Test: a\r\nConnection: close\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\n"
    b"Connection: close\r\n\r\nhello",
    b"POST /upload HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: shop.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
]
PIECES = [
    b"\r\n", b"\n", b"\r", b"\x00", b" ", b"\t", b":", b",", b"\r\n ", b"\xff",
    b"Transfer-Encoding: chunked\r\n", b"Content-Length: 3\r\n", b"Host: other\r\n",
    b"0\r\n\r\n", b"HTTP/1.0", b"ffffffffffffffffffff", b"Expect: 100-continue\r\n",
    b"Connection: keep-alive, Host\r\n", b"GET / HTTP/1.1\r\n",
]  # fmt: skip


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_REQUESTS)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.binary(min_size=1, max_size=4)))
        how = draw(st.sampled_from(["insert", "overwrite", "delete"]))
        if how == "insert":
            data[pos:pos] = piece
        elif how == "overwrite":
            data[pos : pos + len(piece)] = piece
        else:
            del data[pos : pos + draw(st.integers(1, 8))]
    return bytes(data)


@settings(max_examples=100, deadline=None, database=None)
@given(payload=st.one_of(st.binary(min_size=1, max_size=300), mutated_requests()))
def test_random_and_mutated_requests_never_crash_the_router_and_get_well_formed_answers(
    router: RouterProcess, payload: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", router.listener_port("web")), timeout=5) as s:
        s.settimeout(0.3)  # an incomplete request gets no answer: the router waits for more
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError, BrokenPipeError):
            s.sendall(payload)
            while chunk := s.recv(65536):
                received += chunk
    if received:
        assert STATUS_LINE.match(received), received[:200]
    assert router.proc.poll() is None, f"router died:\n{router.logs()}"


def test_router_logged_no_internal_error_for_any_of_this(
    router: RouterProcess, app: AppProcess, port: int
) -> None:
    assert backend_saw_besides_a_normal_request(router, app) == {}
    assert "request handling failed" not in router.logs()
    assert "Traceback" not in router.logs()
