"""``GET /v1/events``: the event log, filtered by kind, subject or service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from sluicegate.api._deploy_views import EventOut, event_view
from sluicegate.api._deps import Reader, store_of
from sluicegate.api._shapes import COMMON_ERRORS, INT64_MAX

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["events"], responses=COMMON_ERRORS)

KIND_PATTERN = r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$"


@router.get("/events", response_model=list[EventOut])
def events(
    request: Request,
    caller: Reader,
    since: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="only events whose id is larger")
    ] = 0,
    kind: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=KIND_PATTERN,
            description="an event kind (deployment.created), or all under a prefix (deployment.*)",
        ),
    ] = None,
    subject: Annotated[
        str | None, Query(description="only events about this deployment id, alarm id...")
    ] = None,
    service: Annotated[
        str | None,
        Query(description="only events about this service and its deployments"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 200,
) -> list[dict[str, Any]]:
    """The newest ``limit`` events after ``since`` that match every filter, oldest first.
    To follow the log, ask again with ``since`` = the last id you got."""
    found = store_of(request).events.query(
        after_id=since, kind=kind, subject=subject, service=service, limit=limit
    )
    return [event_view(e) for e in found]
