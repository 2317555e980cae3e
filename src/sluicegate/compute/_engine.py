"""The container backend's client of the Docker Engine API (served by Docker and by
``podman system service``): the ``docker`` SDK's low-level :class:`docker.APIClient`,
typed and bounded.

The SDK is blocking: each call runs in this engine's own small thread pool (a hung engine
ties up its own threads, never the event loop's default pool the store's heartbeat uses)
and is awaited with a bound. Every failure becomes an :class:`EngineError` (or
:class:`EngineUnreachableError` when nothing answered) whose message names the host.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import docker
import docker.errors
import docker.transport.unixconn
import requests

from sluicegate.errors import SluicegateError
from sluicegate.spec.service import parse_host_url

__all__ = ["Engine", "EngineError", "EngineUnreachableError"]

T = TypeVar("T")

# "auto": the client asks the engine its API version (one GET /version, on first use).
# Podman 4.3 serves 1.41 at most; Docker 29 refuses anything below 1.44. No pin fits both.
_API_VERSION = "auto"
_TIMEOUT = 10.0  # seconds a plain call may take
_SLOW_TIMEOUT = 30  # create, start; also the SDK's own socket timeout for every call
_PULL_TIMEOUT = 300.0  # seconds a pull may take in all
_LOG_TIMEOUT = 5.0  # logs are read synchronously (from the deploy loop too): keep it short
_LOG_CAP = 1 << 20  # bytes of logs kept at most from one read
_THREADS = 4  # per engine
_CLOSE_WAIT = 2.0  # seconds aclose waits for calls in flight


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
        parse_host_url(url)  # ValueError for what the spec would refuse (TLS, ssh://)
        self.url = url
        self.timeout = timeout
        self._client: docker.APIClient | None = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="sluicegate-engine")
        self._closed = False
        self._busy = 0  # calls running in the pool

    # -- plumbing ---------------------------------------------------------------------------

    def _api(self) -> docker.APIClient:
        """The SDK client, made on first use (in a worker thread: "auto" asks the engine,
        so the lock is not held meanwhile)."""
        client = self._client
        if client is not None:
            return client
        made = docker.APIClient(base_url=self.url, version=_API_VERSION, timeout=_SLOW_TIMEOUT)
        made.trust_env = False  # no HTTP(S)_PROXY from the environment for tcp:// engines
        with self._lock:
            if not self._closed and self._client is None:
                self._client = made
                return made
            existing = None if self._closed else self._client
        made.close()  # closed meanwhile, or another thread was first
        if existing is None:
            raise EngineError(f"{self.url}: the client is closed")
        return existing

    def _sync(self, fn: Callable[[docker.APIClient], T]) -> T:
        """Run one SDK call; its errors translated to ours (naming the host)."""
        with self._lock:
            self._busy += 1
        try:
            return fn(self._api())
        except docker.errors.APIError as exc:
            message = str(exc.explanation or exc).strip()
            raise EngineError(f"{self.url}: {message}", exc.status_code) from exc
        except requests.exceptions.JSONDecodeError as exc:
            raise EngineError(f"{self.url}: answered no JSON ({exc})") from exc
        except requests.exceptions.Timeout as exc:
            raise self._unreachable("no answer in time") from exc
        except requests.exceptions.RequestException as exc:
            raise self._unreachable(_reason(exc)) from exc
        except docker.errors.DockerException as exc:  # e.g. the version lookup failed
            raise self._unreachable(_reason(exc)) from exc
        finally:
            with self._lock:
                self._busy -= 1

    async def _call(self, fn: Callable[[docker.APIClient], T], bound: float | None = None) -> T:
        if self._closed:
            raise EngineError(f"{self.url}: the client is closed")
        wait = bound or self.timeout
        future = asyncio.get_running_loop().run_in_executor(
            self._pool, functools.partial(self._sync, fn)
        )
        try:
            return await asyncio.wait_for(future, wait)
        except TimeoutError as exc:  # the thread ends by the SDK's own socket timeout
            raise self._unreachable(f"no answer in {wait:g}s") from exc

    def _unreachable(self, why: str) -> EngineUnreachableError:
        return EngineUnreachableError(f"the container engine at {self.url} is unreachable: {why}")

    async def aclose(self) -> None:
        """Let calls in flight end (2 s at most), then close the client's connections; a
        call still hung then ends by its socket timeout and its connection is closed."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        for _ in range(int(_CLOSE_WAIT / 0.02)):
            if not self._busy:
                break
            await asyncio.sleep(0.02)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- the calls --------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._call(lambda api: api.ping(), min(self.timeout, 5.0))

    async def image(self, name: str) -> dict[str, Any] | None:
        """The image's inspect answer, or None when the engine does not have it."""
        try:
            found: dict[str, Any] = await self._call(
                lambda api: api.inspect_image(name)  # type: ignore[no-untyped-call]  # stub gap
            )
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def pull(self, name: str) -> None:
        """Pull ``name``; EngineError with the registry's words when it cannot be had.
        The SDK reads a pull without a socket timeout: the bound here is the caller's."""

        def pull(api: docker.APIClient) -> None:
            errors = [  # read to the end, so the streamed answer's connection is released
                str(item["error"])
                for item in api.pull(name, stream=True, decode=True)
                if isinstance(item, dict) and item.get("error")
            ]
            if errors:
                raise EngineError(f"{self.url}: cannot pull {name}: {errors[0]}")

        await self._call(pull, _PULL_TIMEOUT)

    async def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) carrying all of ``labels`` (a label given with
        the value ``""`` matches any value)."""
        wanted = [f"{k}={v}" if v else k for k, v in labels.items()]
        found: list[dict[str, Any]] = await self._call(
            lambda api: api.containers(all=True, filters={"label": wanted})
        )
        return found

    async def inspect(self, cid: str) -> dict[str, Any] | None:
        """The container's inspect answer, or None when it is gone."""
        try:
            found: dict[str, Any] = await self._call(lambda api: api.inspect_container(cid))
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def create(self, name: str, config: Mapping[str, Any]) -> str:
        created = await self._call(
            lambda api: api.create_container_from_config(  # type: ignore[no-untyped-call]
                dict(config), name
            ),
            _SLOW_TIMEOUT,
        )
        return str(created["Id"])

    async def start(self, cid: str) -> None:
        await self._call(lambda api: api.start(cid), _SLOW_TIMEOUT)

    async def stop(self, cid: str, grace: float) -> None:
        """SIGTERM, SIGKILL after ``grace`` seconds (whole seconds, rounded up)."""
        seconds = int(-(-grace // 1))
        try:
            await self._call(lambda api: api.stop(cid, timeout=seconds), seconds + 15.0)
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def remove(self, cid: str) -> None:
        try:
            await self._call(lambda api: api.remove_container(cid, v=True, force=True))
        except EngineError as exc:
            if exc.status != 404:
                raise

    def logs(self, cid: str, tail: int) -> list[str]:
        """The container's last ``tail`` lines (stdout and stderr interleaved; the SDK takes
        the frames apart). Blocking, at most 5 s: the callers that need logs are synchronous."""
        if self._closed:
            raise EngineError(f"{self.url}: the client is closed")
        if tail <= 0:
            return []
        future = self._pool.submit(
            self._sync, lambda api: api.logs(cid, stdout=True, stderr=True, tail=tail)
        )
        wait = min(self.timeout, _LOG_TIMEOUT)
        try:
            data: bytes = future.result(timeout=wait)
        except TimeoutError as exc:
            future.cancel()
            raise self._unreachable(f"no answer in {wait:g}s") from exc
        text = data[-_LOG_CAP:].decode("utf-8", "replace")
        return text.splitlines()[-tail:]


def _connect_closing_on_failure(self: docker.transport.unixconn.UnixHTTPConnection) -> None:
    """docker 7.x's unix ``connect`` leaves its socket open when the connect fails (no
    socket file, refused): a ResourceWarning per failed call. The same, closing it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(self.timeout)
        sock.connect(self.unix_socket)
    except BaseException:
        sock.close()
        raise
    self.sock = sock


docker.transport.unixconn.UnixHTTPConnection.connect = _connect_closing_on_failure  # type: ignore[method-assign]


def _reason(exc: BaseException) -> str:
    """The operating system's words for a failed connection ("connection refused")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or "connection failed"
