"""``--workers N``: data planes in child processes sharing the listener ports (SO_REUSEPORT).

The parent keeps the control side and talks to each worker over a socketpair, one JSON
object per line: ``{"op": ..., "args": [...]}`` answered by ``{"ok": result}`` or
``{"error": {"type": ..., "message": ..., "problems": [...]}}``. A worker that dies is
started again with the current configuration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

from sluicegate._logging import DEFAULT_LOG, LogSettings
from sluicegate.errors import (
    ConflictError,
    NotFoundError,
    Problem,
    SluicegateError,
    SpecError,
    TransientError,
)
from sluicegate.spec.router import RouterConfig

__all__ = ["WorkerPlane", "encode_error", "raise_error"]

log = logging.getLogger(__name__)
_LINE_LIMIT = 256 * 1024 * 1024  # a metrics snapshot of many series can be large
_ERRORS: dict[str, type[SluicegateError]] = {
    "NotFoundError": NotFoundError,
    "ConflictError": ConflictError,
    "TransientError": TransientError,
}


def encode_error(exc: SluicegateError) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, SpecError):
        out["type"] = "SpecError"
        out["problems"] = [[p.path, p.message] for p in exc.problems]
    return out


def raise_error(data: dict[str, Any]) -> None:
    if data["type"] == "SpecError":
        raise SpecError([Problem(p, m) for p, m in data["problems"]])
    raise _ERRORS.get(data["type"], SluicegateError)(data["message"])


class WorkerPlane:
    """A data plane in a child process; every call waits for the worker's answer."""

    def __init__(
        self,
        index: int,
        sticky_key: bytes,
        metrics: bool,
        current: Callable[[], RouterConfig],
        current_flags: Callable[[], tuple[int, Mapping[str, Any]] | None] = (lambda: None),
        log: LogSettings = DEFAULT_LOG,
    ) -> None:
        """``current``/``current_flags``: what a (re)started worker is given first; ``log``
        how it logs."""
        self.index = index
        self._log = log
        self._current_flags = current_flags
        self._key = sticky_key
        self._metrics = metrics
        self._current = current
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        await self._spawn()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _spawn(self) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        # The key reaches the worker through its environment, never its argv (visible in ps).
        env["SLUICE_WORKER_STICKY_KEY"] = self._key.hex()
        env["SLUICE_ROUTER_METRICS"] = "1" if self._metrics else "0"
        env.update(self._log.env())
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sluicegate.router._worker",
            str(child.fileno()),
            str(self.index),
            pass_fds=(child.fileno(),),
            env=env,
        )
        child.close()
        self._reader, self._writer = await asyncio.open_unix_connection(
            sock=parent, limit=_LINE_LIMIT
        )
        # The flag set rides with the first config, so the worker never serves without it.
        flags = self._current_flags()
        await self._call(
            "apply_config",
            self._current().model_dump(mode="json"),
            None if flags is None else [flags[0], dict(flags[1])],
        )
        self._ready.set()

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            self._ready.clear()
            log.error("router worker %d exited with %s; starting it again", self.index, code)
            await asyncio.sleep(0.2)
            try:
                await self._spawn()
            except (OSError, SluicegateError) as exc:
                log.error("router worker %d could not restart: %s", self.index, exc)
                await asyncio.sleep(1.0)

    async def _call(self, op: str, *args: Any) -> Any:
        async with self._lock:
            if self._writer is None or self._reader is None:
                raise TransientError(f"router worker {self.index} is not running")
            try:
                self._writer.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
                await self._writer.drain()
                line = await self._reader.readline()
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise TransientError(f"router worker {self.index} did not answer") from exc
            if not line:
                raise TransientError(f"router worker {self.index} went away")
            reply = json.loads(line)
            if "error" in reply:
                raise_error(reply["error"])
            return reply.get("ok")

    async def check_certificates(self) -> list[str]:
        return list(await self._call("check_certificates"))

    async def apply_config(self, config: RouterConfig) -> None:
        await self._call("apply_config", config.model_dump(mode="json"))

    async def prepare_config(self, config: RouterConfig) -> None:
        await self._call("prepare_config", config.model_dump(mode="json"))

    async def commit_config(self) -> None:
        await self._call("commit_config")

    async def abort_config(self) -> None:
        await self._call("abort_config")

    async def set_weights(
        self, listener: str, weights: Mapping[str, int], rule: int | None
    ) -> dict[str, int]:
        result: dict[str, int] = await self._call("set_weights", listener, dict(weights), rule)
        return result

    async def set_health(self, group: str, target: str, healthy: bool) -> None:
        await self._call("set_health", group, target, healthy)

    async def set_flags(self, version: int, document: Mapping[str, Any]) -> None:
        await self._call("set_flags", version, dict(document))

    async def register(self, group: str, target: str) -> None:
        await self._call("register", group, target)

    async def deregister(self, group: str, target: str, delay: float | None) -> None:
        await self._call("deregister", group, target, delay)

    async def metrics(self, window: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("metrics", window)
        return result

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("status")
        return result

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._writer is not None:
            self._writer.close()  # the worker stops when its channel closes
        if self._proc is not None and self._proc.returncode is None:
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
