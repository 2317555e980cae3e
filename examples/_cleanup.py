"""Stop everything a demo started, including what ``sluice server`` started for it.

The server's router and replicas run in their own sessions and outlive the server by design
(a control-plane crash must not interrupt users), so stopping the server does not stop them.
A demo starts the server with ``DEMO_VAR=<id>`` in its environment; every process the server
starts inherits it, and ``stop_marked`` finds them all by it in ``/proc`` (Linux).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

__all__ = ["DEMO_VAR", "new_run_id", "stop_marked"]

DEMO_VAR = "SLUICE_DEMO_RUN"


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _marked(run_id: str) -> list[tuple[int, int]]:
    """(pid, process group) of the live processes of this user carrying ``DEMO_VAR=run_id``."""
    needle = f"{DEMO_VAR}={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
        except OSError:  # gone, or not ours
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X"):
            found.append((int(entry.name), int(fields[2])))
    return found


def _signal(processes: list[tuple[int, int]], sig: int) -> None:
    for pid, pgrp in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if pgrp == pid and pgrp != os.getpgrp():
                os.killpg(pid, sig)  # a router's workers, a replica's children
            else:
                os.kill(pid, sig)


def stop_marked(run_id: str, grace: float = 10.0) -> int:
    """SIGTERM every process carrying ``DEMO_VAR=run_id``, SIGKILL those still there after
    ``grace`` seconds; returns how many it found at first."""
    first = _marked(run_id)
    _signal(first, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while (left := _marked(run_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(50):  # a parent may start another one while it dies
        if not left:
            break
        _signal(left, signal.SIGKILL)
        time.sleep(0.1)
        left = _marked(run_id)
    return len(first)
