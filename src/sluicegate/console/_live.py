"""Live updates over Server-Sent Events: the overview's rows and a deployment's live panel,
re-rendered on the server and sent when they change (htmx's SSE extension swaps them in).

Bounded: at most ``max_streams`` streams at once (more get 503), each ends after
``stream_lifetime`` seconds (the browser reconnects), when the session ends (logout,
revoked token), when the client goes away and when the server shuts down. A comment line
every 15 s keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from sluicegate.console._flag_alarm_pages import alarm_view, flag_rollout
from sluicegate.console._gather import activity_events, deployment_page, overview
from sluicegate.console._web import LoginRequired, console_of, viewer_of
from sluicegate.deploy.controller import Controller
from sluicegate.errors import SluicegateError
from sluicegate.flagservice import FlagService
from sluicegate.store import Store

__all__ = ["router", "sse_message"]

router = APIRouter(prefix="/ui/live", include_in_schema=False)


def loop_time() -> float:
    return asyncio.get_running_loop().time()


INTERVAL = 0.25  # how often the fragment is rendered again (a step shows within 1 s)
KEEPALIVE = 15.0


def sse_message(event: str, html: str) -> str:
    """One SSE message: every line of ``html`` as its own ``data:`` line."""
    lines = html.splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _stream(
    request: Request, event: str, render: Callable[[], Awaitable[str]]
) -> StreamingResponse:
    try:
        viewer_of(request)
    except LoginRequired:
        raise HTTPException(401, "log in to the console first") from None
    console = console_of(request)
    if console.streams >= console.max_streams:
        raise HTTPException(503, f"at most {console.max_streams} live views at once; reload later")
    console.streams += 1
    loop = asyncio.get_running_loop()

    async def body() -> AsyncIterator[str]:
        try:
            started = last_sent = loop.time()
            previous = None
            while not console.closed and loop.time() - started < console.stream_lifetime:
                if await request.is_disconnected():
                    return
                try:
                    viewer_of(request)
                except LoginRequired:
                    return
                try:
                    html = await render()
                except SluicegateError as exc:
                    html = f"<p class='error'>{exc}</p>"
                if html != previous:
                    previous, last_sent = html, loop.time()
                    yield sse_message(event, html)
                elif loop.time() - last_sent > KEEPALIVE:
                    last_sent = loop.time()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(INTERVAL)
        finally:
            console.streams -= 1

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/overview")
async def live_overview(
    request: Request, filter: Annotated[str, Query(pattern="^(all|needs-action)$")] = "all"
) -> StreamingResponse:
    store: Store = request.app.state.store
    ctl: Controller = request.app.state.controller
    console = console_of(request)
    template = console.templates.get_template("_overview_rows.html")

    async def make() -> str:
        rows = await overview(store, ctl, console.guards)
        if filter == "needs-action":
            rows = [r for r in rows if r.needs_action]
        return template.render(rows=rows)

    async def render() -> str:
        return await console.shared.get(f"overview:{filter}", loop_time(), make)

    return _stream(request, "overview", render)


@router.get("/deployments/{dep_id}")
async def live_deployment(request: Request, dep_id: str) -> StreamingResponse:
    store: Store = request.app.state.store
    ctl: Controller = request.app.state.controller
    console = console_of(request)
    store.deployments.get(dep_id)  # 404 before the stream starts
    template = console.templates.get_template("_deployment_live.html")

    async def make() -> str:
        page = await deployment_page(store, ctl, console.guards, dep_id, full=False)
        return template.render(**page)

    async def render() -> str:
        return await console.shared.get(f"deployment:{dep_id}", loop_time(), make)

    return _stream(request, "deployment", render)


@router.get("/activity")
async def live_activity(
    request: Request,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    store: Store = request.app.state.store
    console = console_of(request)
    template = console.templates.get_template("_activity_rows.html")

    async def make() -> str:
        return template.render(events=activity_events(store, kind, service, actor, 200))

    async def render() -> str:
        key = f"activity:{kind}:{service}:{actor}"
        return await console.shared.get(key, loop_time(), make)

    return _stream(request, "activity", render)


@router.get("/flags/{env}")
async def live_flag_rollout(request: Request, env: str) -> StreamingResponse:
    flags: FlagService = request.app.state.flags
    flags.store.flags.environment(env)  # 404 before the stream starts
    console = console_of(request)
    template = console.templates.get_template("_flag_rollout.html")

    async def make() -> str:
        return template.render(**flag_rollout(flags, env))

    async def render() -> str:
        return await console.shared.get(f"flags:{env}", loop_time(), make)

    return _stream(request, "rollout", render)


@router.get("/alarms/{service}/{name}")
async def live_alarm(request: Request, service: str, name: str) -> StreamingResponse:
    store: Store = request.app.state.store
    store.alarms.get(service, name)  # 404 before the stream starts
    console = console_of(request)
    template = console.templates.get_template("_alarm_live.html")

    async def make() -> str:
        return template.render(**alarm_view(store, service, name))

    async def render() -> str:
        return await console.shared.get(f"alarm:{service}/{name}", loop_time(), make)

    return _stream(request, "alarm", render)
