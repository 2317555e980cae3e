"""A response without Content-Length or chunking ends when the upstream closes: relayed whole."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests._support import router_config
from tests.conftest import RouterFactory

BODY = b"x" * 70_000 + b"end"


@pytest.fixture
def close_delimited_backend() -> Iterator[str]:
    """A real socket server answering every request with a body delimited by its close."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Connection: close\r\n\r\n" + BODY
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    thread.join(5)
    srv.close()


def test_close_delimited_body_is_relayed_whole_and_rechunked_for_http11(
    close_delimited_backend: str, router_factory: RouterFactory
) -> None:
    config = router_config({"old": [close_delimited_backend]}, health_path="/")
    config["target_groups"][0]["health_check"]["enabled"] = False
    router = router_factory(config)
    for _ in range(3):  # each on a fresh upstream connection; none is pooled
        r = httpx.get(router.listener_url() + "/", timeout=10)
        assert r.status_code == 200
        assert r.content == BODY
        assert r.headers["transfer-encoding"] == "chunked"
    status = router.admin("GET", "/v1/target-groups").json()["old"]["targets"]
    assert status[close_delimited_backend]["in_flight"] == 0
    assert status[close_delimited_backend]["idle"] == 0
