"""The sample app (examples/app.py) through real HTTP: the demo and router tests rely on it."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests._support import APP_PATH, AppProcess, start_app
from tests._support.ws import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, WebSocketClient
from tests.conftest import AppFactory

MB = 1 << 20
PATTERN = b"0123456789abcdef"
RSS_LIMIT_KIB = 100 * 1024


@pytest.fixture(scope="module")
def app() -> Iterator[AppProcess]:
    with start_app(version="v7", name="blue-9") as proc:
        yield proc


@pytest.fixture
def client(app: AppProcess) -> Iterator[httpx.Client]:
    app.reset()
    with httpx.Client(base_url=app.url, timeout=30) as c:
        yield c


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def expected_download(size: int) -> str:
    block = PATTERN * 4096
    h = hashlib.sha256()
    for _ in range(size // len(block)):
        h.update(block)
    h.update(block[: size % len(block)])
    return h.hexdigest()


# -- basic endpoints --------------------------------------------------------------------


def test_index_names_version_and_instance(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.text == "hello from v7 (blue-9)\n"
    assert r.headers["x-version"] == "v7"
    assert r.headers["x-served-by"] == "blue-9"
    assert r.headers["content-length"] == str(len(r.content))


def test_version_defaults_to_shop_version_env(app_factory: AppFactory) -> None:
    other = app_factory(version=None, env={"SHOP_VERSION": "v42"})
    r = httpx.get(other.url + "/")
    assert r.headers["x-version"] == "v42"
    assert r.text.startswith("hello from v42 (v42-")


def test_unknown_path_is_404(client: httpx.Client) -> None:
    assert client.get("/nope").status_code == 404
    assert client.post("/").status_code == 404


def test_status_endpoint(client: httpx.Client) -> None:
    for code in (200, 201, 302, 404, 418, 500, 503):
        r = client.get(f"/status/{code}", follow_redirects=False)
        assert r.status_code == code
        assert r.text == f"status {code}\n"
    r = client.get("/status/204")
    assert r.status_code == 204
    assert r.content == b""
    assert client.get("/status/99").status_code == 400
    assert client.get("/status/abc").status_code == 400


def test_slow_answers_after_delay(client: httpx.Client) -> None:
    t0 = time.monotonic()
    r = client.get("/slow", params={"ms": 300})
    assert r.status_code == 200
    assert time.monotonic() - t0 >= 0.3


def test_headers_reflects_request_as_received(client: httpx.Client) -> None:
    r = client.get("/headers?a=1", headers={"X-Forwarded-For": "10.1.2.3", "X-Mixed-Case": "v"})
    body = r.json()
    assert body["method"] == "GET"
    assert body["path"] == "/headers"
    assert body["query"] == {"a": "1"}
    assert body["target"] == "/headers?a=1"
    assert ["X-Forwarded-For", "10.1.2.3"] in body["headers"]
    assert ["X-Mixed-Case", "v"] in body["headers"]
    assert body["peer"][0] == "127.0.0.1"


def test_head_request_has_no_body(app: AppProcess) -> None:
    out = raw_exchange(app.port, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: 23" in head
    assert body == b""


# -- admin switches and counters --------------------------------------------------------


def test_health_toggle(app_factory: AppFactory) -> None:
    a = app_factory()
    assert httpx.get(a.url + "/healthz").text == "ok\n"
    a.set_health(503)
    assert httpx.get(a.url + "/healthz").status_code == 503
    assert httpx.get(a.url + "/").status_code == 200  # only the health answer changes
    a.set_health(200)
    assert httpx.get(a.url + "/healthz").status_code == 200
    assert httpx.post(a.url + "/admin/health?status=abc").status_code == 400


def test_fail_mode_hits_everything_but_admin_and_healthz(app_factory: AppFactory) -> None:
    a = app_factory()
    a.set_fail(500)
    assert httpx.get(a.url + "/").status_code == 500
    assert httpx.get(a.url + "/headers").status_code == 500
    r = httpx.post(a.url + "/upload", content=b"x" * 100_000)
    assert r.status_code == 500
    assert httpx.get(a.url + "/healthz").status_code == 200
    assert a.stats()["fail"] == 500
    a.set_fail(0)
    assert httpx.get(a.url + "/").status_code == 200


def test_stats_count_non_admin_requests(app: AppProcess, client: httpx.Client) -> None:
    for _ in range(3):
        client.get("/")
    client.get("/headers")
    client.get("/missing")
    client.get("/admin/stats")
    stats = app.stats()
    assert stats["requests"] == 5
    assert stats["by_path"] == {"/": 3, "/headers": 1, "/missing": 1}
    assert stats["in_flight"] == 0
    app.reset()
    assert app.stats()["requests"] == 0
    assert app.stats()["by_path"] == {}


def test_stats_in_flight(app: AppProcess, client: httpx.Client) -> None:
    t = threading.Thread(target=lambda: httpx.get(app.url + "/slow?ms=800", timeout=10))
    t.start()
    try:
        eventually(lambda: app.stats()["in_flight"] == 1)
    finally:
        t.join()
    assert app.stats()["in_flight"] == 0


# -- connection handling ----------------------------------------------------------------


def test_keep_alive_and_pipelining(app: AppProcess) -> None:
    app.reset()
    reqs = (
        b"GET /slow?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    out = raw_exchange(app.port, reqs)
    assert out.count(b"HTTP/1.1 200 OK") == 3
    assert out.index(b"slow 100 ms") < out.index(b"5\r\nhello\r\n0\r\n\r\n")
    assert out.index(b"hello\r\n0\r\n\r\n") < out.index(b"hello from")
    assert app.stats()["requests"] == 3


def test_client_gone_mid_pipeline_leaves_no_in_flight(app: AppProcess) -> None:
    app.reset()
    with socket.create_connection(("127.0.0.1", app.port)) as s:
        s.sendall(b"GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        eventually(lambda: app.stats()["in_flight"] == 3)
    eventually(lambda: app.stats()["in_flight"] == 0)


def test_http10_closes_after_response(app: AppProcess) -> None:
    out = raw_exchange(app.port, b"GET / HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in out


def test_malformed_request_gets_400(app: AppProcess) -> None:
    out = raw_exchange(app.port, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")


def test_unread_body_is_drained_for_keep_alive(client: httpx.Client) -> None:
    r = client.post("/nope", content=b"z" * (3 * MB))
    assert r.status_code == 404
    assert client.get("/").status_code == 200  # same connection still in sync


# -- streamed bodies --------------------------------------------------------------------


def test_echo_small_and_chunked(client: httpx.Client) -> None:
    r = client.post("/echo", content=b"hello world", headers={"Content-Type": "x/y"})
    assert r.content == b"hello world"
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.headers["content-type"] == "x/y"
    r = client.put("/echo", content=iter([b"a" * 10, b"", b"b" * 70000]))
    assert r.content == b"a" * 10 + b"b" * 70000
    assert client.post("/echo").content == b""


def test_echo_few_megabytes(client: httpx.Client) -> None:
    data = os.urandom(4 * MB)
    r = client.post("/echo", content=data)
    assert r.status_code == 200
    assert r.content == data


def _body(size: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    block = os.urandom(chunk)
    sent = 0
    while sent < size:
        part = block[: min(chunk, size - sent)]
        sent += len(part)
        yield part


def test_upload_small(client: httpx.Client) -> None:
    r = client.post("/upload", content=b"abc")
    assert r.json() == {"bytes": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    r = client.put("/upload")
    assert r.json()["bytes"] == 0


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upload_50mb_streams_with_bounded_memory(app: AppProcess, framing: str) -> None:
    size = 50 * MB
    digest = hashlib.sha256()
    peak = 0

    def body() -> Iterator[bytes]:
        nonlocal peak
        for i, part in enumerate(_body(size)):
            digest.update(part)
            if i % 20 == 0:
                peak = max(peak, app.rss_kib())
            yield part

    headers = {"Content-Length": str(size)} if framing == "content-length" else {}
    r = httpx.post(app.url + "/upload", content=body(), headers=headers, timeout=60)
    assert r.status_code == 200
    assert r.json() == {"bytes": size, "sha256": digest.hexdigest()}
    assert max(peak, app.rss_kib()) < RSS_LIMIT_KIB


@pytest.mark.parametrize("chunked", [False, True])
def test_download_50mb_streams_with_bounded_memory(app: AppProcess, chunked: bool) -> None:
    size = 50 * MB + 7
    params = {"size": size, "chunked": int(chunked)}
    digest, total, peak = hashlib.sha256(), 0, 0
    with httpx.stream("GET", app.url + "/download", params=params, timeout=60) as r:
        assert r.status_code == 200
        if chunked:
            assert r.headers["transfer-encoding"] == "chunked"
        else:
            assert r.headers["content-length"] == str(size)
        for i, part in enumerate(r.iter_raw()):
            if total == 0:
                assert part[:16] == PATTERN
            digest.update(part)
            total += len(part)
            if i % 200 == 0:
                peak = max(peak, app.rss_kib())
    assert total == size
    assert digest.hexdigest() == expected_download(size)
    assert peak < RSS_LIMIT_KIB


def test_download_respects_backpressure_from_slow_reader(app: AppProcess) -> None:
    """A client that reads nothing must not make the app buffer the whole body."""
    before = app.rss_kib()
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /download?size=209715200 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1.0)
        grown = app.rss_kib() - before
        assert grown < 32 * 1024, f"app grew by {grown} KiB while the client did not read"
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    assert httpx.get(app.url + "/").status_code == 200


def test_download_rejects_bad_size(client: httpx.Client) -> None:
    assert client.get("/download?size=-1").status_code == 400
    assert client.get("/download?size=x").status_code == 400
    assert client.get("/download?size=0").content == b""


# -- WebSocket --------------------------------------------------------------------------


def test_websocket_echo(app: AppProcess) -> None:
    with WebSocketClient("127.0.0.1", app.port, "/ws") as ws:
        assert ws.response_headers["upgrade"].lower() == "websocket"
        ws.send_text("héllo")
        assert ws.recv() == (OP_TEXT, "héllo".encode())
        for size in (0, 125, 126, 65535, 65536, 300_000):
            data = os.urandom(size)
            ws.send_binary(data)
            assert ws.recv() == (OP_BINARY, data)
        ws.send_frame(OP_PING, b"p")
        assert ws.recv() == (OP_PONG, b"p")
        ws.send_frame(OP_TEXT, b"frag", fin=False)
        ws.send_frame(0, b"mented")
        assert ws.recv() == (OP_TEXT, b"fragmented")
        assert ws.close(1000) == 1000


def test_websocket_rejects_unmasked_frames(app: AppProcess) -> None:
    with WebSocketClient("127.0.0.1", app.port, "/ws") as ws:
        ws.sock.sendall(b"\x81\x02hi")  # unmasked
        _fin, opcode, payload = ws.recv_frame()
        assert opcode == 8
        assert payload[:2] == (1002).to_bytes(2, "big")


def test_ws_without_upgrade_is_426(client: httpx.Client) -> None:
    r = client.get("/ws")
    assert r.status_code == 426
    assert r.headers["upgrade"] == "websocket"


# -- lifecycle --------------------------------------------------------------------------


def test_sigterm_finishes_in_flight_requests(app_factory: AppFactory) -> None:
    a = app_factory()
    idle = socket.create_connection(("127.0.0.1", a.port))  # idle keep-alive connection
    result: dict[str, httpx.Response] = {}
    t = threading.Thread(target=lambda: result.update(r=httpx.get(a.url + "/slow?ms=700")))
    t.start()
    eventually(lambda: a.stats()["in_flight"] == 1)
    a.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(a.url + "/")  # no longer accepting
    assert idle.recv(10) == b""  # idle connection closed at once
    idle.close()
    t.join(5)
    assert result["r"].status_code == 200
    assert result["r"].headers.get("connection") == "close"
    assert a.proc.wait(5) == 0


def test_sigterm_closes_websockets_with_going_away(app_factory: AppFactory) -> None:
    a = app_factory()
    with WebSocketClient("127.0.0.1", a.port, "/ws") as ws:
        a.proc.send_signal(signal.SIGTERM)
        _fin, opcode, payload = ws.recv_frame()
        assert opcode == 8
        assert payload[:2] == (1001).to_bytes(2, "big")
    assert a.proc.wait(5) == 0


def test_cli_reports_busy_port(app: AppProcess) -> None:
    cmd = [sys.executable, str(APP_PATH), "--port", str(app.port)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    assert out.returncode != 0
    assert f"cannot listen on 127.0.0.1:{app.port}" in out.stderr
