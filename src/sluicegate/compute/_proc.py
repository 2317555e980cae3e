"""Process plumbing for the local supervisor (Linux): spawn, identify, probe, signal.

A replica is identified by its PID *and* its start time (``/proc/PID/stat`` field 22, clock
ticks since boot), so a recycled PID is never mistaken for, or signalled as, a replica.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sluicegate._private import open_append

__all__ = ["Exit", "ProcStat", "describe_exit", "is_alive", "kill_group", "spawn", "stat"]


@dataclass(frozen=True)
class ProcStat:
    """The few fields of ``/proc/PID/stat`` the supervisor needs."""

    state: str  # R, S, D, Z (zombie), ...
    pgrp: int
    session: int
    start_time: int


def stat(pid: int) -> ProcStat | None:
    """The process's stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid pgrp session ..."; comm may hold spaces and parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(
        state=fields[0], pgrp=int(fields[2]), session=int(fields[3]), start_time=int(fields[19])
    )


@dataclass(frozen=True)
class Exit:
    """How a process ended: ``code`` for exit(), ``signal`` when killed; both None if unknown
    (a process that was not our child and was reaped by someone else)."""

    code: int | None = None
    signal: int | None = None


def describe_exit(exit: Exit) -> str:
    if exit.signal is not None:
        try:
            name = signal.Signals(exit.signal).name
        except ValueError:
            name = str(exit.signal)
        return f"killed by {name}"
    if exit.code is not None:
        return f"exited with code {exit.code}"
    return "exited"


def is_alive(pid: int, start_time: int) -> tuple[bool, Exit | None]:
    """Whether the process ``pid`` that started at ``start_time`` still runs.

    Our own children are reaped here (``waitpid(WNOHANG)``), so their exit status is
    returned; a process we did not start (adopted) is checked in ``/proc``: gone, a zombie,
    or a different start time (the PID was reused) all count as dead.
    """
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child (adopted), or already reaped
    else:
        if waited == pid:
            if os.WIFSIGNALED(status):
                return False, Exit(signal=os.WTERMSIG(status))
            return False, Exit(code=os.waitstatus_to_exitcode(status))
        # Our child and not exited: waitpid is the authority (a look at /proc now could see
        # it die in between, and leave it unreaped with its exit status unread).
        return True, None
    current = stat(pid)
    if current is None or current.state in ("Z", "X") or current.start_time != start_time:
        return False, Exit()
    return True, None


def is_same_process(pid: int, start_time: int) -> bool:
    """A live, non-zombie process with this start time that leads its own process group."""
    current = stat(pid)
    return (
        current is not None
        and current.state not in ("Z", "X")
        and current.start_time == start_time
        and current.pgrp == pid
    )


class _Child(subprocess.Popen[bytes]):
    """A Popen that leaves reaping to the supervisor (``os.waitpid``): no ResourceWarning and
    no reaping behind our back when the object is dropped while the replica keeps running."""

    def __del__(self) -> None:
        pass


def spawn(
    command: Sequence[str], env: Mapping[str, str], cwd: str | None, log_path: str
) -> tuple[int, int]:
    """Start ``command`` in a new session (its own process group, so it outlives us and can be
    signalled as a group), stdout and stderr appended to ``log_path``; returns (pid,
    start_time). Raises OSError when the program cannot be run."""
    with open(open_append(log_path), "ab", buffering=0) as log:
        child = _Child(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    pid = child.pid
    info = stat(pid)
    if info is None:  # cannot happen for an unreaped child; keep mypy and us honest
        raise OSError(f"process {pid} vanished right after it was started")
    return pid, info.start_time


def kill_group(pid: int, sig: int) -> bool:
    """Send ``sig`` to the process group led by ``pid``; False when there is none."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            return True
        return False
    return True
