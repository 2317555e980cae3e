"""Last known good: the agent's on-disk copy of the newest accepted snapshot.

Saved atomically (temp file, fsync, rename, fsync of the directory), so a crash leaves
either the old file or the new one. Loading validates by compiling; a file that does not
parse, compile or belong to this environment is reported in the log and ignored (it is
overwritten by the next accepted snapshot, never served).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from sluicegate.errors import SpecError
from sluicegate.flags.snapshot import ServingSet, Snapshot, parse_snapshot

__all__ = ["SnapshotCache"]

log = logging.getLogger(__name__)


class SnapshotCache:
    """``<directory>/<env>.snapshot.json``."""

    def __init__(self, directory: Path, env: str) -> None:
        self.directory = directory
        self.env = env
        self.path = directory / f"{env}.snapshot.json"

    def load(self) -> ServingSet | None:
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("cannot read the flag cache %s (%s); waiting for the server", self.path, exc)
            return None
        try:
            snapshot, serving = parse_snapshot(payload)
        except SpecError as exc:
            log.error(
                "ignoring the invalid flag cache %s: %s",
                self.path,
                "; ".join(str(p) for p in exc.problems),
            )
            return None
        if snapshot.env != self.env:
            log.error(
                "ignoring the flag cache %s: it holds environment %r, not %r",
                self.path,
                snapshot.env,
                self.env,
            )
            return None
        return serving

    def save(self, snapshot: Snapshot) -> None:
        """Write atomically; raises OSError (the caller logs it and keeps serving)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.env}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(snapshot.to_json().encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
