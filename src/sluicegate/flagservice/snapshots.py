"""The flag store as the sync protocol's ``SnapshotProvider`` (``docs/agent.md``).

An environment's snapshot is its current version, or during a rollout the version being
rolled out with the rollout (id, percent, the old version's document) so agents and SDKs
serve each user the side their bucket says. Every change to versions and rollouts is an
event in the store's log, so one watcher task per provider polls the log's newest id
(``WATCH_INTERVAL``, 50 ms) instead of every stream polling the flag tables; when it moves,
the watched environments' snapshots are read again and waiting streams are woken. A write
this process commits wakes the watcher at once (``Store.on_commit``), so changes made through
this server reach streams without waiting; changes by other processes sharing the database
(another server on PostgreSQL) within about one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sluicegate.errors import NotFoundError
from sluicegate.flags.rollout import RolloutState
from sluicegate.flags.snapshot import Rollout, Snapshot, snapshot_etag
from sluicegate.store import Store

__all__ = ["WATCH_INTERVAL", "ChangeSignal", "StoreSnapshotProvider"]

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.05


class ChangeSignal:
    """Wakes every waiter at once. A Condition hands its lock from waiter to waiter, one loop
    iteration each: with 1,000 streams the last one learnt of a change seconds late. Waiters
    here share one future (shielded, so a waiter that gives up cancels only itself)."""

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        if self._future is None or self._future.done():
            self._future = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._future)

    def fire(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
        self._future = None


class StoreSnapshotProvider:
    """Snapshots read from the flag store; ``changed`` waits on one shared watcher."""

    def __init__(self, store: Store, interval: float = WATCH_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._cache: dict[str, Snapshot | None] = {}
        self._signal = ChangeSignal()
        self._watcher: asyncio.Task[None] | None = None
        self._last_event = -1
        self._unlisten: Callable[[], None] | None = None

    async def current(self, env: str) -> Snapshot | None:
        return self.read(env)

    async def changed(self, env: str, after_etag: str | None) -> Snapshot:
        self._ensure_watcher()
        while True:
            if env not in self._cache:
                self._cache[env] = self.read(env)
            snapshot = self._cache[env]
            if snapshot is not None and snapshot.etag != after_etag:
                return snapshot
            await self._signal.wait()  # no await between the check and this: no lost wake-up

    def read(self, env: str) -> Snapshot | None:
        """``env``'s snapshot now; None when it is unknown or has no version yet."""
        try:
            environment = self.store.flags.environment(env)
        except NotFoundError:
            return None
        if environment.current_version is None:
            return None
        active = self.store.flag_rollouts.active_for(env)
        if active is None:
            current = self.store.flags.version(env, environment.current_version)
            return Snapshot(env, current.version, snapshot_etag(current.version), current.document)
        new = self.store.flags.version(env, active.to_version)
        old = self.store.flags.version(env, active.from_version)
        rollout = Rollout(
            active.id,
            active.from_version,
            active.to_version,
            float(RolloutState.from_json(active.state).percent),
            old.document,
        )
        return Snapshot(
            env, new.version, snapshot_etag(new.version, rollout), new.document, rollout
        )

    async def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            loop = asyncio.get_running_loop()
            poked = asyncio.Event()

            def poke() -> None:  # runs in whichever thread committed
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(poked.set)

            if self._unlisten is not None:
                self._unlisten()
            self._unlisten = self.store.on_commit(poke)
            self._watcher = loop.create_task(self._watch(poked))

    async def _watch(self, poked: asyncio.Event) -> None:
        while True:
            poked.clear()
            try:
                newest = self.store.events.last_id()
                if newest != self._last_event:
                    self._last_event = newest
                    for env in list(self._cache):
                        self._cache[env] = self.read(env)
                    self._signal.fire()
            except Exception:  # a store hiccup must not end every stream; try again
                log.exception("flag snapshot watcher: reading the store failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poked.wait(), self.interval)
