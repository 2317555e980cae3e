"""Per-replica log files: rotation by size (copy-then-truncate), reading the tail, and
reading on from a position, so that a follower sees every line once across rotations.

The replica writes straight into its file (opened with O_APPEND), so it keeps logging when
the control plane is gone. Rotation therefore copies the file to ``.1`` and truncates the
original in place: the writer's next append lands at the new end. Lines written between the
copy and the truncation can be lost; that window is a few microseconds.

**Positions.** A replica's output is one stream of bytes; a position counts the bytes of it
from the first one ever written (rotations included). The live file holds the stream from
its *base* on, ``.1`` the bytes just before, ``.2`` those before ``.1``'s. The base is kept
beside the log in ``<name>.rotated`` (``"<seq> <base>"``): rotation raises the base by the
size of the copy it made. Without that file (logs from before it existed) the base is the
size of the backups, which is consistent as well.

**Readers never see a half-done rotation.** ``seq`` works as a sequence lock: rotation
writes it odd before it starts and even, with the new base, when done (each write is
atomic: temp file, rename). A reader waits while ``seq`` is odd and reads again when ``seq``
changed while it read. Only one process rotates (the server owning the state dir); readers
may be other threads or processes. A rotation whose process died half-way (``seq`` left
odd) is taken as over after a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from sluicegate.errors import TransientError

__all__ = [
    "LogLines",
    "LogRead",
    "LogReader",
    "read_after",
    "read_tail",
    "rotate_if_large",
    "tail_lines",
]

T = TypeVar("T")

_MARK_SUFFIX = ".rotated"
_STALE_ROTATION = 5.0  # seconds: an odd seq this old was left by a rotation that died
_ROTATION_WAIT = 5.0  # seconds a reader waits for a rotation in progress
READ_CAP = 1 << 20  # bytes one read after a position returns at most (``more`` says so)
_TAIL_CAP = 64 << 20  # bytes a tail read returns at most


@dataclass(frozen=True)
class LogLines:
    """Complete lines of one replica's output, oldest first, and where they end.

    ``position`` is the position just after the last line given (or the position read
    from, when none): pass it back to read on. A line is given once its newline is
    written; an unended last line waits for it. ``skipped`` counts the bytes between the
    position asked for and the oldest one still kept (rotated away unread; 0 normally).
    ``more`` is true when the read stopped at its line or byte limit before the end.
    """

    replica: int
    lines: tuple[str, ...]
    position: int
    skipped: int = 0
    more: bool = False


@dataclass(frozen=True)
class LogRead:
    """What a backend has of a revision's output: per replica, or only a ``note`` saying
    why there is nothing to read (a revision that runs elsewhere)."""

    replicas: tuple[LogLines, ...] = ()
    note: str = ""


@runtime_checkable
class LogReader(Protocol):
    """A compute backend that reads its replicas' output by position (``LocalCompute``)."""

    def read_logs(
        self,
        service: str,
        revision: str,
        replica: int | None = None,
        after: Mapping[int, int] | None = None,
        count: int = 100,
    ) -> LogRead:
        """Per replica (or one): the last ``count`` lines, or with ``after`` (positions by
        replica; a replica missing from it is read from its oldest kept line) at most
        ``count`` lines after its position."""
        ...


@dataclass(frozen=True)
class _Piece:
    """One file of a replica's log: where its first byte is in the stream, its size."""

    path: Path
    start: int
    size: int
    live: bool  # the file the replica writes: its unended last line is held back

    @property
    def end(self) -> int:
        return self.start + self.size


def _mark(path: Path) -> Path:
    return path.with_name(path.name + _MARK_SUFFIX)


def _read_mark(path: Path) -> tuple[int, int | None, float]:
    """``(seq, base, written at)``; ``(0, None, 0)`` without a (readable) mark."""
    mark = _mark(path)
    try:
        seq, base = (int(part) for part in mark.read_text().split())
        return seq, base, mark.stat().st_mtime
    except (OSError, ValueError):
        return 0, None, 0.0


