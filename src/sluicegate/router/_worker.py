"""Entry point of one router worker process: a data plane driven over a socketpair.

Run as ``python -m sluicegate.router._worker FD INDEX`` by :mod:`_workers`; not for users.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from sluicegate._heap import freeze_startup_heap
from sluicegate._logging import LogSettings, configure_logging
from sluicegate.clock import SystemClock
from sluicegate.errors import SluicegateError
from sluicegate.router._dataplane import DataPlane
from sluicegate.router._workers import encode_error
from sluicegate.spec.router import RouterConfig

log = logging.getLogger(__name__)


async def _dispatch(plane: DataPlane, op: str, args: list[Any]) -> Any:
    if op == "apply_config":
        await plane.apply_config(RouterConfig.model_validate(args[0]))
        return None
    if op == "prepare_config":
        await plane.prepare_config(RouterConfig.model_validate(args[0]))
        return None
    if op == "commit_config":
        await plane.commit_config()
        return None
    if op == "abort_config":
        plane.abort_config()
        return None
    if op == "set_weights":
        return plane.set_weights(args[0], args[1], args[2])
    if op == "set_flags":
        plane.set_flags(int(args[0]), args[1])
        return None
    if op == "set_health":
        plane.set_health(args[0], args[1], args[2])
        return None
    if op == "register":
        plane.register(args[0], args[1])
        return None
    if op == "deregister":
        plane.deregister(args[0], args[1], args[2])
        return None
    if op == "metrics":
        return plane.metrics.snapshot(int(args[0]))
    if op == "status":
        return plane.status()
    if op == "check_certificates":
        return plane.check_certificates(force=True)
    raise SluicegateError(f"unknown worker operation {op!r}")


async def serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=64 * 1024 * 1024)
    key = bytes.fromhex(os.environ["SLUICE_WORKER_STICKY_KEY"])
    plane = DataPlane(
        key,
        SystemClock(),
        reuse_port=True,
        metrics_enabled=os.environ.get("SLUICE_ROUTER_METRICS", "1") != "0",
    )
    started = False
    while True:
        line = await reader.readline()
        if not line:
            break  # the parent closed the channel: stop
        msg = json.loads(line)
        try:
            if msg["op"] == "apply_config" and not started:
                flags = msg["args"][1] if len(msg["args"]) > 1 else None
                if flags is not None:
                    plane.set_flags(int(flags[0]), flags[1])
                await plane.start(RouterConfig.model_validate(msg["args"][0]))
                freeze_startup_heap()
                started = True
                reply: dict[str, Any] = {"ok": None}
            else:
                reply = {"ok": await _dispatch(plane, msg["op"], msg["args"])}
        except SluicegateError as exc:
            reply = {"error": encode_error(exc)}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
    await plane.stop()


def main() -> None:
    fd, index = int(sys.argv[1]), sys.argv[2]
    settings = LogSettings.from_env(os.environ)  # the router's, handed on by WorkerPlane
    configure_logging(settings.level, json=settings.json, tag=f"worker-{index}")
    log.debug("router worker %s starting (pid %d)", index, os.getpid())
    # The parent handles signals and tells workers to stop by closing the channel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the parent's: it asks each worker
    try:
        import uvloop

        uvloop.run(serve(fd))
    except ImportError:  # pragma: no cover - uvloop is a hard dependency
        asyncio.run(serve(fd))


if __name__ == "__main__":
    main()
