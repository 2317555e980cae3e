"""The router's own file descriptors: raise the limit at start, see exhaustion coming.

Running out of descriptors is the router's problem, never a target's: every client
connection needs one descriptor and usually a second one upstream, and so do health checks.
libuv hides EMFILE on accept (it accepts and closes the pending connections with a spare
descriptor), so the data plane keeps its own count and refuses new clients with a 503 while
a reserve is still free, and says so.
"""

from __future__ import annotations

import errno
import os
import resource

__all__ = ["FdBudget", "is_fd_exhaustion", "raise_nofile_limit"]

# Descriptors kept free for what is not a client pair: health checks, admin connections,
# a reload's new listening sockets, the log file, DNS.
RESERVE = 64
_UNLIMITED = 1 << 20  # what RLIM_INFINITY counts as


def raise_nofile_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit; returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still stops at the kernel's nr_open for descriptors.
    target = _UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # pragma: no cover - a limit above the kernel's nr_open
        return soft, soft
    return soft, target


def is_fd_exhaustion(exc: BaseException) -> bool:
    """EMFILE (this process) or ENFILE (the whole system)."""
    return isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE)


def _soft_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return _UNLIMITED if soft == resource.RLIM_INFINITY else int(soft)


def _open_fds() -> int | None:
    """Descriptors open in this process right now (Linux), None where it cannot be told."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir itself holds
    except OSError:  # pragma: no cover - no procfs
        return None


class FdBudget:
    """How many descriptors the process holds, as ``base`` (listening sockets, the control
    channel, logs: counted now and then) plus ``held`` (client and upstream connections,
    counted exactly by the data plane), against the soft limit (re-read every tick, so a
    limit lowered from outside is seen)."""

    __slots__ = ("base", "limit", "recounted")

    def __init__(self) -> None:
        self.limit = _soft_limit()
        self.base = 0
        self.recounted = -1e9
        self.recount(0, 0.0)

    def recount(self, held: int, now: float) -> None:
        """Count what is open (one ``listdir``) and take everything not held as base."""
        total = _open_fds()
        if total is not None:
            self.base = max(0, total - held)
        self.recounted = now

    def room_for_client(self, held: int) -> bool:
        """A new client (one descriptor now, likely one upstream) still leaves the reserve."""
        return self.base + held + 2 + RESERVE <= self.limit

    def tick(self, held: int, now: float) -> bool:
        """Re-read the limit; near it, recount (at most once a second). True when the
        reserve is being eaten into: the process is (about to be) out of descriptors."""
        self.limit = _soft_limit()
        if self.base + held + 2 * RESERVE > self.limit and now - self.recounted >= 1.0:
            self.recount(held, now)
        return self.base + held + RESERVE > self.limit
