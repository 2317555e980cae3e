"""A tiny blocking WebSocket client on a raw socket (RFC 6455), for tests.

Written independently of examples/_ws.py so the two check each other.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import ssl
import struct
from types import TracebackType
from typing import Self

__all__ = ["OP_BINARY", "OP_CLOSE", "OP_PING", "OP_PONG", "OP_TEXT", "WebSocketClient"]

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(RuntimeError):
    def __init__(self, status: int, head: bytes) -> None:
        super().__init__(f"websocket handshake answered {status}: {head[:300]!r}")
        self.status = status
        self.head = head


class WebSocketClient:
    """``WebSocketClient(host, port, "/ws")``: connect and handshake; then send/recv frames."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/ws",
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        """``tls``: speak wss (TLS with this client context, SNI ``server_hostname``)."""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname or host)
        self._buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        self.response_head = head.decode("latin-1")
        status_line, *header_lines = self.response_head.split("\r\n")
        self.status = int(status_line.split()[1])
        self.response_headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)
        }
        if self.status != 101:
            self.sock.close()
            raise HandshakeError(self.status, head)
        expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        got = self.response_headers.get("sec-websocket-accept")
        if got != expected:
            self.sock.close()
            raise RuntimeError(f"bad Sec-WebSocket-Accept {got!r}, expected {expected!r}")

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self._buf += data

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        """One masked client frame."""
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode())

    def send_binary(self, data: bytes) -> None:
        self.send_frame(OP_BINARY, data)

    def recv_frame(self) -> tuple[bool, int, bytes]:
        """(fin, opcode, payload) of the next server frame; server frames must be unmasked."""
        b0, b1 = self._take(2)
        if b1 & 0x80:
            raise RuntimeError("server frame is masked")
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._take(8))
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def recv(self) -> tuple[int, bytes]:
        fin, opcode, payload = self.recv_frame()
        assert fin, "the echo server sends whole messages"
        return opcode, payload

    def close(self, code: int = 1000) -> int | None:
        """Send a close frame, read the server's close frame; returns its status code."""
        got: int | None = None
        try:
            with contextlib.suppress(ConnectionError, OSError):  # the peer hung up first
                self.send_frame(OP_CLOSE, struct.pack("!H", code))
                while True:
                    _, opcode, payload = self.recv_frame()
                    if opcode == OP_CLOSE:
                        got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                        break
        finally:
            self.sock.close()
        return got

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.sock.fileno() != -1:
            self.close()
