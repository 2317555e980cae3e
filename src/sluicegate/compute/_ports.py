"""Free TCP ports on 127.0.0.1 for local replicas."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Collection

from sluicegate.errors import TransientError

__all__ = ["allocate", "is_free"]


def allocate(count: int, avoid: Collection[int] = ()) -> list[int]:
    """``count`` distinct ports the kernel calls free right now, none of them in ``avoid``.

    The sockets are held open together (so the ports are distinct) and closed before return:
    another process may still take a port before the replica binds it; the replica then
    crashes and the supervisor restarts it on a fresh port.
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(count + 64):
            if len(ports) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s)
            try:
                s.bind(("127.0.0.1", 0))
            except OSError as exc:
                raise TransientError(f"no free port on 127.0.0.1: {exc.strerror}") from exc
            port = int(s.getsockname()[1])
            if port not in avoid:
                ports.append(port)
        if len(ports) < count:
            raise TransientError(f"could not find {count} free ports on 127.0.0.1")
        return ports
    finally:
        for s in held:
            s.close()


def is_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:``port`` now (SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return True
    return False
