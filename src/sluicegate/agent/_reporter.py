"""Sends the agent's exposure reports to the server every ``interval`` seconds.

Runs as one task on the agent's event loop and never in the serving path: reading the
counters is a dict walk per interval, the POST is asynchronous, and one report is in flight
at a time. A report the server does not acknowledge (unreachable, 5xx, 4xx) is sent again
with its number, what came after goes out with the next one (see
:mod:`sluicegate.agent._exposures`). ``close`` sends a last
report so a clean shutdown loses nothing; a crash loses what was not delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import Mapping

import httpx

from sluicegate import __version__
from sluicegate.agent._exposures import ExposureLedger, Key
from sluicegate.clock import Clock

__all__ = ["ExposureReporter"]

log = logging.getLogger(__name__)


class ExposureReporter:
    """``POST {server}/v1/flags/{env}/exposures`` with the agent's key, on a timer."""

    def __init__(
        self,
        server: str,
        env: str,
        key: str | None,
        agent: str,
        counters: Mapping[Key, int],
        clock: Clock,
        interval: float,
        timeout: float = 5.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.url = f"{server.rstrip('/')}/v1/flags/{env}/exposures"
        self.agent = agent
        self.instance = uuid.uuid4().hex  # this process: its report numbers start at 1
        self.counters = counters  # the live counters; read on the loop thread only
        self.clock = clock
        self.interval = interval
        self.ledger = ExposureLedger(clock.now())
        self.delivered = 0  # evaluations the server acknowledged
        self.failures = 0  # consecutive failed reports
        headers = {"User-Agent": f"sluicegate-agent/{__version__}"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout, verify=verify)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.report()

    async def report(self) -> bool:
        """Send what is owed (nothing to send counts as success); True when delivered."""
        report = self.ledger.take(self.counters, self.clock.now())
        if report is None:
            return True
        try:
            response = await self._http.post(self.url, json=report.body(self.agent, self.instance))
            problem = (
                None
                if response.status_code < 300
                else (f"HTTP {response.status_code}: {response.text[:200]}")
            )
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            self.failures += 1
            if self.failures == 1:
                log.warning("exposure report not delivered, kept for the next one: %s", problem)
            return False
        self.ledger.ack(report)
        self.delivered += report.total
        if self.failures:
            log.info("exposure reports delivered again after %d failed", self.failures)
            self.failures = 0
        return True

    async def close(self, flush_timeout: float = 2.0) -> None:
        """Stop the timer, send a last report (waiting at most ``flush_timeout``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            async with asyncio.timeout(flush_timeout):
                await self.report()
        except TimeoutError:
            log.warning(
                "the last exposure report timed out; %d evaluations not reported",
                self.ledger.pending(self.counters),
            )
        finally:
            await self._http.aclose()
