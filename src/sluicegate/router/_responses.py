"""Responses the router writes itself (errors), pre-rendered where possible."""

from __future__ import annotations

from http import HTTPStatus

__all__ = ["error_response"]


def error_response(status: int, reason: str, keep_alive: bool, set_cookie: bytes | None) -> bytes:
    """A small text/plain response; ``reason`` is ours, never echoed user input."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = f"{status} {phrase}: {reason}\n".encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
        "X-Sluicegate-Error: 1\r\n"
    ).encode()
    return head + (set_cookie or b"") + b"\r\n" + body
