"""Minimal RFC 6455 WebSocket server side for the sample app: handshake key and echo loop.

Client frames must be masked; the server's frames are not. Data messages (also fragmented
ones) are echoed back whole with the same opcode, pings are answered, a close frame is
answered with a close frame carrying the same status code.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 16 << 20

ReadExactly = Callable[[int], Awaitable[bytes]]  # raises EOFError when the peer is gone
Send = Callable[[bytes], Awaitable[None]]


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value answering a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked (server-to-client) frame."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head.append(n)
    elif n < 1 << 16:
        head.append(126)
        head += n.to_bytes(2, "big")
    else:
        head.append(127)
        head += n.to_bytes(8, "big")
    return bytes(head) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return encode_frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:120])


def unmask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


async def read_frame(readexactly: ReadExactly) -> tuple[bool, int, bytes]:
    """Read one client frame: (fin, opcode, unmasked payload)."""
    b0, b1 = await readexactly(2)
    fin, opcode, n = bool(b0 & 0x80), b0 & 0x0F, b1 & 0x7F
    if b0 & 0x70:
        raise ProtocolError(1002, "reserved bits set")
    if not b1 & 0x80:
        raise ProtocolError(1002, "client frames must be masked")
    if n == 126:
        n = int.from_bytes(await readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await readexactly(8), "big")
    if opcode >= OP_CLOSE and (n > 125 or not fin):
        raise ProtocolError(1002, "control frames must be short and unfragmented")
    if n > MAX_MESSAGE:
        raise ProtocolError(1009, "message too big")
    mask = await readexactly(4)
    return fin, opcode, unmask(await readexactly(n), mask)


async def echo(readexactly: ReadExactly, send: Send) -> None:
    """Echo messages until the client closes, misbehaves or goes away."""
    message_op, parts, size = 0, list[bytes](), 0
    while True:
        try:
            fin, op, payload = await read_frame(readexactly)
            if op == OP_CLOSE:
                await send(encode_frame(OP_CLOSE, payload[:2]))
                return
            if op == OP_PING:
                await send(encode_frame(OP_PONG, payload))
                continue
            if op == OP_PONG:
                continue
            if op in (OP_TEXT, OP_BINARY):
                if message_op:
                    raise ProtocolError(1002, "new message inside a fragmented one")
                message_op, parts, size = op, [], 0
            elif op != OP_CONT or not message_op:
                raise ProtocolError(1002, f"unexpected opcode {op}")
            parts.append(payload)
            size += len(payload)
            if size > MAX_MESSAGE:
                raise ProtocolError(1009, "message too big")
            if fin:
                data = b"".join(parts)
                if message_op == OP_TEXT:
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ProtocolError(1007, "text message is not UTF-8") from None
                await send(encode_frame(message_op, data))
                message_op, parts, size = 0, [], 0
        except ProtocolError as exc:
            await send(close_frame(exc.code, exc.reason))
            return
        except EOFError:
            return
