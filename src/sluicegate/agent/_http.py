"""The agent's local HTTP API: OFREP evaluation, curl-friendly reads, the snapshot and its
stream for in-process SDKs, health and metrics.

Built for the hot path like the router: one bounded asyncio protocol per connection
(``_conn``) parsing with httptools and asking :meth:`AgentHttp.dispatch` for each answer
synchronously, no framework, no task per request. No auth: it listens on 127.0.0.1 by
default.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

from sluicegate.agent._conn import AgentLimits, Connection, Connections
from sluicegate.agent._metrics import UNKNOWN_FLAG
from sluicegate.agent._state import AgentState
from sluicegate.agent._wire import JSON, dumps, json_response, response
from sluicegate.errors import TransientError
from sluicegate.flags.evaluator import ErrorCode, Resolution
from sluicegate.flags.snapshot import ServingSet

__all__ = ["AgentHttp"]

log = logging.getLogger(__name__)

_HEARTBEAT = 15.0
_SINGLE = b"/ofrep/v1/evaluate/flags/"
_BULK = b"/ofrep/v1/evaluate/flags"
_GET_FLAG = b"/v1/flags/"
_CONFIGURATION_PATH = b"/ofrep/v1/configuration"
_loads = json.JSONDecoder().decode
# A context nested deeper than this is refused (PARSE_ERROR): contexts are a few flat
# attributes, and a deep one (or 100k nested arrays, which the JSON decoder answers with a
# RecursionError) would otherwise be a 500.
_MAX_DEPTH = 32

# OFREP provider configuration (GET /ofrep/v1/configuration), true of every agent, so built
# once. Polling: the bulk endpoint answers If-None-Match with 304, and a poll more often
# than once a second buys little, as the agent itself hears changes within milliseconds.
# Provider-side caching stays off: answers cost microseconds on loopback, and a cache
# would hold back a change or a rollback for its TTL. Number flags serve ints and floats.
_MIN_POLLING_INTERVAL_MS = 1000
_CONFIGURATION: Mapping[str, Any] = {
    "name": "sluicegate",
    "capabilities": {
        "cacheInvalidation": {
            "polling": {"enabled": True, "minPollingIntervalMs": _MIN_POLLING_INTERVAL_MS}
        },
        "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
        "caching": {"enabled": False},
    },
}
_CONFIGURATION_BODY = dumps(_CONFIGURATION).encode()
_CONFIGURATION_ETAG = f'"{hashlib.blake2b(_CONFIGURATION_BODY, digest_size=8).hexdigest()}"'


def _failure(key: str, code: str, details: str) -> dict[str, Any]:
    return {"key": key, "errorCode": code, "errorDetails": details}


class _BadRequestError(Exception):
    def __init__(self, code: ErrorCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _context(body: bytes) -> Mapping[str, Any]:
    """The OFREP request's ``context`` (an absent body or context is the empty context)."""
    if not body:
        return {}
    too_deep = f"the body is nested deeper than {_MAX_DEPTH} levels"
    try:
        data = _loads(body.decode())
    except RecursionError as exc:
        raise _BadRequestError(ErrorCode.PARSE_ERROR, too_deep) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequestError(ErrorCode.PARSE_ERROR, f"the body is not JSON: {exc}") from exc
    # Counting brackets (in C) spares the walk for every ordinary body.
    if (
        len(body) > 2 * _MAX_DEPTH
        and body.count(b"[") + body.count(b"{") > _MAX_DEPTH
        and _deeper_than(data, _MAX_DEPTH)
    ):
        raise _BadRequestError(ErrorCode.PARSE_ERROR, too_deep)
    if not isinstance(data, dict):
        raise _BadRequestError(ErrorCode.PARSE_ERROR, 'the body must be an object {"context": {}}')
    context = data.get("context")
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise _BadRequestError(ErrorCode.INVALID_CONTEXT, "context must be a JSON object")
    return context


