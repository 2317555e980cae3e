"""``GET /v1/flags/{env}/stream``: flag snapshots as server-sent events, fanned out in one pass.

One feeder task per environment waits for the next snapshot and writes its event, encoded
once, to every open stream of that environment in a single loop turn; a heartbeat comment
goes out the same way every ``heartbeat`` seconds. A stream costs nothing between events
but the connection: its handler only waits for the client to leave.

Why not one ``StreamingResponse`` per client: each of them woke its own task, ran its own
timeout and went through the middleware stack, about 200 µs of Python per client per change,
so the 1,000th subscriber heard of a change a quarter of a second late (``docs/agent.md``).

A client that does not read (its transport paused) is never waited for: its write finishes
in a task of its own, meanwhile newer snapshots are not queued for it, and once it drains it
gets the newest one. Snapshots are whole states, so skipping the ones in between loses
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, MutableMapping
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

from sluicegate.flags.snapshot import Snapshot

__all__ = ["HEARTBEAT_SECONDS", "SnapshotStreams", "StreamSource", "event_bytes"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
_HELLO = b": sluicegate flag stream\n\n"  # headers and a first byte: the client is in sync
_HEARTBEAT = b": heartbeat\n\n"
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class StreamSource(Protocol):
    async def changed(self, env: str, after_etag: str | None) -> Snapshot:
        """Wait until ``env``'s snapshot has an etag other than ``after_etag``; return it."""


def event_bytes(snapshot: Snapshot) -> bytes:
    """The SSE event of a snapshot (``id:`` = its etag)."""
    return (f"id: {snapshot.etag}\nevent: snapshot\ndata: {snapshot.to_json()}\n\n").encode()


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], yielded: Any) -> Generator[Any, Any, None]:
    """Drive ``coro`` on from a suspension that happened outside any task."""
    while True:
        try:
            value = yield yielded
        except BaseException as exc:  # cancellation or a failed future: hand it on
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            yielded = coro.send(value)
        except StopIteration:
            return


async def _finish(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    await _resume(coro, yielded)


def _start(coro: Awaitable[None]) -> asyncio.Future[None] | None:
    """Run ``coro`` now, up to its first suspension (Python 3.12's eager tasks, by hand).
    None when it finished; else the task that finishes it. Its exceptions propagate."""
    if not isinstance(coro, Coroutine):
        return asyncio.ensure_future(coro)
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_finish(coro, yielded))


class _Subscriber:
    __slots__ = ("closed", "last", "send", "writing")

    def __init__(self, send: Send, last: str | None) -> None:
        self.send = send
        self.last = last  # etag of the newest snapshot written (or the client's Last-Event-ID)
        self.writing: asyncio.Future[None] | None = None
        self.closed = False


class _Channel:
    """One environment: its open streams, its newest snapshot and the task feeding them."""

    def __init__(self) -> None:
        self.subscribers: set[_Subscriber] = set()
        self.etag: str | None = None
        self.event = b""
        self.feeder: asyncio.Task[None] | None = None


class SnapshotStreams:
    """The stream route's ASGI app. ``authorize(request, env)`` raises an HTTPException to
    refuse (before anything is sent, so the API's error handlers shape the answer)."""

    def __init__(
        self,
        source: StreamSource,
        authorize: Callable[[Request, str], object],
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.source = source
        self.authorize = authorize
        self.heartbeat = heartbeat
        self._channels: dict[str, _Channel] = {}
        self._closing = False

    def route(self, path: str = "/v1/flags/{env}/stream") -> Route:
        return Route(path, self, methods=["GET"], name="flag_stream")

    def close(self) -> None:
        """End every stream cleanly (the server is stopping: without this its graceful
        shutdown would wait for clients that never leave). New streams are refused."""
        self._closing = True
        for channel in list(self._channels.values()):
            if channel.feeder is not None:
                channel.feeder.cancel()
            for sub in list(channel.subscribers):
                if sub.writing is not None:
                    sub.writing.cancel()
                sub.closed = True
                with contextlib.suppress(Exception):  # a client already gone
                    _start(
                        sub.send({"type": "http.response.body", "body": b"", "more_body": False})
                    )
        self._channels.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        env: str = scope["path_params"]["env"]
        request = Request(scope, receive)
        await asyncio.to_thread(self.authorize, request, env)  # the token check reads the store
        if self._closing:
            raise HTTPException(503, "the server is stopping")
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": _HELLO, "more_body": True})
        sub = _Subscriber(send, request.headers.get("last-event-id") or None)
        channel = self._channel(env)
        channel.subscribers.add(sub)
        try:
            if channel.etag is not None and channel.etag != sub.last:
                self._write(channel, sub, channel.event, channel.etag)
            while not sub.closed:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
        finally:
            sub.closed = True
            channel.subscribers.discard(sub)
            if not channel.subscribers and self._channels.get(env) is channel:
                # forget its snapshot too: the next subscriber must not get a stale one
                del self._channels[env]
                if channel.feeder is not None:
                    channel.feeder.cancel()
        if sub.writing is not None:
            sub.writing.cancel()

    def _channel(self, env: str) -> _Channel:
        channel = self._channels.setdefault(env, _Channel())
        if channel.feeder is None:
            channel.feeder = asyncio.get_running_loop().create_task(self._feed(env, channel))
        return channel

    async def _feed(self, env: str, channel: _Channel) -> None:
        while True:
            try:
                snapshot = await asyncio.wait_for(
                    self.source.changed(env, channel.etag), self.heartbeat
                )
            except TimeoutError:
                self._broadcast(channel, _HEARTBEAT, None)
                continue
            except Exception:  # the source logs its own trouble; keep the streams open
                log.exception("flag stream for %s: reading the next snapshot failed", env)
                await asyncio.sleep(1.0)
                continue
            channel.etag, channel.event = snapshot.etag, event_bytes(snapshot)
            self._broadcast(channel, channel.event, channel.etag)

    def _broadcast(self, channel: _Channel, data: bytes, etag: str | None) -> None:
        for sub in list(channel.subscribers):
            if etag is None or sub.last != etag:
                self._write(channel, sub, data, etag)

    def _write(self, channel: _Channel, sub: _Subscriber, data: bytes, etag: str | None) -> None:
        """Write now; a client still draining an earlier write is caught up later."""
        if sub.writing is not None or sub.closed:
            return
        if etag is not None:
            sub.last = etag
        try:
            sub.writing = _start(
                sub.send({"type": "http.response.body", "body": data, "more_body": True})
            )
        except Exception:  # the connection is gone: its handler ends on the disconnect
            sub.closed = True
            return
        if sub.writing is not None:
            sub.writing.add_done_callback(lambda task: self._drained(channel, sub, task))

    def _drained(self, channel: _Channel, sub: _Subscriber, task: asyncio.Future[None]) -> None:
        sub.writing = None
        with contextlib.suppress(asyncio.CancelledError):
            if task.exception() is not None:
                sub.closed = True
                return
        if channel.etag is not None and sub.last != channel.etag:
            self._write(channel, sub, channel.event, channel.etag)
