"""The admin port is bounded like a listener: sizes (414/431/413), time (408, idle close),
connections (503), and the token is checked before a body is read (401 with the body
unsent). A flood on it is cut after a few KiB, so the router neither grows nor stalls.

One router serves the module with tight limits so the cases stay small and quick:
``limits: {max_request_line: 1024, max_header_bytes: 2048}``, ``timeouts: {header: 1s,
idle: 2s}``, ``admin: {body_timeout: 1s, max_body_bytes: 65536, max_connections: 8}``.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests._support import (
    AppProcess,
    RouterProcess,
    router_config,
    rss_kib,
    start_app,
    start_router,
)

MAX_URL = 1024
MAX_HEADERS = 2048
MAX_BODY = 65536
TOKEN = b"Authorization: Bearer test-token\r\n"


@pytest.fixture(scope="module")
def app() -> Iterator[AppProcess]:
    with start_app() as proc:
        yield proc


@pytest.fixture(scope="module")
def router(app: AppProcess) -> Iterator[RouterProcess]:
    config = router_config(
        {"app": [app]},
        health_path="/healthz",
        limits={"max_request_line": MAX_URL, "max_header_bytes": MAX_HEADERS},
        timeouts={"header": "1s", "idle": "2s"},
    )
    config["admin"].update(body_timeout="1s", max_body_bytes=MAX_BODY, max_connections=8)
    with start_router(config) as r:
        yield r
        assert r.proc.poll() is None, f"router died:\n{r.logs()}"


def admin_exchange(router: RouterProcess, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` to the admin port on a new connection; all it answers until it closes.
    Fails if the router leaves the connection open past ``timeout``."""
    with socket.create_connection(("127.0.0.1", router.admin_port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"admin connection still open after {timeout}s: {received[:300]!r}")
        except ConnectionResetError:
            pass
    return received


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw.split(b" ", 2)[1])


def test_a_request_line_over_the_limit_is_a_414(router: RouterProcess) -> None:
    raw = admin_exchange(router, b"GET /" + b"a" * MAX_URL + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 414


def test_headers_over_the_limit_are_a_431_even_before_the_header_ends(
    router: RouterProcess,
) -> None:
    complete = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 100) for i in range(30))
    raw = admin_exchange(router, b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + complete + b"\r\n")
    assert status_of(raw) == 431
    endless = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"v" * (1 << 20)
    assert status_of(admin_exchange(router, endless)) == 431


def test_a_head_not_finished_within_the_header_timeout_is_a_408(router: RouterProcess) -> None:
    raw = admin_exchange(router, b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + TOKEN)
    assert status_of(raw) == 408


def test_a_body_not_finished_within_the_body_timeout_is_a_408(router: RouterProcess) -> None:
    head = b"PUT /v1/config HTTP/1.1\r\nHost: x\r\n" + TOKEN + b"Content-Length: 100\r\n\r\n"
    raw = admin_exchange(router, head + b"{")
    assert status_of(raw) == 408


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    router: RouterProcess,
) -> None:
    raw = admin_exchange(router, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 200  # answered, kept alive, then closed by the router


def test_a_wrong_token_is_a_401_before_the_body_is_read(router: RouterProcess) -> None:
    """The 401 comes for the head alone: the 100 MB the head announces is never sent."""
    head = (
        b"PUT /v1/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
        b"Content-Length: 104857600\r\n\r\n"
    )
    raw = admin_exchange(router, head)
    assert status_of(raw) == 401
    assert b"Connection: close" in raw


def test_a_body_announced_over_the_limit_is_a_413_before_it_is_sent(
    router: RouterProcess,
) -> None:
    head = b"PUT /v1/config HTTP/1.1\r\nHost: x\r\n" + TOKEN
    raw = admin_exchange(router, head + b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    assert status_of(raw) == 413
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (MAX_BODY + 1)
    raw = admin_exchange(router, chunked + b"x" * (MAX_BODY + 1) + b"\r\n0\r\n\r\n")
    assert status_of(raw) == 413


def test_connections_beyond_the_admin_cap_get_a_503(router: RouterProcess) -> None:
    held = [socket.create_connection(("127.0.0.1", router.admin_port)) for _ in range(8)]
    try:
        raw = admin_exchange(router, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(raw) == 503
    finally:
        for sock in held:
            sock.close()


def test_a_100_mb_url_on_the_admin_port_is_cut_short_and_the_data_plane_keeps_serving(
    router: RouterProcess,
) -> None:
    """The admin server once kept the whole request line (100 MB moved data-plane p50 from
    4 ms to 9 s). Now the flood gets its 414 after a few KiB and the router does not grow."""
    web = router.listener_url()
    assert httpx.get(web + "/").status_code == 200
    baseline = rss_kib(router.pid)
    sent = 0
    received = b""
    with socket.create_connection(("127.0.0.1", router.admin_port), timeout=10) as sock:
        try:
            sock.sendall(b"GET /")
            chunk = b"a" * 65536
            while sent < 100 << 20:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # cut by the router, as it should be
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                received += data
    assert sent < 100 << 20, "the router took all 100 MB"
    if received:  # an RST can overtake the answer when the sender is this fast
        assert status_of(received) == 414
    assert rss_kib(router.pid) - baseline < 8 * 1024
    assert httpx.get(web + "/").status_code == 200
    assert router.admin("GET", "/v1/status").status_code == 200
