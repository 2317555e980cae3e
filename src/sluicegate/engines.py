"""Every background loop of the server runs here: named, bounded, restarted, watched.

An engine is a ``tick`` (one round of work) and a ``wait`` (until the next round is due).
The supervisor runs each in its own task: a tick that raises is logged with its traceback
and retried after a back-off that doubles up to :attr:`EngineSupervisor.max_backoff`; a tick
that outlives its ``timeout`` is cancelled and counts as failed; a task that ends anyway is
started again. ``health()`` reports each engine's last good tick: an engine whose last good
tick is older than its ``stall_after`` is *stalled*, and the server's health answers 503.
A silent dead loop would stop rollbacks, the one thing this product must never do.

While the supervisor is *paused* (the state dir or database is gone), engines do not tick:
acting on a store that is not the one the user has would do harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Engine", "EngineHealth", "EngineSupervisor", "every"]

log = logging.getLogger(__name__)


def every(seconds: float) -> Callable[[], Awaitable[None]]:
    """A ``wait`` of a fixed interval."""

    async def wait() -> None:
        await asyncio.sleep(seconds)

    return wait


@dataclass
class Engine:
    name: str
    tick: Callable[[], Awaitable[Any]]
    wait: Callable[[], Awaitable[None]]
    timeout: float = 60.0  # a tick running longer is cancelled and counts as failed
    stall_after: float = 30.0  # no good tick for this long: stalled
    wait_first: bool = False  # wait before the first tick (ticks aligned to the clock)
    last_good: float | None = None  # monotonic
    last_good_wall: float | None = None
    restarts: int = 0  # after a tick that raised or timed out, or a task that ended
    consecutive: int = 0
    last_error: str | None = None
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class EngineHealth:
    name: str
    ok: bool
    last_good_tick: float | None  # wall clock, seconds since the epoch
    seconds_since_good_tick: float | None
    restarts: int
    last_error: str | None


class EngineSupervisor:
    def __init__(
        self,
        *,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._wall = wall
        self._monotonic = monotonic
        self.engines: dict[str, Engine] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.paused: str | None = None  # why engines must not act (None: they may)

    def add(
        self,
        name: str,
        tick: Callable[[], Awaitable[Any]],
        wait: Callable[[], Awaitable[None]],
        *,
        timeout: float = 60.0,
        stall_after: float = 30.0,
        wait_first: bool = False,
    ) -> Engine:
        if name in self.engines:
            raise ValueError(f"an engine named {name!r} exists already")
        engine = Engine(
            name, tick, wait, timeout, stall_after, wait_first, started=self._monotonic()
        )
        self.engines[name] = engine
        return engine

    def start(self) -> None:
        """Start every engine's task (and again any whose task ended)."""
        for name, engine in self.engines.items():
            task = self._tasks.get(name)
            if task is None or task.done():
                if task is not None:
                    engine.restarts += 1
                    log.error(
                        "engine %s ended unexpectedly; starting it again (restart %d)",
                        name,
                        engine.restarts,
                    )
                self._tasks[name] = asyncio.get_running_loop().create_task(
                    self._run(engine), name=f"sluicegate-engine-{name}"
                )
                self._tasks[name].add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # _run catches everything; this is the last line of defence
            log.error("engine task %s died", task.get_name(), exc_info=exc)
        with contextlib.suppress(RuntimeError):  # the loop is closing
            asyncio.get_running_loop().call_later(self.initial_backoff, self.start)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def pause(self, why: str) -> None:
        if self.paused is None:
            log.error("engines paused: %s", why)
        self.paused = why

    def resume(self) -> None:
        if self.paused is not None:
            log.warning("engines resumed")
        self.paused = None

    async def _run(self, engine: Engine) -> None:
        if engine.wait_first and engine.last_good is None:
            engine.last_good, engine.last_good_wall = self._monotonic(), self._wall()
            await engine.wait()
        while True:
            if self.paused is not None:
                await asyncio.sleep(0.5)
                continue
            try:
                async with asyncio.timeout(engine.timeout):
                    await engine.tick()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # we are being stopped
                self._failed(engine, "the tick was cancelled from inside", None)
            except TimeoutError:
                self._failed(engine, f"tick took longer than {engine.timeout:g}s", None)
            except Exception as exc:
                self._failed(engine, f"{type(exc).__name__}: {exc}", exc)
            else:
                engine.last_good = self._monotonic()
                engine.last_good_wall = self._wall()
                engine.consecutive = 0
                await engine.wait()
                continue
            delay = min(self.max_backoff, self.initial_backoff * 2 ** (engine.consecutive - 1))
            await asyncio.sleep(delay)

    def _failed(self, engine: Engine, message: str, exc: BaseException | None) -> None:
        engine.restarts += 1
        engine.consecutive += 1
        new = message != engine.last_error or engine.consecutive == 1
        log.error(
            "engine %s: tick failed (%d in a row), restarting it: %s",
            engine.name,
            engine.consecutive,
            message,
            exc_info=exc if new else None,
        )
        engine.last_error = message

    def health(self) -> list[EngineHealth]:
        now = self._monotonic()
        out = []
        for engine in self.engines.values():
            since = None if engine.last_good is None else now - engine.last_good
            waited = now - engine.started if since is None else since
            out.append(
                EngineHealth(
                    engine.name,
                    waited < engine.stall_after,
                    engine.last_good_wall,
                    since,
                    engine.restarts,
                    engine.last_error,
                )
            )
        return out
