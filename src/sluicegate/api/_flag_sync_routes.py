"""The server end of the flag sync protocol (``docs/agent.md``): snapshots and their stream.

``GET /v1/flags/{env}/snapshot`` answers the current snapshot with its ETag (304 for a
matching ``If-None-Match``); ``GET /v1/flags/{env}/stream`` is server-sent events, one
``snapshot`` event per change (``id:`` = the etag), a heartbeat comment every 15 s, and
nothing at all for a client whose ``Last-Event-ID`` is already the current etag
(:mod:`sluicegate.api._flag_stream`).

The routes read a :class:`SnapshotProvider`; :class:`InMemorySnapshotProvider` is the one
the tests use; ``sluice server`` uses the store-backed
:class:`~sluicegate.flagservice.snapshots.StoreSnapshotProvider`.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sluicegate.api._auth import require_flag_reader
from sluicegate.api._flag_stream import HEARTBEAT_SECONDS, SnapshotStreams
from sluicegate.api._shapes import COMMON_ERRORS, errors, json_errors
from sluicegate.flags.snapshot import Snapshot
from sluicegate.flagservice.snapshots import ChangeSignal

__all__ = [
    "HEARTBEAT_SECONDS",
    "InMemorySnapshotProvider",
    "SnapshotProvider",
    "add_flag_sync_routes",
]


class SnapshotRollout(BaseModel):
    id: str
    from_version: int
    to_version: int
    percent: float = Field(description="the share of users on to_version, %")
    from_document: dict[str, Any] = Field(description="the flag set of from_version")


class FlagSnapshot(BaseModel):
    """What an environment serves now: its flag set, and during a rollout the old one with
    the share of users that get the new one."""

    env: str
    version: int
    etag: str
    document: dict[str, Any]
    rollout: SnapshotRollout | None


STREAM_PATH = "/v1/flags/{env}/stream"
STREAM_OPERATION: dict[str, Any] = {
    "get": {
        "tags": ["flag sync"],
        "summary": "The environment's flag snapshots as server-sent events",
        "description": "One `snapshot` event per change (`id:` = its etag, `data:` = the "
        "snapshot as JSON), a heartbeat comment every 15 s; with `Last-Event-ID` = the "
        "current etag, nothing until the next change. The stream never ends by itself.",
        "operationId": "flag_stream",
        "parameters": [
            {"name": "env", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {
                "description": "An endless stream of snapshot events",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **{str(code): answer for code, answer in json_errors(401, 403, 413, 503).items()},
        },
    }
}


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
    return Response(
        snapshot.to_json(),
        media_type="application/json",
        headers={"ETag": snapshot.etag, "Cache-Control": "no-cache"},
    )


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def add_flag_sync_routes(
    app: FastAPI, provider: SnapshotProvider, heartbeat: float = HEARTBEAT_SECONDS
) -> SnapshotStreams:
    """Add the sync routes over ``provider`` to ``app``; they take a reader (or higher)
    token, or an agent token scoped to the path's env. Returns the stream fan-out."""
    router = APIRouter(
        tags=["flag sync"], dependencies=[Depends(require_flag_reader)], responses=COMMON_ERRORS
    )

    @router.get(
        "/v1/flags/{env}/snapshot",
        summary="The environment's flag snapshot",
        response_model=FlagSnapshot,
        responses={
            200: {"headers": {"ETag": {"schema": {"type": "string"}}}},
            304: {"description": "If-None-Match names the current snapshot"},
            **errors(404),
        },
    )
    async def snapshot(env: str, request: Request) -> Response:
        """The current snapshot with its ETag; 304 for a matching ``If-None-Match``; 404
        before the environment has a flag set."""
        current = await provider.current(env)
        if current is None:
            return JSONResponse({"error": f"no flag set for environment {env}"}, status_code=404)
        if _matches(request.headers.get("if-none-match"), current.etag):
            return Response(status_code=304, headers={"ETag": current.etag})
        return _json_response(current)

    app.include_router(router)
    streams = SnapshotStreams(provider, require_flag_reader, heartbeat)
    app.router.routes.append(streams.route(STREAM_PATH))  # a plain route: in no schema
    return streams
