"""The server end of the flag sync protocol (``docs/agent.md``): snapshots and their stream.

``GET /v1/flags/{env}/snapshot`` answers the current snapshot with its ETag (304 for a
matching ``If-None-Match``); ``GET /v1/flags/{env}/stream`` is server-sent events, one
``snapshot`` event per change (``id:`` = the etag), a heartbeat comment every 15 s, and
nothing at all for a client whose ``Last-Event-ID`` is already the current etag.

The routes read a :class:`SnapshotProvider`; :class:`InMemorySnapshotProvider` is the one
the tests use; ``sluice server`` uses the store-backed
:class:`~sluicegate.flagservice.snapshots.StoreSnapshotProvider`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from sluicegate.api._auth import require_flag_reader
from sluicegate.flags.snapshot import Snapshot
from sluicegate.flagservice.snapshots import ChangeSignal

__all__ = ["HEARTBEAT_SECONDS", "InMemorySnapshotProvider", "SnapshotProvider",
           "flag_sync_router"]

HEARTBEAT_SECONDS = 15.0


class SnapshotProvider(Protocol):
    """Where the sync routes read snapshots from."""

    async def current(self, env: str) -> Snapshot | None:
        """The snapshot ``env`` serves now; None when it has no flag set yet."""

    async def changed(self, env: str, after_etag: str | None) -> Snapshot:
        """Wait until ``env``'s snapshot has an etag other than ``after_etag``; return it.
        Callers cancel it (timeouts, disconnects): it must hold nothing when cancelled."""


class InMemorySnapshotProvider:
    """Snapshots held in memory: ``publish`` wakes every waiting stream at once. Bound to the
    event loop it is first used on."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._signal = ChangeSignal()

    async def current(self, env: str) -> Snapshot | None:
        return self._snapshots.get(env)

    async def changed(self, env: str, after_etag: str | None) -> Snapshot:
        while True:
            snapshot = self._snapshots.get(env)
            if snapshot is not None and snapshot.etag != after_etag:
                return snapshot
            await self._signal.wait()

    async def publish(self, snapshot: Snapshot) -> None:
        self._snapshots[snapshot.env] = snapshot
        self._signal.fire()


def _json_response(snapshot: Snapshot) -> Response:
    return Response(snapshot.to_json(), media_type="application/json",
                    headers={"ETag": snapshot.etag, "Cache-Control": "no-cache"})


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


async def _events(provider: SnapshotProvider, env: str, last: str | None,
                  heartbeat: float) -> AsyncIterator[bytes]:
    yield b": sluicegate flag stream\n\n"  # headers and a first byte: the client is in sync
    while True:
        try:
            snapshot = await asyncio.wait_for(provider.changed(env, last), heartbeat)
        except TimeoutError:
            yield b": heartbeat\n\n"
            continue
        last = snapshot.etag
        yield _event_bytes(snapshot)


_ENCODED: dict[int, tuple[Snapshot, bytes]] = {}


def _event_bytes(snapshot: Snapshot) -> bytes:
    """The SSE event of a snapshot, encoded once for all the subscribers it wakes (keyed by
    the object itself: providers hand every stream the same snapshot object)."""
    cached = _ENCODED.get(id(snapshot))
    if cached is not None and cached[0] is snapshot:
        return cached[1]
    if len(_ENCODED) > 64:
        _ENCODED.clear()
    data = (f"id: {snapshot.etag}\nevent: snapshot\n"
            f"data: {snapshot.to_json()}\n\n").encode()
    _ENCODED[id(snapshot)] = (snapshot, data)
    return data


def flag_sync_router(provider: SnapshotProvider,
                     auth: Callable[..., Any] | None = None,
                     heartbeat: float = HEARTBEAT_SECONDS) -> APIRouter:
    """The sync routes over ``provider``; ``auth`` is a FastAPI dependency (default: the
    API's bearer tokens: a reader or higher, or an agent token scoped to the path's env).
    """
    router = APIRouter(tags=["flag sync"], dependencies=[
        Depends(auth if auth is not None else require_flag_reader)])

    @router.get("/v1/flags/{env}/snapshot", summary="The environment's flag snapshot")
    async def snapshot(env: str, request: Request) -> Response:
        current = await provider.current(env)
        if current is None:
            return JSONResponse({"error": f"no flag set for environment {env}"},
                                status_code=404)
        if _matches(request.headers.get("if-none-match"), current.etag):
            return Response(status_code=304, headers={"ETag": current.etag})
        return _json_response(current)

    @router.get("/v1/flags/{env}/stream", summary="Flag snapshots as server-sent events")
    async def stream(env: str, request: Request) -> StreamingResponse:
        last = request.headers.get("last-event-id") or None
        return StreamingResponse(_events(provider, env, last, heartbeat),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    return router
