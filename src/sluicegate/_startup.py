"""What ``sluice server`` makes sure of before and while it acts: its port, its state dir.

- The API port is bound before any side effect, so a taken port fails with one clear line
  and nothing started, printed or written.
- One server per state dir: an exclusive ``flock`` on ``<state-dir>/server.lock`` holding
  the owner's pid; the kernel drops it when the process dies, so a crash never leaves a
  stale lock.
- The state dir and the SQLite database are watched by identity (device and inode): if
  either is deleted or replaced while the server runs, SQLite would go on writing into an
  unlinked file and a restart would quietly start empty. The watch says so instead, and
  the server stops acting until it is restarted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

from sluicegate.errors import ConflictError, SluicegateError

__all__ = ["StateDirLock", "StateWatch", "bind_api_socket"]


def bind_api_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` for uvicorn; SluicegateError naming the address
    when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        hint = (
            " (another sluice server? choose another --port)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise SluicegateError(
            f"cannot listen on {host}:{port} (--port/--host): {why.lower()}{hint}"
        ) from exc
    sock.set_inheritable(False)
    return sock


class StateDirLock:
    """Held while a server uses the state dir; see the module docstring."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "server.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ConflictError(
                f"another sluice server (pid {holder}) is using the state dir "
                f"{self.path.parent}; stop it first, or give this one another --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class StateWatch:
    """Remembers what the state dir and database were at start; :meth:`problem` says what
    changed (None while both are the same files)."""

    def __init__(self, state_dir: Path, database: str) -> None:
        self.paths = {"state dir": state_dir}
        if "://" not in database:  # a SQLite file; PostgreSQL answers for itself
            self.paths["database"] = Path(database)
        self._ids = {name: _identity(path) for name, path in self.paths.items()}

    def problem(self) -> str | None:
        for name, path in self.paths.items():
            was, now = self._ids[name], _identity(path)
            if was is None:
                continue
            if now is None:
                return (
                    f"the {name} {path} is gone (deleted while the server ran); the "
                    "server stopped acting: restore it, or stop the server, the router "
                    "and the replicas it left, then start again"
                )
            if now != was:
                return (
                    f"the {name} {path} was replaced by another file while the server "
                    "ran; the server stopped acting: restart it to use the new one"
                )
        return None
