"""A fast keep-alive HTTP/1.1 client on a raw socket, for tests that send thousands of requests.

It pipelines a batch of requests per write and parses the answers with httptools, so 10k
requests through the router take seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field

import httptools


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def version(self) -> str:
        return self.headers.get("x-version", "")

    def set_cookie(self, name: str = "sluice_tg") -> str | None:
        """The value the router set for cookie ``name``, if it set one."""
        raw = self.headers.get("set-cookie", "")
        for part in raw.split("\n"):
            key, _, rest = part.partition("=")
            if key.strip() == name:
                return rest.split(";", 1)[0]
        return None


class _Collector:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.cur = Reply(0)
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self.cur = Reply(0)

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode().lower()
        v = value.decode("latin-1")
        self.cur.headers[key] = self.cur.headers[key] + "\n" + v if key in self.cur.headers else v

    def on_headers_complete(self) -> None:
        self.cur.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.cur.body += body

    def on_message_complete(self) -> None:
        self.replies.append(self.cur)


def get_many(
    port: int,
    n: int,
    headers: dict[str, str] | None = None,
    path: str = "/",
    batch: int = 50,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> list[Reply]:
    """``n`` GETs over one keep-alive connection, pipelined ``batch`` at a time."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()
    out: list[Reply] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        collector = _Collector()
        sent = 0
        while sent < n:
            k = min(batch, n - sent)
            sock.sendall(request * k)
            sent += k
            while len(collector.replies) < sent:
                data = sock.recv(1 << 16)
                if not data:
                    raise ConnectionError(f"closed after {len(collector.replies)} replies")
                collector.parser.feed_data(data)
        out = collector.replies
    return out


def request(port: int, raw: bytes, host: str = "127.0.0.1", timeout: float = 10.0) -> bytes:
    """Send raw bytes, return everything the server sends until it closes or goes quiet."""
    chunks = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(raw)
        with contextlib.suppress(TimeoutError):  # a kept-alive answer: read until quiet
            while data := sock.recv(1 << 16):
                chunks.append(data)
    return b"".join(chunks)