def _write_mark(path: Path, seq: int, base: int) -> None:
    mark = _mark(path)
    tmp = mark.with_name(mark.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(fd, "w") as f:
        f.write(f"{seq} {base}\n")
    os.replace(tmp, mark)


def _backups(path: Path, backups: int) -> list[tuple[Path, int]]:
    """``.1``, ``.2``, ... (newest first) as far as they exist, with their sizes."""
    found = []
    for n in range(1, backups + 1):
        older = path.with_name(f"{path.name}.{n}")
        try:
            found.append((older, older.stat().st_size))
        except FileNotFoundError:
            break
    return found


def rotate_if_large(path: Path, max_bytes: int, backups: int) -> bool:
    """Rotate ``path`` when it is over ``max_bytes``: ``.1`` → ``.2`` ..., copy to ``.1``,
    truncate; the base (see the module) grows by what moved out of the live file."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    seq, base, _ = _read_mark(path)
    kept = sum(size for _, size in _backups(path, backups))
    if base is None or base < kept:
        base = kept
    begin = seq + 1 if seq % 2 == 0 else seq + 2
    _write_mark(path, begin, base)
    moved = 0
    try:
        if backups < 1:
            size = path.stat().st_size
            with open(path, "r+b") as f:
                f.truncate(0)
            moved = size
            return True
        for n in range(backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
        copy = path.with_name(f"{path.name}.1")
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # what an app printed stays the server user's (like the log)
        with open(path, "rb") as src, open(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
        copied = copy.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(0)
        moved = copied
        return True
    finally:
        _write_mark(path, begin + 1, base + moved)


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


def _pieces(path: Path, base: int | None, backups: int) -> list[_Piece]:
    """The files of a replica's log, oldest first, placed in its stream."""
    try:
        live = path.stat().st_size
    except FileNotFoundError:
        live = 0
    older = _backups(path, backups)
    kept = sum(size for _, size in older)
    start = base if base is not None and base >= kept else kept
    pieces = [_Piece(path, start, live, live=True)]
    for older_path, size in older:
        start -= size
        pieces.insert(0, _Piece(older_path, start, size, live=False))
    return pieces


def _consistent(path: Path, backups: int, read: Callable[[list[_Piece]], T]) -> T:
    """``read`` over the log's files as no rotation changed them meanwhile (see the module)."""
    deadline = time.monotonic() + _ROTATION_WAIT
    while True:
        seq, base, written = _read_mark(path)
        rotating = seq % 2 == 1 and time.time() - written < _STALE_ROTATION
        if not rotating:
            result = read(_pieces(path, base, backups))
            if _read_mark(path)[0] == seq:
                return result
        if time.monotonic() > deadline:
            raise TransientError(f"{path} is being rotated; try again")
        time.sleep(0.005)


def _read(piece: _Piece, offset: int, size: int) -> bytes:
    try:
        with open(piece.path, "rb") as f:
            f.seek(offset)
            return f.read(size)
    except FileNotFoundError:
        return b""


def _forward(
    pieces: list[_Piece], position: int, count: int, cap: int
) -> tuple[list[str], int, bool]:
    """At most ``count`` complete lines (and about ``cap`` bytes) from ``position`` on, the
    position after them, and whether it stopped before the end."""
    lines: list[str] = []
    pos, budget = position, cap
    for piece in pieces:
        if pos >= piece.end and not piece.live:
            continue
        offset = pos - piece.start
        want = budget if piece.live else min(budget, piece.size - offset)
        data = _read(piece, offset, want)
        budget -= len(data)
        capped = budget <= 0 and len(data) == want  # stopped by the byte limit
        cut = len(data)  # a backup read to its end: its end ends its last line
        if piece.live or capped:
            cut = data.rfind(b"\n") + 1  # an unended line waits for its newline...
            if cut == 0 and capped:
                cut = len(data)  # ...unless it alone is over the limit: given in parts
        raws = data[:cut].split(b"\n") if cut else []
        if raws and raws[-1] == b"" and data[:cut].endswith(b"\n"):
            raws.pop()
        at = 0
        for raw in raws:
            at = min(at + len(raw) + 1, cut)
            lines.append(raw.decode("utf-8", errors="replace"))
            if len(lines) == count:
                return lines, piece.start + offset + at, True
        pos = piece.start + offset + cut
        if capped:
            return lines, pos, True
    return lines, pos, False


def _tail_start(pieces: list[_Piece], count: int) -> int:
    """The position where the last ``count`` complete lines begin."""
    need = count
    for piece in reversed(pieces):
        data = _read(piece, 0, min(piece.size, _TAIL_CAP))
        if piece.live:
            data = data[: data.rfind(b"\n") + 1]
        i = len(data)
        while i > 0:
            j = data.rfind(b"\n", 0, i - 1)  # the newline that ends the line before
            need -= 1
            if need == 0:
                return piece.start + j + 1
            i = j + 1
    return pieces[0].start


def read_after(
    path: Path,
    replica: int,
    position: int | None,
    count: int,
    backups: int,
    cap: int = READ_CAP,
) -> LogLines:
    """At most ``count`` lines of ``path``'s stream after ``position`` (None: from the
    oldest line kept). A position older than what is kept reads from the oldest kept line
    and says how much was lost (``skipped``); one beyond the end (from a log that was
    deleted and begun again) reads the new log from its start."""

    def read(pieces: list[_Piece]) -> LogLines:
        oldest, end = pieces[0].start, pieces[-1].end
        start, skipped = oldest if position is None else position, 0
        if start < oldest:
            start, skipped = oldest, oldest - start
        elif start > end:
            start = oldest
        lines, after, more = _forward(pieces, start, count, cap)
        return LogLines(replica, tuple(lines), after, skipped, more)

    return _consistent(path, backups, read)


def read_tail(path: Path, replica: int, count: int, backups: int) -> LogLines:
    """The last ``count`` complete lines of ``path``'s stream (the live file, then its
    backups as needed) and the position after them."""

    def read(pieces: list[_Piece]) -> LogLines:
        start = _tail_start(pieces, count)
        lines, after, _ = _forward(pieces, start, count, _TAIL_CAP)
        return LogLines(replica, tuple(lines), after)

    return _consistent(path, backups, read)