def _deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests lists/objects more than ``limit`` levels (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if not isinstance(item, (dict, list)):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class AgentHttp:
    """The server: shared state, the SSE subscribers and a cached snapshot body."""

    def __init__(self, state: AgentState, limits: AgentLimits | None = None) -> None:
        self.state = state
        self.connections = Connections(limits or AgentLimits())
        self.subscribers: set[asyncio.Transport] = set()
        self._snapshot_cache: tuple[str, bytes] = ("", b"")
        self._server: asyncio.Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        state.listeners.append(self._broadcast)

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: any free port); returns the port. A port that cannot be
        opened raises TransientError naming it and the option to change."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: Connection(self), host, port, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            why = (
                "address already in use"
                if exc.errno == errno.EADDRINUSE
                else (exc.strerror or str(exc)).lower()
            )
            bad_host = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
            option = "--host" if bad_host else "--port"
            raise TransientError(f"cannot listen on {where} ({option}): {why}") from exc
        self._heartbeat = loop.create_task(self._beat())
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self.connections.close()
        for transport in list(self.subscribers):
            transport.close()
        if self._server is not None:
            self._server.close()

    # -- evaluation -----------------------------------------------------------------------

    def resolution_body(self, key: str, res: Resolution) -> tuple[int, dict[str, Any]]:
        code = res.error_code
        metrics = self.state.metrics
        if code is None:
            metrics.count(key, res.variant or "")
            body: dict[str, Any] = {
                "key": key,
                "value": res.value,
                "reason": res.reason,
                "metadata": dict(res.flag_metadata),
            }
            if res.variant is not None:
                body["variant"] = res.variant
            return 200, body
        if code is ErrorCode.FLAG_NOT_FOUND:
            metrics.count(UNKNOWN_FLAG, f"error:{code}")
            return 404, _failure(key, code, res.error_message or "")
        metrics.count(key, f"error:{code}")
        return 400, _failure(key, code, res.error_message or "")

    def evaluate_one(self, key: str, body: bytes, keep: bool) -> bytes:
        serving = self.state.serving
        if serving is None:
            return json_response(
                503, _failure(key, "GENERAL", "the agent holds no flag set yet"), keep
            )
        try:
            context = _context(body)
        except _BadRequestError as exc:
            return json_response(400, _failure(key, exc.code, exc.details), keep)
        status, data = self.resolution_body(key, serving.evaluate(key, context))
        return json_response(status, data, keep)

    def evaluate_bulk(self, body: bytes, if_none_match: str | None, keep: bool) -> bytes:
        serving = self.state.serving
        if serving is None:
            return json_response(
                503,
                {"errorCode": "GENERAL", "errorDetails": "the agent holds no flag set yet"},
                keep,
            )
        try:
            context = _context(body)
        except _BadRequestError as exc:
            return json_response(400, {"errorCode": exc.code, "errorDetails": exc.details}, keep)
        digest = hashlib.blake2b(
            json.dumps(context, sort_keys=True, default=str).encode(), digest_size=8
        ).hexdigest()
        etag = f'"{serving.etag.strip(chr(34))}-{digest}"'
        extra = b"ETag: %s\r\n" % etag.encode()
        if if_none_match is not None and etag in (t.strip() for t in if_none_match.split(",")):
            return response(304, b"", keep, JSON, extra)
        flags = []
        chosen = serving.flags_for(context)  # the version serving this context, once
        for key in serving.current:
            _, data = self.resolution_body(key, chosen.evaluate(key, context))
            flags.append(data)
        return json_response(200, {"flags": flags}, keep, extra)

    def get_flag(self, key: str, query: str, keep: bool) -> bytes:
        serving = self.state.serving
        if serving is None:
            return json_response(
                503, _failure(key, "GENERAL", "the agent holds no flag set yet"), keep
            )
        context = {name: values[-1] for name, values in parse_qs(query).items()}
        status, data = self.resolution_body(key, serving.evaluate(key, context))
        return json_response(status, data, keep)

    # -- snapshot and stream --------------------------------------------------------------

    def snapshot_bytes(self, serving: ServingSet) -> bytes:
        etag, payload = self._snapshot_cache
        if etag != serving.etag:
            payload = serving.snapshot.to_json().encode()
            self._snapshot_cache = (serving.etag, payload)
        return payload

    def snapshot(self, if_none_match: str | None, keep: bool) -> bytes:
        serving = self.state.serving
        if serving is None:
            return json_response(503, {"error": "the agent holds no flag set yet"}, keep)
        extra = b"ETag: %s\r\n" % serving.etag.encode()
        if if_none_match is not None and serving.etag in (
            t.strip() for t in if_none_match.split(",")
        ):
            return response(304, b"", keep, JSON, extra)
        return response(200, self.snapshot_bytes(serving), keep, JSON, extra)

    def event(self, serving: ServingSet) -> bytes:
        return b"id: %s\nevent: snapshot\ndata: %s\n\n" % (
            serving.etag.encode(),
            self.snapshot_bytes(serving),
        )

    def subscribe(self, transport: asyncio.Transport, last_event_id: str | None) -> None:
        transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
            b": sluicegate agent flag stream\n\n"
        )
        serving = self.state.serving
        if serving is not None and serving.etag != last_event_id:
            transport.write(self.event(serving))
        self.subscribers.add(transport)

    def _broadcast(self, serving: ServingSet) -> None:
        if not self.subscribers:
            return
        payload = self.event(serving)
        for transport in list(self.subscribers):
            transport.write(payload)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(_HEARTBEAT)
            for transport in list(self.subscribers):
                transport.write(b": heartbeat\n\n")

    def configuration(self, if_none_match: str | None, keep: bool) -> bytes:
        """OFREP's provider configuration, with an ETag (it never changes while we run)."""
        extra = b"ETag: %s\r\n" % _CONFIGURATION_ETAG.encode()
        if if_none_match is not None and _CONFIGURATION_ETAG in (
            t.strip() for t in if_none_match.split(",")
        ):
            return response(304, b"", keep, JSON, extra)
        return response(200, _CONFIGURATION_BODY, keep, JSON, extra)

    def health(self, keep: bool) -> bytes:
        health = self.state.health()
        return json_response(200 if health.ready else 503, health.body, keep)

    def metrics(self, keep: bool) -> bytes:
        return response(
            200,
            self.state.render_metrics().encode(),
            keep,
            b"text/plain; version=0.0.4; charset=utf-8",
        )

    # -- routing --------------------------------------------------------------------------

    def dispatch(self, conn: Connection, keep: bool, body: bytes) -> bytes | None:
        """The answer to the request ``conn`` has just parsed; None when it became a stream."""
        method = conn.parser.get_method()
        path, _, query = conn.url.partition(b"?")
        if path.startswith(_SINGLE):
            if method != b"POST":
                return json_response(405, {"error": "use POST"}, keep, b"Allow: POST\r\n")
            return self.evaluate_one(
                unquote(path[len(_SINGLE) :].decode("utf-8", "replace")), body, keep
            )
        if path == _BULK:
            if method != b"POST":
                return json_response(405, {"error": "use POST"}, keep, b"Allow: POST\r\n")
            return self.evaluate_bulk(body, conn.if_none_match, keep)
        if method not in (b"GET", b"HEAD"):
            return json_response(405, {"error": "use GET"}, keep, b"Allow: GET\r\n")
        if path.startswith(_GET_FLAG):
            return self.get_flag(
                unquote(path[len(_GET_FLAG) :].decode("utf-8", "replace")),
                query.decode("latin-1"),
                keep,
            )
        if path == _CONFIGURATION_PATH:
            return self.configuration(conn.if_none_match, keep)
        if path == b"/v1/snapshot":
            return self.snapshot(conn.if_none_match, keep)
        if path == b"/v1/stream":
            assert conn.transport is not None
            self.subscribe(conn.transport, conn.last_event_id)
            return None
        if path == b"/healthz":
            return self.health(keep)
        if path == b"/metrics":
            return self.metrics(keep)
        return json_response(404, {"error": f"no route {path.decode('latin-1')[:200]}"}, keep)
