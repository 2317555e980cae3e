"""The agent's answers as bytes: a status line, a few headers, a body (hot path)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

__all__ = ["JSON", "dumps", "json_response", "response"]

JSON = b"application/json"
PHRASES = {s.value: s.phrase.encode() for s in HTTPStatus}
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def response(
    status: int, body: bytes, keep_alive: bool, content_type: bytes = JSON, extra: bytes = b""
) -> bytes:
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n%s" % (
        status,
        PHRASES.get(status, b"Unknown"),
        content_type,
        len(body),
        extra,
        b"" if keep_alive else b"Connection: close\r\n",
        body,
    )


def json_response(status: int, data: Any, keep_alive: bool, extra: bytes = b"") -> bytes:
    return response(status, dumps(data).encode(), keep_alive, JSON, extra)
