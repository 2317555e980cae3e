"""What one request can make the API hold: a 413 before the body is read, RSS flat."""

from __future__ import annotations

import socket
from pathlib import Path

from tests._support import rss_kib
from tests._support.server import running_server


def _send(port: int, head: bytes, body_chunks: int, chunk: bytes) -> bytes:
    """Send the head, then the body chunk by chunk, stopping as soon as an answer comes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        s.settimeout(0.2)
        answer = b""
        for _ in range(body_chunks + 1):
            try:
                answer = s.recv(65536)
            except TimeoutError:
                pass
            except OSError:
                break
            if answer:
                break
            try:
                s.sendall(chunk)
            except OSError:
                break
        s.settimeout(5)
        try:
            while data := s.recv(65536):
                answer += data
        except OSError:
            pass
        return answer


def test_a_50_mb_unauthenticated_body_is_refused_413_before_it_is_read(tmp_path: Path) -> None:
    with running_server(tmp_path / "state") as server:
        assert server.proc is not None
        before = rss_kib(server.proc.pid)
        head = (b"PUT /v1/services/shop HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n")  # fmt: skip
        answer = _send(server.port, head, 50, b"x" * (1 << 20))
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"larger than 1048576 bytes" in answer
        chunked = (
            b"PUT /v1/services/shop HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"100000\r\n" + b"x" * 0x100000 + b"\r\n"
        answer = _send(server.port, chunked, 50, piece)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert rss_kib(server.proc.pid) - before < 20 * 1024  # nothing like 50 MB was held


def test_a_client_that_sends_its_head_too_slowly_is_closed(tmp_path: Path) -> None:
    with running_server(tmp_path / "state", ["--header-timeout", "1s"]) as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow.sendall(b"GET /v1/healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        for sock in (silent, slow):
            with sock:
                assert sock.recv(1024) == b""  # closed by the server, not by our timeout
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as ok:
            ok.sendall(b"GET /v1/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert ok.recv(1024).startswith(b"HTTP/1.1 ")  # a prompt client is served
