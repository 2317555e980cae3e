"""Assemble and run a standalone router: data plane(s), control side, admin API, signals."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from sluicegate._heap import freeze_startup_heap
from sluicegate._logging import DEFAULT_LOG, LogSettings
from sluicegate.clock import SystemClock
from sluicegate.errors import AuthError, SluicegateError, TransientError
from sluicegate.router._admin_http import AdminLimits, serve_admin
from sluicegate.router._control import RouterController
from sluicegate.router._dataplane import DataPlane
from sluicegate.router._fds import RESERVE, raise_nofile_limit
from sluicegate.router._listen import check_ports, host_port, open_listener, reason
from sluicegate.router._planes import LocalPlane, PlaneHandle
from sluicegate.router._workers import WorkerPlane
from sluicegate.spec.router import RouterConfig

__all__ = ["RouterSettings", "run_router", "serve_router"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouterSettings:
    """Everything outside the config file: process layout, secrets (from the environment)
    and how the router and its workers log."""

    workers: int = 1
    insecure: bool = False
    token: str | None = field(default=None, repr=False)
    sticky_key: bytes | None = field(default=None, repr=False)
    metrics: bool = True
    log: LogSettings = field(default_factory=LogSettings)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")

    @classmethod
    def from_env(
        cls,
        config: RouterConfig,
        workers: int = 1,
        insecure: bool = False,
        log_settings: LogSettings = DEFAULT_LOG,
    ) -> RouterSettings:
        token = os.environ.get(config.admin.token_env) or None
        if token is None and not insecure:
            raise AuthError(
                f"the admin API needs a token: set {config.admin.token_env} "
                "(or start with --insecure for local development only)"
            )
        secret = os.environ.get(config.sticky_secret_env)
        if secret:
            key = hashlib.sha256(secret.encode()).digest()
        else:
            log.warning(
                "%s is not set: sticky cookies are signed with a random key and "
                "clients will be re-balanced after a restart",
                config.sticky_secret_env,
            )
            key = secrets.token_bytes(32)
        metrics = os.environ.get("SLUICE_ROUTER_METRICS", "1") != "0"
        return cls(workers, insecure, None if insecure else token, key, metrics, log_settings)


async def serve_router(
    config: RouterConfig,
    settings: RouterSettings,
    stop: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
    reread: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` is set, then shut down gracefully. Each time ``reread`` is set
    (SIGHUP), every data plane re-reads its TLS certificate files.

    Every port is tried before anything starts: one that cannot be opened raises
    TransientError naming it and its field, and leaves no worker behind.
    """
    log.debug("router starting with %s", settings)
    admin_sock = _open_ports(config, settings)
    key = settings.sticky_key or secrets.token_bytes(32)
    planes: list[PlaneHandle] = []
    controller: RouterController | None = None
    try:
        if settings.workers == 1:
            plane = DataPlane(key, SystemClock(), metrics_enabled=settings.metrics)
            planes.append(LocalPlane(plane))
            await plane.start(config)
        else:
            for i in range(settings.workers):
                worker = WorkerPlane(
                    i,
                    key,
                    settings.metrics,
                    lambda: controller.config if controller else config,
                    lambda: controller.flag_document if controller else None,
                    log=settings.log,
                )
                planes.append(worker)
                await worker.start()
        controller = RouterController(config, planes)
        await controller.start()
        public = frozenset(
            {"/healthz", "/metrics"} if config.admin.public_metrics else {"/healthz"}
        )
        admin = await serve_admin(
            controller.handle,
            config.admin.address,
            config.admin.port,
            settings.token,
            public,
            sock=admin_sock,
            limits=admin_limits(config),
        )
    except BaseException:
        admin_sock.close()
        if controller is not None:
            await controller.stop()
        else:
            await asyncio.gather(*(p.stop() for p in planes), return_exceptions=True)
        raise
    listeners = ", ".join(f"{lst.name}@{lst.address}:{lst.port}" for lst in config.listeners)
    log.info(
        "router ready: listeners %s, admin %s:%d, %d worker(s)%s",
        listeners,
        config.admin.address,
        config.admin.port,
        settings.workers,
        " (INSECURE: admin API without token)" if settings.insecure else "",
    )
    freeze_startup_heap()  # a GC pause here is a latency spike for every user
    if on_ready is not None:
        on_ready()
    rereader = None
    if reread is not None:
        rereader = asyncio.get_running_loop().create_task(_reread(controller, reread))
    await stop.wait()
    log.info("router stopping")
    if rereader is not None:
        rereader.cancel()
    admin.close()
    await controller.stop()


