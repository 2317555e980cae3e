"""The control plane's HTTP API (FastAPI): JSON, bearer tokens with roles, OpenAPI schema.

Errors map to one shape, ``{"error": "...", "problems": [{"path", "message"}]}``: 422 for
invalid input (with field paths), 404 unknown, 409 conflict, 401/403 auth, 503 temporary.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sluicegate import __version__
from sluicegate.api._alarm_routes import router as alarm_router
from sluicegate.api._alertmanager_routes import router as alertmanager_router
from sluicegate.api._deploy_views import deployment_view, event_view
from sluicegate.api._deployment_routes import router as deployment_router
from sluicegate.api._event_routes import router as event_router
from sluicegate.api._exposure_routes import router as exposure_router
from sluicegate.api._flag_routes import router as flag_router
from sluicegate.api._flag_sync_routes import SnapshotProvider, add_flag_sync_routes
from sluicegate.api._handlers import install_error_handlers
from sluicegate.api._health_routes import router as health_router
from sluicegate.api._limits import DEFAULT_MAX_BODY, BodyLimit
from sluicegate.api._metrics_routes import router as metrics_router
from sluicegate.api._openapi import install_openapi
from sluicegate.api._scale_routes import router as scale_router
from sluicegate.api._service_routes import router as service_router
from sluicegate.api._token_routes import router as token_router
from sluicegate.api._webhook_routes import router as webhook_router
from sluicegate.deploy.controller import Controller
from sluicegate.engines import EngineSupervisor
from sluicegate.flagservice import FlagService
from sluicegate.flagservice.snapshots import StoreSnapshotProvider
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.monitor.series import SeriesStore
from sluicegate.store import Store

__all__ = ["create_app", "deployment_view", "event_view"]


class _RefuseChangesWhilePaused:
    """Pure ASGI (no buffering of streams): while the server has stopped acting, every
    request that could change something answers 503 with the reason."""

    def __init__(self, app: ASGIApp, engines: EngineSupervisor) -> None:
        self.app = app
        self.engines = engines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        paused = self.engines.paused
        if paused and scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            await JSONResponse({"error": paused}, status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(
    controller: Controller,
    store: Store,
    insecure: bool = False,
    *,
    series: SeriesStore | None = None,
    engine: AlarmEngine | None = None,
    flags: FlagService | None = None,
    snapshots: SnapshotProvider | None = None,
    engines: EngineSupervisor | None = None,
    router_flags_env: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    default_guards: bool = True,
    allow_private_webhooks: bool = False,
) -> FastAPI:
    """The API over the controller and store; ``series`` receives pushed metrics,
    ``engine`` (the alarm loop) takes forced alarm states, ``flags`` is the flag service
    (without one, a service whose rollouts only advance if someone runs its engine),
    ``snapshots`` feeds agents and SDKs (default: read from the flag store), ``engines``
    (the server's supervisor) answers health; while it is paused, every change is refused
    with 503 and the reason. ``router_flags_env`` is the flag environment the router's flag
    rules evaluate: it cannot be deleted. ``default_guards`` says whether the controller
    runs the default canary guard (``sluice server --no-default-guards``: not), so that a new
    deployment's plan says truly what rolls it back."""
    app = FastAPI(
        title="Sluicegate",
        version=__version__,
        description="Safe releases: services, deployments, flags, events, alarms, webhooks.",
    )
    app.state.controller = controller
    app.state.store = store
    app.state.insecure = insecure
    app.state.clock = controller.clock
    app.state.series = series if series is not None else SeriesStore()
    app.state.engine = engine
    app.state.flags = flags if flags is not None else FlagService(store, controller.clock)
    app.state.engines = engines
    app.state.router_flags_env = router_flags_env or None
    app.state.default_guards = default_guards
    app.state.allow_private_webhooks = allow_private_webhooks
    app.include_router(health_router)
    app.include_router(scale_router)  # before the services' /{command} route
    app.include_router(service_router)
    app.include_router(deployment_router)
    app.include_router(event_router)
    app.include_router(token_router)
    app.include_router(metrics_router)
    app.include_router(alarm_router)
    app.include_router(alertmanager_router)
    # before flag_router, whose /v1/flags/{env}/{...} routes would shadow the stream
    app.state.flag_streams = add_flag_sync_routes(app, snapshots or StoreSnapshotProvider(store))
    app.include_router(exposure_router)
    app.include_router(flag_router)
    app.include_router(webhook_router)

    if engines is not None:
        app.add_middleware(_RefuseChangesWhilePaused, engines=engines)
    app.add_middleware(BodyLimit, max_body=max_body)  # outermost: before routing and auth

    install_error_handlers(app)
    install_openapi(app)
    return app
