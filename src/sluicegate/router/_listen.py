"""Listening sockets for the data plane and the admin API, and words for why one cannot open."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

__all__ = ["check_ports", "host_port", "open_listener", "reason"]


def host_port(address: str, port: int) -> str:
    """``127.0.0.1:80``, ``[::1]:80``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def open_listener(
    address: str, port: int, reuse_port: bool = False, backlog: int = 4096
) -> socket.socket:
    """A bound, listening, non-blocking TCP socket; raises OSError as bind/listen do.

    Listening (not only binding) is what finds every clash: with SO_REUSEADDR, Linux lets
    two sockets bind one port and refuses only the second ``listen``.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def reason(exc: OSError) -> str:
    """Why a socket could not be opened, in lower-case words (``address already in use``)."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def check_ports(ports: Iterable[tuple[str, str, int]], reuse_port: bool = False) -> list[str]:
    """Open and close each ``(field, address, port)`` as the router would; one line per port
    that cannot be opened: ``cannot listen on 127.0.0.1:9900 (admin.port): <reason>``."""
    failures = []
    for field, address, port in ports:
        try:
            open_listener(address, port, reuse_port, backlog=1).close()
        except OSError as exc:
            failures.append(f"cannot listen on {host_port(address, port)} ({field}): {reason(exc)}")
    return failures