async def _reread(controller: RouterController, reread: asyncio.Event) -> None:
    while True:
        await reread.wait()
        reread.clear()
        try:
            refused = await controller.check_certificates()
        except SluicegateError as exc:  # a worker restarting: it loads the files at start
            log.warning("SIGHUP: not every data plane re-read its certificates: %s", exc)
            continue
        if refused:
            log.error(
                "SIGHUP: certificate files refused, the previous ones keep serving: %s",
                "; ".join(refused),
            )
        else:
            log.info("SIGHUP: certificate files re-read")


def admin_limits(config: RouterConfig) -> AdminLimits:
    """The admin port's bounds: its own section, and the listeners' size and time limits."""
    return AdminLimits(
        max_url=config.limits.max_request_line,
        max_header_bytes=config.limits.max_header_bytes,
        max_body=config.admin.max_body_bytes,
        header_timeout=config.timeouts.header,
        body_timeout=config.admin.body_timeout,
        idle_timeout=config.timeouts.idle,
        max_connections=config.admin.max_connections,
    )


def _open_ports(config: RouterConfig, settings: RouterSettings) -> socket.socket:
    """Open the admin socket (kept) and try every listener port as the planes will open it;
    TransientError with one clause per port that cannot be opened."""
    admin = config.admin
    failures = []
    sock = None
    try:
        sock = open_listener(admin.address, admin.port)
    except OSError as exc:
        failures.append(
            f"cannot listen on {host_port(admin.address, admin.port)} (admin.port): {reason(exc)}"
        )
    failures += check_ports(
        ((f"listeners[{i}].port", lst.address, lst.port) for i, lst in enumerate(config.listeners)),
        reuse_port=settings.workers > 1,
    )
    if failures:
        if sock is not None:
            sock.close()
        raise TransientError("; ".join(failures))
    assert sock is not None
    return sock


def run_router(
    config: RouterConfig, settings: RouterSettings, on_ready: Callable[[], None] | None = None
) -> None:
    """Blocking entry point for the CLI: uvloop, SIGTERM/SIGINT handling, and the most file
    descriptors the process may have (workers inherit the limit)."""
    import uvloop

    _raise_fd_limit(config)

    async def main() -> None:
        stop, reread = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reread.set)
        await serve_router(config, settings, stop, on_ready, reread)

    uvloop.run(main())


def _raise_fd_limit(config: RouterConfig) -> None:
    """Raise RLIMIT_NOFILE's soft limit to the hard one, and say what the listeners' caps
    need: a client connection takes a descriptor and usually one more upstream."""
    before, after = raise_nofile_limit()
    if after != before:
        log.info("open-file limit (RLIMIT_NOFILE) raised from %d to %d", before, after)
    else:
        log.info("open-file limit (RLIMIT_NOFILE) is %d (the hard limit)", after)
    wanted = sum(lst.max_connections for lst in config.listeners)
    if 2 * wanted + RESERVE > after:
        log.warning(
            "listeners may hold %d client connections (their max_connections) but with an"
            " open-file limit of %d each process refuses new ones at about %d: raise the hard"
            " limit (LimitNOFILE=, ulimit -Hn) or lower max_connections",
            wanted,
            after,
            max(0, (after - RESERVE) // 2),
        )
