"""``sluice agent``: the sidecar that serves one environment's flags on localhost.

Start-up serves the last known good snapshot from the cache (if valid) before the first
sync; the sync thread then follows the server's stream (or polls). Each accepted snapshot
is served at once and then written to the cache; an invalid one is logged and dropped.
When the server goes away the agent keeps serving what it has and reports staleness.
Every ``report_interval`` seconds it reports its evaluation counts to the server
(exposures, see ``_reporter``), and once more on a clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sluicegate._heap import freeze_startup_heap
from sluicegate._trust import client_tls
from sluicegate.agent._cache import SnapshotCache
from sluicegate.agent._http import AgentHttp
from sluicegate.agent._reporter import ExposureReporter
from sluicegate.agent._state import AgentState
from sluicegate.clock import Clock, SystemClock
from sluicegate.errors import SpecError
from sluicegate.flags.snapshot import parse_snapshot
from sluicegate.sdk import SyncLoop

__all__ = ["AgentSettings", "run_agent", "serve_agent"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentSettings:
    server: str
    env: str
    key: str | None
    host: str = "127.0.0.1"
    port: int = 2772
    cache_dir: Path = Path(".sluice-agent")
    poll_interval: float = 30.0
    report_interval: float = 10.0  # exposure reports; 0 = never
    ca_file: str | None = None  # trust the server certificates this CA signed (https)
    client_cert: str | None = None  # presented to a server asking for one (mutual TLS)
    client_key: str | None = None


def _accept_from_thread(
    state: AgentState, cache: SnapshotCache, loop: asyncio.AbstractEventLoop
) -> Callable[[str], bool]:
    def accept(payload: str) -> bool:
        try:
            snapshot, serving = parse_snapshot(payload)
            if snapshot.env != state.env:
                raise SpecError([])
        except SpecError as exc:
            loop.call_soon_threadsafe(_count_rejected, state)
            current = state.serving
            log.error(
                "rejected a flag snapshot; still serving version %s: %s",
                None if current is None else current.version,
                "; ".join(str(p) for p in exc.problems) or "it is for another env",
            )
            return False
        current = state.serving
        if current is not None and current.etag == snapshot.etag:
            loop.call_soon_threadsafe(state.apply, serving, "server")
            return False
        loop.call_soon_threadsafe(_accepted, state, serving)
        try:
            cache.save(snapshot)
        except OSError as exc:
            log.error("cannot write the flag cache %s: %s", cache.path, exc)
        return True

    return accept


def _count_rejected(state: AgentState) -> None:
    state.metrics.rejected += 1


def _accepted(state: AgentState, serving: object) -> None:
    from sluicegate.flags.snapshot import ServingSet

    assert isinstance(serving, ServingSet)
    state.metrics.accepted += 1
    state.apply(serving, "server")


async def serve_agent(
    settings: AgentSettings, clock: Clock | None = None, ready: Callable[[int], None] | None = None
) -> None:
    """Run until cancelled; ``ready(port)`` is called once the local API listens."""
    clock = clock or SystemClock()
    loop = asyncio.get_running_loop()
    stale_after = 45.0 if settings.poll_interval <= 15 else settings.poll_interval * 2 + 5
    state = AgentState(settings.env, clock, stale_after)
    cache = SnapshotCache(settings.cache_dir, settings.env)
    cached = cache.load()
    if cached is not None:
        state.apply(cached, "cache")
    http = AgentHttp(state)
    port = await http.start(settings.host, settings.port)
    base = settings.server.rstrip("/")

    def current_etag() -> str | None:
        serving = state.serving
        return None if serving is None else serving.etag

    sync = SyncLoop(
        f"{base}/v1/flags/{settings.env}/snapshot",
        f"{base}/v1/flags/{settings.env}/stream",
        settings.key,
        _accept_from_thread(state, cache, loop),
        current_etag,
        poll_interval=settings.poll_interval,
        name="sluicegate-agent-sync",
        monotonic=clock.monotonic,
        ca_file=settings.ca_file,
        client_cert=settings.client_cert,
        client_key=settings.client_key,
    )
    state.sync = sync.status  # the sync thread updates this object in place
    sync.start()
    reporter = None
    if settings.report_interval > 0:
        reporter = ExposureReporter(
            base,
            settings.env,
            settings.key,
            f"{socket.gethostname()}:{port}",
            state.metrics.evaluations,
            clock,
            settings.report_interval,
            verify=client_tls(settings.ca_file, settings.client_cert, settings.client_key),
        )
        reporter.start()
    if ready is not None:
        ready(port)
    try:
        await asyncio.Event().wait()
    finally:
        sync.stop(timeout=1.0)
        await http.close()
        if reporter is not None:
            await reporter.close()


def run_agent(settings: AgentSettings, announce: Callable[[str], None] = print) -> None:
    """Run the agent in this process until SIGINT/SIGTERM (uvloop when installed)."""
    import uvloop

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)

        def ready(port: int) -> None:
            freeze_startup_heap()
            announce(
                f"sluice agent serving {settings.env} flags on "
                f"http://{settings.host}:{port} (server {settings.server})"
            )

        with contextlib.suppress(asyncio.CancelledError):
            await serve_agent(settings, ready=ready)

    uvloop.run(main())
