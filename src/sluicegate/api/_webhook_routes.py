"""``/v1/webhooks``: subscriptions to the event log (admin only; secrets are shown once)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sluicegate.api._deps import Admin
from sluicegate.api._deps import store_of as _store
from sluicegate.api._shapes import COMMON_ERRORS, errors
from sluicegate.errors import ConflictError, SpecError
from sluicegate.notify import TEST_KIND, check_subscription, check_target, new_secret, redact
from sluicegate.store import Delivery, Webhook

__all__ = ["router"]

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=COMMON_ERRORS)
DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookOut(BaseModel):
    """A webhook subscription; its secret is never shown again."""

    id: str
    url: str
    events: list[str] = Field(description="event-kind patterns, e.g. deployment.*")
    enabled: bool
    created_at: float
    updated_at: float


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret, shown this once")


class DeliveryOut(BaseModel):
    id: int
    webhook: str
    event_id: int
    kind: str
    status: DeliveryStatus
    attempts: int
    last_status: int | None = Field(description="the receiver's HTTP status, if it answered")
    last_error: str | None
    next_attempt_at: float | None
    delivered_at: float | None
    created_at: float
    updated_at: float


class WebhookDeleted(BaseModel):
    deleted: str


class WebhookTested(BaseModel):
    webhook: str
    event_id: int = Field(description="the webhook.test event; see the deliveries")


def webhook_json(w: Webhook) -> dict[str, Any]:
    """A webhook as the API shows it: never its secret."""
    return {
        "id": w.id,
        "url": w.url,
        "events": list(w.events),
        "enabled": w.enabled,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
    }


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "webhook": d.webhook_id,
        "event_id": d.event_id,
        "kind": d.kind,
        "status": d.status,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "next_attempt_at": d.next_attempt_at,
        "delivered_at": d.delivered_at,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    events: list[str]
    secret: str | None = None  # generated when left out
    enabled: bool = True


class WebhookChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


@router.post("", status_code=201, response_model=WebhookCreated)
async def create_webhook(req: WebhookRequest, request: Request, caller: Admin) -> dict[str, Any]:
    """Subscribe ``url`` to event kinds matching ``events``; the answer holds the signing
    secret, shown this once. A URL on this host or a private network is refused unless the
    server runs with ``--allow-private-webhooks``."""
    problems = check_subscription(req.url, req.events, req.secret)
    if not problems:
        try:
            await check_target(req.url, request.app.state.allow_private_webhooks)
        except SpecError as exc:
            problems = list(exc.problems)
    if problems:
        raise SpecError(problems, source="request body")
    secret = req.secret or new_secret()
    store = _store(request)
    hook = store.webhooks.create(req.url, req.events, secret, enabled=req.enabled)
    store.events.append(
        "webhook.created",
        hook.id,
        f"webhook {hook.id} -> {redact(hook.url)} for {', '.join(hook.events)}",
        actor=caller.name,
        data={"url": redact(hook.url), "events": list(hook.events)},
    )
    return {**webhook_json(hook), "secret": secret}


@router.get("", response_model=list[WebhookOut])
def list_webhooks(request: Request, caller: Admin) -> list[dict[str, Any]]:
    return [webhook_json(w) for w in _store(request).webhooks.list()]


@router.get("/{webhook_id}", response_model=WebhookOut, responses=errors(404))
def get_webhook(webhook_id: str, request: Request, caller: Admin) -> dict[str, Any]:
    return webhook_json(_store(request).webhooks.get(webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=errors(404))
def change_webhook(
    webhook_id: str, change: WebhookChange, request: Request, caller: Admin
) -> dict[str, Any]:
    """Enable or disable; a disabled webhook gets no new deliveries (queued ones wait)."""
    store = _store(request)
    hook = store.webhooks.set_enabled(webhook_id, change.enabled)
    store.events.append(
        "webhook.enabled" if change.enabled else "webhook.disabled",
        hook.id,
        f"webhook {hook.id} {'enabled' if change.enabled else 'disabled'}",
        actor=caller.name,
    )
    return webhook_json(hook)


@router.delete("/{webhook_id}", response_model=WebhookDeleted, responses=errors(404))
def delete_webhook(webhook_id: str, request: Request, caller: Admin) -> dict[str, str]:
    store = _store(request)
    hook = store.webhooks.get(webhook_id)
    store.webhooks.delete(webhook_id)
    store.events.append(
        "webhook.deleted",
        webhook_id,
        f"webhook {webhook_id} -> {redact(hook.url)} deleted",
        actor=caller.name,
    )
    return {"deleted": webhook_id}


@router.post(
    "/{webhook_id}/test", status_code=202, response_model=WebhookTested, responses=errors(404, 409)
)
def test_webhook(webhook_id: str, request: Request, caller: Admin) -> dict[str, Any]:
    """Append a ``webhook.test`` event, delivered to this webhook only (whatever its event
    patterns); see its deliveries for the outcome."""
    store = _store(request)
    hook = store.webhooks.get(webhook_id)
    if not hook.enabled:
        raise ConflictError(f"webhook {webhook_id} is disabled; enable it to test it")
    event = store.events.append(
        TEST_KIND,
        hook.id,
        f"test delivery to webhook {hook.id}",
        actor=caller.name,
        data={"webhook": hook.id},
    )
    return {"webhook": hook.id, "event_id": event.id}


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut], responses=errors(404))
def list_deliveries(
    webhook_id: str,
    request: Request,
    caller: Admin,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """The webhook's latest deliveries, newest first (optionally only one status)."""
    store = _store(request)
    store.webhooks.get(webhook_id)  # 404 for an unknown webhook, not an empty list
    return [
        delivery_json(d)
        for d in store.webhook_deliveries.list(webhook_id, status=status, limit=limit)
    ]
