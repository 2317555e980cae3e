"""Per-replica log files: rotation by size (copy-then-truncate) and reading the tail.

The replica writes straight into its file (opened with O_APPEND), so it keeps logging when
the control plane is gone. Rotation therefore copies the file to ``.1`` and truncates the
original in place: the writer's next append lands at the new end. Lines written between the
copy and the truncation can be lost; that window is a few microseconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import deque
from pathlib import Path

__all__ = ["rotate_if_large", "tail_lines"]


def rotate_if_large(path: Path, max_bytes: int, backups: int) -> bool:
    """Rotate ``path`` when it is over ``max_bytes``: ``.1`` → ``.2`` ..., copy to ``.1``."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    if backups < 1:
        with open(path, "r+b") as f:
            f.truncate(0)
        return True
    for n in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as f:
        f.truncate(0)
    return True


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path`` and, when it has fewer, of its ``.1`` backup."""
    if count <= 0:
        return []
    lines: deque[str] = deque(maxlen=count)
    for candidate in (path.with_name(f"{path.name}.1"), path):
        with (
            contextlib.suppress(FileNotFoundError),
            open(candidate, encoding="utf-8", errors="replace") as f,
        ):
            for line in f:
                lines.append(line.rstrip("\n"))
    return list(lines)
