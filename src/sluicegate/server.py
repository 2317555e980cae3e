"""The embedded server: store, router process, local compute, controller, alarm loop, flag
rollouts, webhooks and API in one.

``sluice server`` runs everything on one machine with no external services. The router runs
as its own process (adopted again after a restart) and replicas outlive the server, so a
control-plane crash never interrupts user traffic. On first start an admin token is printed;
only its hash is kept.

Start-up binds the API port first, then takes the state dir's lock, so a taken port or a
second server on the same state dir fails with one line and nothing started. Every
background loop runs under one :class:`~sluicegate.engines.EngineSupervisor`; the store
engine writes a heartbeat and watches the state dir, and pauses every engine when the
state dir or database is deleted or replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from sluicegate._api_tls import api_tls
from sluicegate._heap import freeze_startup_heap
from sluicegate._http_head import HEADER_TIMEOUT, bounded_h11
from sluicegate._logging import LogSettings
from sluicegate._private import private_dir, write_secret
from sluicegate._startup import StateDirLock, StateWatch, bind_api_socket
from sluicegate.api import create_app
from sluicegate.clock import SystemClock
from sluicegate.compute import ComputeSelector, ContainerCompute, ExternalCompute, LocalCompute
from sluicegate.compute.base import ReplicaEvent
from sluicegate.console import install_console
from sluicegate.deploy.controller import FAILURE_BOUND, Controller
from sluicegate.engines import EngineSupervisor, every
from sluicegate.errors import SluicegateError
from sluicegate.flagservice import AlarmLookup, FlagService, RouterFlagSync
from sluicegate.monitor._alarm_records import sync_alarms
from sluicegate.monitor._exposure_datapoints import ExposureDatapoints
from sluicegate.monitor._recent import RecentSeconds
from sluicegate.monitor._router_datapoints import RouterDatapoints
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.monitor.guard_set import AlarmGuards, alarm_lookup
from sluicegate.monitor.guards import DefaultGuards
from sluicegate.monitor.prometheus import PrometheusSource
from sluicegate.monitor.rollups import RollupWriter
from sluicegate.monitor.series import DEFAULT_MAX_SERIES, DEFAULT_WINDOW, PushSource, SeriesStore
from sluicegate.monitor.sources import RouterSource, Sources
from sluicegate.notify import RetryPolicy, WebhookEngine
from sluicegate.router.supervisor import RouterSupervisor
from sluicegate.router.traffic import RouterTraffic
from sluicegate.spec import ServiceSpec
from sluicegate.store import Store

__all__ = ["ServerSettings", "run_server", "serve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """What ``sluice server`` is told: where state lives, its ports, engines and logging."""

    state_dir: Path
    port: int = 7070
    host: str = "127.0.0.1"
    database: str = ""  # sqlite path or postgresql:// URL; "" = <state_dir>/sluicegate.db
    insecure: bool = False
    router_admin_port: int | None = None
    tick: float = 0.25
    default_guards: bool = True
    push_window: int = DEFAULT_WINDOW
    push_max_series: int = DEFAULT_MAX_SERIES
    prometheus_url: str | None = None  # alarms with source: prometheus query it
    prometheus_token: str | None = field(default=None, repr=False)  # never in a log line
    webhook_timeout: float = 10.0
    webhook_attempts: int = 12
    router_flags_env: str = "prod"  # flag rules evaluate it; "" = none
    failure_bound: float = FAILURE_BOUND  # a deployment failing to apply this long: FAILED
    allow_private_webhooks: bool = False  # webhooks may reach loopback/private addresses
    allow_link_local_endpoints: bool = False  # external endpoints on link-local addresses
    container_host: str | None = None  # engine for compute.container without hosts
    header_timeout: float = HEADER_TIMEOUT  # a request head must arrive within this
    admin_token_file: Path | None = None  # the first admin token goes there (0600), not stdout
    tls_cert: Path | None = None  # HTTPS for the API (with tls_key); docs/tls.md
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # mutual TLS: clients need a certificate this CA signed
    insecure_http: bool = False  # plain HTTP beyond loopback (a TLS proxy in front)
    log: LogSettings = field(default_factory=LogSettings)  # also the router's

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        if not self.database:
            object.__setattr__(self, "database", str(self.state_dir / "sluicegate.db"))


async def serve(
    settings: ServerSettings,
    stop: asyncio.Event,
    announce: Callable[[str], None] = print,
    flag_alarms: AlarmLookup | None = None,
) -> None:
    tls = api_tls(  # checked before any side effect, like the port
        settings.host,
        settings.tls_cert,
        settings.tls_key,
        settings.tls_client_ca,
        settings.insecure_http,
    )
    sock = bind_api_socket(settings.host, settings.port)  # before any side effect
    lock: StateDirLock | None = None
    try:
        private_dir(settings.state_dir)  # secrets and logs inside: owner only
        lock = StateDirLock(settings.state_dir)
        lock.acquire()
        await _serve(settings, stop, announce, flag_alarms, sock, tls)
    finally:
        sock.close()
        if lock is not None:
            lock.release()


async def _serve(
    settings: ServerSettings,
    stop: asyncio.Event,
    announce: Callable[[str], None],
    flag_alarms: AlarmLookup | None,
    sock: socket.socket,
    tls: dict[str, Any],
) -> None:
    supervisor = RouterSupervisor(settings.state_dir, settings.router_admin_port, log=settings.log)
    supervisor.refuse_strays()  # before the store: a deleted state dir is not made afresh
    store = Store.open(settings.database)
    watch = StateWatch(settings.state_dir, settings.database)
    prometheus: PrometheusSource | None = None
    engines = EngineSupervisor()
    ready = False
    try:
        await supervisor.ensure()
        controllers: list[Controller] = []

        def on_change(event: ReplicaEvent) -> None:
            for c in controllers:
                c.on_replica_event(event)

        compute = LocalCompute(settings.state_dir, on_change=on_change, supervise=False)
        containers = ContainerCompute(default_host=settings.container_host, on_change=on_change)
        computes = ComputeSelector(
            local=compute,
            external=ExternalCompute(allow_link_local=settings.allow_link_local_endpoints),
            container=containers,
        )
        clock = SystemClock()
        # One traffic driver over the one router handle, given to everyone who routes or
        # reads traffic; both follow the router across restarts.
        traffic = RouterTraffic(supervisor.client())
        guards = DefaultGuards(RecentSeconds(RouterSource(traffic), clock), clock=clock)
        series = SeriesStore(settings.push_window, settings.push_max_series)
        sources = Sources(
            router=RouterDatapoints(traffic),
            push=PushSource(series),
            exposures=ExposureDatapoints(store),
        )
        if settings.prometheus_url:  # alarms with `source: prometheus` query it
            prometheus = PrometheusSource(
                settings.prometheus_url, bearer_token=settings.prometheus_token
            )
            sources.by_name["prometheus"] = prometheus
        alarm_engine = AlarmEngine(store, sources, clock)
        rollups = RollupWriter(store, series, traffic, clock)
        _sync_all_alarms(store)
        checks = AlarmGuards(store, guards if settings.default_guards else None)
        controller = Controller(
            store,
            computes,
            traffic,
            clock,
            alarms=checks,
            hold=guards.hold if settings.default_guards else None,
            failure_bound=settings.failure_bound,
        )
        controllers.append(controller)
        await controller.recover()
        flags = FlagService(store, clock, flag_alarms or alarm_lookup(store))
        await flags.rollouts.recover()
        notifier = WebhookEngine(
            store,
            clock,
            timeout=settings.webhook_timeout,
            policy=RetryPolicy(max_attempts=settings.webhook_attempts),
            allow_private=settings.allow_private_webhooks,
        )

        async def watch_router() -> None:
            """Restart the router if it dies, then put every route back."""
            if supervisor.alive():
                return
            log.error("the router process is gone; starting it again")
            await supervisor.ensure()
            await controller.recover()

        async def check_store() -> None:
            """The state dir is the one we started with, and the store takes writes."""
            problem = watch.problem()
            if problem is not None:
                engines.pause(problem)
                return
            await asyncio.to_thread(store.heartbeat.beat, os.getpid())

        async def check_replicas() -> None:
            compute.check()
            await containers.check()

        engines.add("deploy", controller.tick, every(settings.tick), timeout=600, stall_after=120)
        engines.add("flag-rollouts", flags.rollouts.tick, every(settings.tick))
        engines.add(
            "alarms",
            lambda: alarm_engine.tick(clock.now()),
            alarm_engine.wait_next,
            wait_first=True,
        )
        engines.add(
            "rollups",
            rollups.tick,
            rollups.wait_next,
            wait_first=True,
            stall_after=200,
            timeout=120,
        )
        engines.add("webhooks", notifier.tick, notifier.wait_next)
        engines.add("router-watch", watch_router, every(1.0))
        engines.add("replicas", check_replicas, every(0.5))
        engines.add("store", check_store, every(1.0), stall_after=15)
        flag_sync: RouterFlagSync | None = None
        if settings.router_flags_env:
            flag_sync = RouterFlagSync(store, settings.router_flags_env, supervisor.client())
            engines.add("router-flags", flag_sync.tick, every(flag_sync.interval))
        app = create_app(
            controller,
            store,
            settings.insecure,
            series=series,
            engine=alarm_engine,
            flags=flags,
            engines=engines,
            router_flags_env=settings.router_flags_env,
            default_guards=settings.default_guards,
            allow_private_webhooks=settings.allow_private_webhooks,
        )
        app.state.sources = sources
        console = install_console(app, clock, guards=guards)  # /ui/: the web console
        # Long requests get 5 s to finish on shutdown; flag streams are ended before that.
        # At most 1,024 requests in flight (more get 503 at once), idle keep-alive 5 s.
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,
            limit_concurrency=1024,
            timeout_keep_alive=5,
            http=bounded_h11(settings.header_timeout),
            **tls,
        )
        server = uvicorn.Server(config)
        engines.start()
        api_task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started and not api_task.done():
            await asyncio.sleep(0.01)
        if api_task.done():
            api_task.result()  # raises what stopped the API
            return
        ready = True
        if not store.tokens.list() and not settings.insecure:  # made once all is up
            token = store.tokens.create("admin", "first-admin")
            if settings.admin_token_file is not None:
                write_secret(settings.admin_token_file, token)
                announce(f"admin token written to {settings.admin_token_file} (0600)")
            else:
                announce(f"admin token (shown once, store it safely): {token}")
        freeze_startup_heap()
        announce(
            f"sluice server ready on {'https' if tls else 'http'}://{settings.host}:{settings.port}"
            f"{' (INSECURE: no token needed)' if settings.insecure else ''}"
        )
        # uvicorn captures SIGINT/SIGTERM while it serves and raises them again when done.
        stopper = asyncio.get_running_loop().create_task(stop.wait())
        await asyncio.wait([stopper, api_task], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        app.state.flag_streams.close()
        console.close()  # its live views end too
        server.should_exit = True
        await engines.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await api_task
        await notifier.close()  # attempts in flight stay pending: sent again after a restart
        await computes.aclose()
    finally:
        await engines.stop()
        if prometheus is not None:
            await prometheus.aclose()
        await supervisor.aclose()
        if not ready and supervisor.info is not None and not supervisor.adopted:
            supervisor.stop()  # a failed start leaves no router of its own behind
        # Otherwise replicas and the router keep running: they serve users meanwhile.
        store.close()


def _sync_all_alarms(store: Store) -> None:
    """Alarms follow the stored specs (a spec applied before alarms existed, say)."""
    for service in store.services.list():
        try:
            sync_alarms(store, ServiceSpec.model_validate(service.spec), "server")
        except (SluicegateError, ValueError) as exc:
            log.error("service %s: cannot set up its alarms: %s", service.name, exc)


def run_server(settings: ServerSettings) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
