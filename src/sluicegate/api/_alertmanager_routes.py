"""``POST /v1/alertmanager``: Prometheus Alertmanager's webhook (payload version 4).

An alert labelled ``sluicegate_service: shop`` drives the external alarm
``shop/alertmanager:<alertname>`` (created on first sight, guarding): ALARM while any alert
of that name for the service fires (tracked by fingerprint), OK once all are resolved. So a
Prometheus alerting rule rolls a deployment back like any guarding alarm. Authenticate with
a deployer token (Alertmanager's ``http_config.authorization``, type Bearer).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from sluicegate.api._auth import Caller, require_alertmanager
from sluicegate.api._shapes import COMMON_ERRORS
from sluicegate.errors import NotFoundError, TransientError
from sluicegate.monitor.alarms import AlarmState
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.store import Store

router = APIRouter(prefix="/v1", tags=["alarms"], responses=COMMON_ERRORS)

SERVICE_LABEL = "sluicegate_service"
PREFIX = "alertmanager:"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class AmAlert(_Loose):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""  # noqa: N815 - Alertmanager's field names
    endsAt: str = ""  # noqa: N815
    fingerprint: str = ""


class AmPayload(_Loose):
    version: str = "4"
    alerts: Annotated[list[AmAlert], Field(max_length=10_000)]


class AppliedAlert(BaseModel):
    alarm: str = Field(description="the external alarm, service/alertmanager:<alertname>")
    state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


class IgnoredAlert(BaseModel):
    alert: str
    why: str


class AlertmanagerResult(BaseModel):
    applied: list[AppliedAlert]
    ignored: list[IgnoredAlert]


@router.post("/alertmanager", response_model=AlertmanagerResult)
def alertmanager(
    payload: AmPayload,
    request: Request,
    caller: Annotated[Caller, Depends(require_alertmanager)],
) -> dict[str, Any]:
    """Apply a webhook's alerts to the services' external alarms."""
    engine: AlarmEngine | None = request.app.state.engine
    store: Store = request.app.state.store
    if engine is None:
        raise TransientError("the alarm loop is not running on this server")
    groups: dict[tuple[str, str], list[AmAlert]] = {}
    ignored: list[dict[str, str]] = []
    for alert in payload.alerts:
        service = alert.labels.get(SERVICE_LABEL)
        name = alert.labels.get("alertname", "")
        if not service or not name:
            ignored.append({"alert": name or "?", "why": f"no {SERVICE_LABEL} or alertname label"})
            continue
        groups.setdefault((service, name[:150]), []).append(alert)
    applied = []
    for (service, name), alerts in groups.items():
        try:
            alarm = store.alarms.ensure_external(service, PREFIX + name)
        except NotFoundError as exc:
            ignored.append({"alert": name, "why": str(exc)})
            continue
        firing = {f["fingerprint"]: f for f in alarm.evaluation.get("firing", [])}
        for alert in alerts:
            key = alert.fingerprint or _fingerprint(alert.labels)
            if alert.status == "firing":
                firing[key] = {
                    "fingerprint": key,
                    "starts_at": alert.startsAt,
                    "summary": _summary(alert),
                }
            else:
                firing.pop(key, None)
        state = AlarmState.ALARM if firing else AlarmState.OK
        reason = _reason(name, list(firing.values()), alerts)
        after = engine.set_external(
            service, PREFIX + name, state, reason, {"firing": list(firing.values())}, caller.name
        )
        applied.append({"alarm": after.id, "state": after.state})
    return {"applied": applied, "ignored": ignored}


def _fingerprint(labels: dict[str, str]) -> str:
    text = "\n".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _summary(alert: AmAlert) -> str:
    a = alert.annotations
    return a.get("summary") or a.get("description") or a.get("message") or ""


def _reason(name: str, firing: list[dict[str, str]], alerts: list[AmAlert]) -> str:
    if not firing:
        ends = max((a.endsAt for a in alerts if a.status == "resolved"), default="")
        return f"Alertmanager: {name} resolved" + (f" at {ends}." if ends else ".")
    first = min(f["starts_at"] for f in firing)
    count = len(firing)
    text = (
        f"Alertmanager: {name} firing since {first or 'now'}"
        f" ({count} alert{'s' if count != 1 else ''})"
    )
    summary = next((f["summary"] for f in firing if f["summary"]), "")
    return text + (f": {summary}." if summary else ".")
