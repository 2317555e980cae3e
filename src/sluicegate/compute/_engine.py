"""A thin client of the Docker Engine API (served by Docker and by ``podman system service``).

Only the calls the container backend needs, over a unix socket or plain TCP, with httpx.
Every call has a bounded timeout; every failure becomes an :class:`EngineError` (or
:class:`EngineUnreachableError` when nothing answered) whose message names the host.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import httpx

from sluicegate.errors import SluicegateError
from sluicegate.spec.service import parse_host_url

__all__ = ["Engine", "EngineError", "EngineUnreachableError", "demux_logs"]

API = "/v1.41"
_TIMEOUT = 10.0  # seconds for a plain call
_PULL_TIMEOUT = 300.0  # seconds a pull may take in all
_LOG_CAP = 1 << 20  # bytes of logs read at most in one call


class EngineError(SluicegateError):
    """The engine answered with an error (or garbage); ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EngineUnreachableError(EngineError):
    """Nothing answered at the engine's address (no socket, refused, timed out)."""


class Engine:
    """One engine at ``url`` (``unix:///run/podman/podman.sock``, ``tcp://host:2375``)."""

    def __init__(self, url: str, *, timeout: float = _TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        kind, where = parse_host_url(url)
        self._uds = where if kind == "unix" else None
        self._base = "http://engine" if kind == "unix" else f"http://{where}"
        self._client: httpx.AsyncClient | None = None

    def _async(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=self._uds) if self._uds else None,
                base_url=self._base + API,
                timeout=httpx.Timeout(self.timeout),
                trust_env=False,
                limits=httpx.Limits(max_connections=16, max_keepalive_connections=4),
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
        ok: tuple[int, ...] = (200, 201, 204, 304),
    ) -> Any:
        """One request; the decoded JSON answer (None when empty). EngineError otherwise."""
        try:
            response = await self._async().request(
                method,
                path,
                params=params,
                json=body,
                timeout=httpx.Timeout(timeout or self.timeout),
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return self._decode(method, path, response, ok)

    async def ping(self) -> None:
        await self.call("GET", "/_ping", timeout=min(self.timeout, 5.0))

    async def image(self, name: str) -> dict[str, Any] | None:
        """The image's inspect answer, or None when the engine does not have it."""
        try:
            found: dict[str, Any] = await self.call("GET", f"/images/{name}/json")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def pull(self, name: str) -> None:
        """Pull ``name``; EngineError with the registry's words when it cannot be had."""
        try:
            response = await self._async().post(
                "/images/create",
                params={"fromImage": name},
                timeout=httpx.Timeout(_PULL_TIMEOUT, connect=self.timeout),
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            self._decode("POST", "/images/create", response, (200,))
        for line in response.text.splitlines():  # progress lines; an error may be among them
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and item.get("error"):
                raise EngineError(f"{self.url}: cannot pull {name}: {item['error']}")

    async def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) carrying all of ``labels`` (a label given with
        the value ``""`` matches any value)."""
        wanted = [f"{k}={v}" if v else k for k, v in labels.items()]
        filters = json.dumps({"label": wanted})
        found: list[dict[str, Any]] = await self.call(
            "GET", "/containers/json", params={"all": "1", "filters": filters}
        )
        return found

    async def inspect(self, cid: str) -> dict[str, Any] | None:
        """The container's inspect answer, or None when it is gone."""
        try:
            found: dict[str, Any] = await self.call("GET", f"/containers/{cid}/json")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def create(self, name: str, config: Mapping[str, Any]) -> str:
        created = await self.call(
            "POST", "/containers/create", params={"name": name}, body=dict(config), timeout=30.0
        )
        return str(created["Id"])

    async def start(self, cid: str) -> None:
        await self.call("POST", f"/containers/{cid}/start", timeout=30.0)

    async def stop(self, cid: str, grace: float) -> None:
        """SIGTERM, SIGKILL after ``grace`` seconds (whole seconds, rounded up)."""
        seconds = int(-(-grace // 1))
        try:
            await self.call(
                "POST", f"/containers/{cid}/stop", params={"t": str(seconds)},
                timeout=seconds + 15.0,
            )  # fmt: skip
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def remove(self, cid: str) -> None:
        try:
            await self.call("DELETE", f"/containers/{cid}", params={"force": "1", "v": "1"})
        except EngineError as exc:
            if exc.status != 404:
                raise

    def logs(self, cid: str, tail: int) -> list[str]:
        """The container's last ``tail`` lines (stdout and stderr interleaved). Blocking,
        bounded by the timeout: the callers that need logs are synchronous."""
        transport = httpx.HTTPTransport(uds=self._uds) if self._uds else None
        try:
            with httpx.Client(
                transport=transport,
                base_url=self._base + API,
                timeout=httpx.Timeout(min(self.timeout, 5.0)),
                trust_env=False,
            ) as client:
                response = client.get(
                    f"/containers/{cid}/logs",
                    params={"stdout": "1", "stderr": "1", "tail": str(tail)},
                )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            self._decode("GET", "/logs", response, (200,))
        text = demux_logs(response.content[-_LOG_CAP:] if len(response.content) > _LOG_CAP
                          else response.content)  # fmt: skip
        return text.splitlines()[-tail:] if tail else []

    def _unreachable(self, exc: httpx.HTTPError) -> EngineUnreachableError:
        if isinstance(exc, httpx.TimeoutException):
            why = "no answer in time"
        elif isinstance(exc, httpx.ConnectError):
            why = _reason(exc)
        else:
            why = f"{type(exc).__name__}: {exc}"
        return EngineUnreachableError(f"the container engine at {self.url} is unreachable: {why}")

    def _decode(self, method: str, path: str, response: httpx.Response, ok: tuple[int, ...]) -> Any:
        if response.status_code not in ok:
            try:
                message = str(response.json().get("message") or response.text)
            except ValueError:
                message = response.text[:300]
            raise EngineError(
                f"{self.url}: {message.strip() or response.reason_phrase}", response.status_code
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise EngineError(f"{self.url}: {method} {path} answered no JSON") from exc


def _reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or "connection failed"


def _is_header(data: bytes, at: int) -> bool:
    return data[at] in (0, 1, 2) and data[at + 1 : at + 4] == b"\0\0\0"


def demux_logs(data: bytes) -> str:
    """The text of a logs answer: frames ``[stream, 0, 0, 0, size(4, big-endian)]`` + payload
    when the container has no TTY; raw bytes otherwise (told apart by the first header)."""
    out = bytearray()
    position = 0
    while position + 8 <= len(data) and _is_header(data, position):
        (size,) = struct.unpack(">I", data[position + 4 : position + 8])
        out += data[position + 8 : position + 8 + size]
        position += 8 + size
    if position == 0:
        return data.decode("utf-8", "replace")
    return out.decode("utf-8", "replace")
