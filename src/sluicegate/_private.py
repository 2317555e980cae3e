"""Files only the server's user may read: the state dir, the database, logs, secrets.

Webhook secrets and token hashes live in the database; replica and router logs may hold what
an app printed. So the state dir is 0700 and every file the server creates in it is 0600,
whatever the umask — also when an older version made them with wider modes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["open_append", "private_dir", "private_file", "write_secret"]


def private_dir(path: Path) -> Path:
    """Make ``path`` (and its parents) if missing; the directory itself is 0700."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """Make an existing file 0600 (a missing one is left alone)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o600)


def open_append(path: str | os.PathLike[str]) -> int:
    """A file descriptor appending to ``path``, created 0600 (and made 0600 if it was not)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to a new file only the owner can read (replacing an old one)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)
