"""``GET /v1/events``: the event log, filtered by kind, subject or service; and
``GET /v1/events/page``: the log read forward page by page, to follow it without a gap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from sluicegate.api._deploy_views import EventOut, event_view
from sluicegate.api._deps import Reader, store_of
from sluicegate.api._shapes import COMMON_ERRORS, INT64_MAX
from sluicegate.store import Event, Store

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["events"], responses=COMMON_ERRORS)

KIND_PATTERN = r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$"

#: How many log entries one page request reads at most, matching or not: a filter that
#: matches little still answers quickly, and says where it stopped (``next``).
SCAN_BUDGET = 10_000
_CHUNK = 1_000

Since = Annotated[int, Query(ge=0, le=INT64_MAX, description="only events whose id is larger")]
Kind = Annotated[
    str | None,
    Query(
        max_length=100,
        pattern=KIND_PATTERN,
        description="an event kind (deployment.created), or all under a prefix (deployment.*)",
    ),
]
Subject = Annotated[
    str | None, Query(description="only events about this deployment id, alarm id...")
]
ServiceName = Annotated[
    str | None, Query(description="only events about this service and its deployments")
]
Limit = Annotated[int, Query(ge=1, le=10000)]


class EventPage(BaseModel):
    """The oldest matching events after ``since``, and where to go on from."""

    events: list[EventOut] = Field(description="oldest first")
    next: int = Field(
        ge=0,
        description="ask again with since = this: the id of the last event read, matching or "
        "not (so a sparse filter does not read the same events again)",
    )
    more: bool = Field(
        description="true when the page is full or the read stopped early: ask again at once; "
        "false when every event up to the newest has been read"
    )


@router.get("/events", response_model=list[EventOut])
def events(
    request: Request,
    caller: Reader,
    since: Since = 0,
    kind: Kind = None,
    subject: Subject = None,
    service: ServiceName = None,
    limit: Limit = 200,
) -> list[dict[str, Any]]:
    """The newest ``limit`` events after ``since`` that match every filter, oldest first.
    When more than ``limit`` match, the older ones are left out: to read everything after
    an id, or to follow the log, use ``GET /v1/events/page``."""
    found = store_of(request).events.query(
        after_id=since, kind=kind, subject=subject, service=service, limit=limit
    )
    return [event_view(e) for e in found]


@router.get("/events/page", response_model=EventPage)
def event_page(
    request: Request,
    caller: Reader,
    since: Since = 0,
    kind: Kind = None,
    subject: Subject = None,
    service: ServiceName = None,
    limit: Limit = 200,
) -> dict[str, Any]:
    """The **oldest** ``limit`` events after ``since`` that match every filter (same filters
    as ``GET /v1/events``). To read the log forward without skipping any, ask again with
    ``since`` = ``next`` while ``more`` is true; to follow it, keep asking with the last
    ``next``. At most 10,000 entries are read per request, matching or not."""
    store = store_of(request)
    matches = _matcher(store, kind, subject, service)
    found: list[Event] = []
    after, read = since, 0
    while read < SCAN_BUDGET:
        asked = min(_CHUNK, SCAN_BUDGET - read)
        chunk = store.events.since(after, limit=asked)
        keep = matches(chunk)
        for e in chunk:
            after = e.id
            if keep(e):
                found.append(e)
                if len(found) == limit:
                    return _page(found, after, more=True)
        read += len(chunk)
        if len(chunk) < asked:
            return _page(found, after, more=False)
    return _page(found, after, more=True)


def _page(found: list[Event], after: int, *, more: bool) -> dict[str, Any]:
    return {"events": [event_view(e) for e in found], "next": after, "more": more}


def _matcher(
    store: Store, kind: str | None, subject: str | None, service: str | None
) -> Callable[[list[Event]], Callable[[Event], bool]]:
    """The filters of ``EventRepository.query``, for a chunk read with ``since``: given the
    chunk, a test of each event. A service's deployments are looked up after the chunk was
    read, so an event about a deployment created meanwhile is matched too (a deployment is
    stored in the transaction that appends its first event)."""
    prefix = kind[:-1] if kind is not None and kind.endswith(".*") else None

    def of_kind(e: Event) -> bool:
        if kind is None or kind == "*":
            return True
        return e.kind.startswith(prefix) if prefix is not None else e.kind == kind

    def for_chunk(chunk: list[Event]) -> Callable[[Event], bool]:
        ids: set[str] = set()
        if service is not None and any(e.subject != service for e in chunk):
            ids = {d.id for d in store.deployments.list(service)}

        def keep(e: Event) -> bool:
            if subject is not None and e.subject != subject:
                return False
            if service is not None and e.subject != service and e.subject not in ids:
                return False
            return of_kind(e)

        return keep

    return for_chunk
