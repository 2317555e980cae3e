"""The agent's local HTTP API: OFREP evaluation, curl-friendly reads, the snapshot and its
stream for in-process SDKs, health and metrics.

Built for the hot path like the router: an asyncio protocol parsing with httptools and
answering synchronously inside the parser callback (so pipelined requests are answered in
order), no framework, no task per request. No auth: it listens on 127.0.0.1 by default.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import socket
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs, unquote

import httptools

from sluicegate.agent._metrics import UNKNOWN_FLAG
from sluicegate.agent._state import AgentState
from sluicegate.errors import TransientError
from sluicegate.flags.evaluator import ErrorCode, Resolution
from sluicegate.flags.snapshot import ServingSet

__all__ = ["AgentHttp"]

log = logging.getLogger(__name__)

_MAX_BODY = 1024 * 1024
_HEARTBEAT = 15.0
_SINGLE = b"/ofrep/v1/evaluate/flags/"
_BULK = b"/ofrep/v1/evaluate/flags"
_GET_FLAG = b"/v1/flags/"
_JSON = b"application/json"
_CONFIGURATION_PATH = b"/ofrep/v1/configuration"
_PHRASES = {s.value: s.phrase.encode() for s in HTTPStatus}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.JSONDecoder().decode

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
_CONFIGURATION_BODY = _dumps(_CONFIGURATION).encode()
_CONFIGURATION_ETAG = f'"{hashlib.blake2b(_CONFIGURATION_BODY, digest_size=8).hexdigest()}"'


def _response(
    status: int, body: bytes, keep_alive: bool, content_type: bytes = _JSON, extra: bytes = b""
) -> bytes:
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n%s" % (
        status,
        _PHRASES.get(status, b"Unknown"),
        content_type,
        len(body),
        extra,
        b"" if keep_alive else b"Connection: close\r\n",
        body,
    )


def _json(status: int, data: Any, keep_alive: bool, extra: bytes = b"") -> bytes:
    return _response(status, _dumps(data).encode(), keep_alive, _JSON, extra)


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
    try:
        data = _loads(body.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequestError(ErrorCode.PARSE_ERROR, f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _BadRequestError(ErrorCode.PARSE_ERROR, 'the body must be an object {"context": {}}')
    context = data.get("context")
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise _BadRequestError(ErrorCode.INVALID_CONTEXT, "context must be a JSON object")
    return context


class AgentHttp:
    """The server: shared state, the SSE subscribers and a cached snapshot body."""

    def __init__(self, state: AgentState) -> None:
        self.state = state
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
                lambda: _Protocol(self), host, port, reuse_address=True, backlog=1024
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
            return _json(503, _failure(key, "GENERAL", "the agent holds no flag set yet"), keep)
        try:
            context = _context(body)
        except _BadRequestError as exc:
            return _json(400, _failure(key, exc.code, exc.details), keep)
        status, data = self.resolution_body(key, serving.evaluate(key, context))
        return _json(status, data, keep)

    def evaluate_bulk(self, body: bytes, if_none_match: str | None, keep: bool) -> bytes:
        serving = self.state.serving
        if serving is None:
            return _json(
                503,
                {"errorCode": "GENERAL", "errorDetails": "the agent holds no flag set yet"},
                keep,
            )
        try:
            context = _context(body)
        except _BadRequestError as exc:
            return _json(400, {"errorCode": exc.code, "errorDetails": exc.details}, keep)
        digest = hashlib.blake2b(
            json.dumps(context, sort_keys=True, default=str).encode(), digest_size=8
        ).hexdigest()
        etag = f'"{serving.etag.strip(chr(34))}-{digest}"'
        extra = b"ETag: %s\r\n" % etag.encode()
        if if_none_match is not None and etag in (t.strip() for t in if_none_match.split(",")):
            return _response(304, b"", keep, _JSON, extra)
        flags = []
        chosen = serving.flags_for(context)  # the version serving this context, once
        for key in serving.current:
            _, data = self.resolution_body(key, chosen.evaluate(key, context))
            flags.append(data)
        return _json(200, {"flags": flags}, keep, extra)

    def get_flag(self, key: str, query: str, keep: bool) -> bytes:
        serving = self.state.serving
        if serving is None:
            return _json(503, _failure(key, "GENERAL", "the agent holds no flag set yet"), keep)
        context = {name: values[-1] for name, values in parse_qs(query).items()}
        status, data = self.resolution_body(key, serving.evaluate(key, context))
        return _json(status, data, keep)

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
            return _json(503, {"error": "the agent holds no flag set yet"}, keep)
        extra = b"ETag: %s\r\n" % serving.etag.encode()
        if if_none_match is not None and serving.etag in (
            t.strip() for t in if_none_match.split(",")
        ):
            return _response(304, b"", keep, _JSON, extra)
        return _response(200, self.snapshot_bytes(serving), keep, _JSON, extra)

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
            return _response(304, b"", keep, _JSON, extra)
        return _response(200, _CONFIGURATION_BODY, keep, _JSON, extra)

    def health(self, keep: bool) -> bytes:
        health = self.state.health()
        return _json(200 if health.ready else 503, health.body, keep)

    def metrics(self, keep: bool) -> bytes:
        return _response(
            200,
            self.state.render_metrics().encode(),
            keep,
            b"text/plain; version=0.0.4; charset=utf-8",
        )


class _Protocol(asyncio.Protocol):
    __slots__ = (
        "app",
        "body",
        "if_none_match",
        "last_event_id",
        "parser",
        "streaming",
        "transport",
        "url",
    )

    def __init__(self, app: AgentHttp) -> None:
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body = b""
        self.if_none_match: str | None = None
        self.last_event_id: str | None = None
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.streaming and self.transport is not None:
            self.app.subscribers.discard(self.transport)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(_json(400, {"error": "malformed request"}, False))
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = b""
        self.if_none_match = None
        self.last_event_id = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"if-none-match":
            self.if_none_match = value.decode("latin-1")
        elif lname == b"last-event-id":
            self.last_event_id = value.decode("utf-8", "replace")

    def on_body(self, body: bytes) -> None:
        if len(self.body) <= _MAX_BODY:
            self.body += body

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None or self.streaming:
            return
        keep = bool(self.parser.should_keep_alive())
        try:
            reply = self._dispatch(keep)
        except Exception:
            log.exception("request %r failed", self.url[:200])
            reply = _json(500, {"errorDetails": "internal error; see the agent log"}, False)
            keep = False
        if reply is None:  # became a stream
            return
        transport.write(reply)
        if not keep:
            transport.close()

    def _dispatch(self, keep: bool) -> bytes | None:
        app = self.app
        method = self.parser.get_method()
        path, _, query = self.url.partition(b"?")
        if len(self.body) > _MAX_BODY:
            return _json(
                413,
                {"errorCode": "PARSE_ERROR", "errorDetails": f"body over {_MAX_BODY} bytes"},
                False,
            )
        if path.startswith(_SINGLE):
            if method != b"POST":
                return _json(405, {"error": "use POST"}, keep, b"Allow: POST\r\n")
            return app.evaluate_one(
                unquote(path[len(_SINGLE) :].decode("utf-8", "replace")), self.body, keep
            )
        if path == _BULK:
            if method != b"POST":
                return _json(405, {"error": "use POST"}, keep, b"Allow: POST\r\n")
            return app.evaluate_bulk(self.body, self.if_none_match, keep)
        if method not in (b"GET", b"HEAD"):
            return _json(405, {"error": "use GET"}, keep, b"Allow: GET\r\n")
        if path.startswith(_GET_FLAG):
            return app.get_flag(
                unquote(path[len(_GET_FLAG) :].decode("utf-8", "replace")),
                query.decode("latin-1"),
                keep,
            )
        if path == _CONFIGURATION_PATH:
            return app.configuration(self.if_none_match, keep)
        if path == b"/v1/snapshot":
            return app.snapshot(self.if_none_match, keep)
        if path == b"/v1/stream":
            assert self.transport is not None
            self.streaming = True
            app.subscribe(self.transport, self.last_event_id)
            return None
        if path == b"/healthz":
            return app.health(keep)
        if path == b"/metrics":
            return app.metrics(keep)
        return _json(404, {"error": f"no route {path.decode('latin-1')[:200]}"}, keep)
