"""Active HTTP health checks: a pure threshold state machine and a thin async prober.

A check the router could not make for want of file descriptors (EMFILE/ENFILE) says nothing
about the target: it is skipped, counted and logged as the router's own problem, and never
moves a target towards unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sluicegate.router._fds import is_fd_exhaustion
from sluicegate.router._ratelog import RateLimitedLog
from sluicegate.spec.router import HealthCheckSpec, TargetGroupSpec, parse_target

__all__ = ["HealthChecker", "HealthState", "probe"]

log = logging.getLogger(__name__)


@dataclass
class HealthState:
    """Consecutive-result thresholds, as ALB counts them. Starts healthy (ALB's 'initial')."""

    healthy: bool = True
    streak: int = 0  # consecutive results disagreeing with the current state
    last_error: str = ""
    skipped: int = 0  # checks not made: the router was out of file descriptors

    def observe(self, ok: bool, spec: HealthCheckSpec, error: str = "") -> bool:
        """Record one check result; returns True when the state flips."""
        if ok == self.healthy:
            self.streak = 0
            if ok:
                self.last_error = ""
            return False
        self.streak += 1
        if not ok:
            self.last_error = error
        needed = spec.healthy_threshold if ok else spec.unhealthy_threshold
        if self.streak >= needed:
            self.healthy = ok
            self.streak = 0
            return True
        return False


async def probe(host: str, port: int, spec: HealthCheckSpec) -> tuple[bool | None, str]:
    """One GET of the check path; (healthy, reason), healthy None when the router could not
    check (out of file descriptors). Never raises."""
    writer = None
    try:
        async with asyncio.timeout(spec.timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET {spec.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "User-Agent: sluicegate-health\r\nConnection: close\r\n\r\n".encode()
            )
            line = await reader.readline()
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return False, "malformed status line"
        status = int(parts[1])
        if spec.healthy_status(status):
            return True, ""
        return False, f"status {status}"
    except TimeoutError:
        return False, f"timed out after {spec.timeout:g}s"
    except OSError as exc:
        if is_fd_exhaustion(exc):
            return None, exc.strerror or "out of file descriptors"
        return False, exc.strerror or type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


Report = Callable[[str, str, bool], None]  # group, target, healthy


class HealthChecker:
    """One task per target group, checking every target each interval, reporting flips."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.states: dict[tuple[str, str], HealthState] = {}
        self._said = RateLimitedLog(log)

    def configure(self, groups: list[TargetGroupSpec], extra: dict[str, set[str]]) -> None:
        """(Re)start checks for ``groups``; ``extra`` adds targets registered at runtime."""
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        live: set[tuple[str, str]] = set()
        for g in groups:
            targets = set(g.targets) | extra.get(g.name, set())
            live |= {(g.name, t) for t in targets}
            if g.health_check.enabled:
                self._tasks[g.name] = asyncio.get_running_loop().create_task(
                    self._run(g.name, g.health_check, sorted(targets))
                )
        for key in set(self.states) - live:
            del self.states[key]

    def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    async def _run(self, group: str, spec: HealthCheckSpec, targets: list[str]) -> None:
        while True:
            results = await asyncio.gather(*(probe(*parse_target(t), spec) for t in targets))
            for target, (ok, why) in zip(targets, results, strict=True):
                state = self.states.setdefault((group, target), HealthState())
                if ok is None:
                    state.skipped += 1
                    self._said.warn(
                        "fds",
                        f"health check of {target} in {group} skipped: the router is out of"
                        f" file descriptors ({why}); its own limit, not counted against the"
                        " target",
                        time.monotonic(),
                    )
                    continue
                if state.observe(ok, spec, why):
                    if ok:
                        log.info("target %s in %s is healthy again", target, group)
                    else:
                        log.warning("target %s in %s is unhealthy: %s", target, group, why)
                    self._report(group, target, state.healthy)
            await asyncio.sleep(spec.interval)
