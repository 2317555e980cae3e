"""Pushed metrics, alarms and the Alertmanager receiver through a real `sluice server`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import yaml

from tests._support import APP_PATH, free_port
from tests._support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("alarms-api") / "state") as s:
        yield s


def call(
    server: Server,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or server.token}"}
    return httpx.request(
        method, server.url + path, json=body, headers=headers, params=params, timeout=30
    )


def token(server: Server, role: str) -> str:
    """A new token of ``role`` (names are unique among valid tokens: one per call)."""
    r = call(
        server, "POST", "/v1/tokens", body={"role": role, "name": f"t-{role}-{uuid4().hex[:8]}"}
    )
    assert r.status_code == 201, r.text
    value: str = r.json()["token"]
    return value


CHECKOUT_ERRORS: dict[str, Any] = {
    "name": "checkout-errors",
    "metric": {"source": "push", "name": "checkout_errors", "dimensions": {"service": "{service}"}},
    "statistic": "Sum",
    "period": 1,
    "evaluation_periods": 2,
    "threshold": 3,
    "comparison": "GreaterThanThreshold",
    "treat_missing_data": "ignore",  # once the pushes stop, the state stays
    "guard": False,
}
NEVER: dict[str, Any] = {**CHECKOUT_ERRORS, "name": "quiet", "threshold": 1e9}


def service(name: str, *alarms: dict[str, Any]) -> dict[str, Any]:
    return {
        "service": name,
        "listener": {"port": free_port()},
        "compute": {"local": {"command": [sys.executable, str(APP_PATH), "--port", "{port}"]}},
        "alarms": list(alarms),
    }


def wait_for(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


# --- POST /v1/metrics -----------------------------------------------------------------------


def test_a_push_is_stored_and_reported(server: Server) -> None:
    r = call(
        server,
        "POST",
        "/v1/metrics",
        body={
            "metrics": [
                {"name": "latency_ms", "dimensions": {"route": "/buy"}, "value": 12.5},
                {
                    "name": "latency_ms",
                    "dimensions": {"route": "/buy"},
                    "values": [1, 2],
                    "counts": [5, 1],
                },
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2 and r.json()["series"] >= 1


def test_a_bad_push_names_each_field_and_stores_nothing(server: Server) -> None:
    before = call(
        server, "POST", "/v1/metrics", body={"metrics": [{"name": "probe", "value": 1}]}
    ).json()["series"]
    r = call(
        server,
        "POST",
        "/v1/metrics",
        body={
            "metrics": [
                {"name": "new_series", "value": 1},
                {"name": "x", "value": "high"},
                {"name": "x", "values": [1], "counts": [1, 2]},
                {"name": "x", "value": 1, "timestamp": time.time() * 1000},
            ]
        },
    )
    assert r.status_code == 422
    paths = {p["path"] for p in r.json()["problems"]}
    assert paths == {"metrics[1].value", "metrics[2].counts", "metrics[3].timestamp"}
    after = call(
        server, "POST", "/v1/metrics", body={"metrics": [{"name": "probe", "value": 1}]}
    ).json()["series"]
    assert after == before  # new_series was not stored


def test_pushing_needs_the_deployer_role(server: Server) -> None:
    reader = token(server, "reader")
    r = call(server, "POST", "/v1/metrics", reader, {"metrics": [{"name": "a", "value": 1}]})
    assert r.status_code == 403


def test_metric_history_queries_are_checked_and_answer_per_period(server: Server) -> None:
    r = call(
        server,
        "GET",
        "/v1/metrics/query",
        params={"name": "x", "period": 90, "dimensions": "[1]", "statistic": "p200"},
    )
    assert r.status_code == 422
    assert {p["path"] for p in r.json()["problems"]} == {"period", "dimensions", "statistic"}
    reader = token(server, "reader")
    r = call(
        server,
        "GET",
        "/v1/metrics/query",
        reader,
        params={
            "name": "never_pushed",
            "period": 300,
            "start": 1_700_000_000,
            "end": 1_700_003_600,
        },
    )
    assert r.status_code == 200, r.text
    points = r.json()["datapoints"]
    assert len(points) == 12 and all(p["value"] is None for p in points)


# --- alarms -----------------------------------------------------------------------------------


def test_an_alarm_on_pushed_values_goes_to_alarm_with_its_history(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "pay.yaml"
    path.write_text(yaml.safe_dump(service("pay", CHECKOUT_ERRORS, NEVER)))
    server.cli("apply", "-f", str(path))
    listed = call(server, "GET", "/v1/alarms", params={"service": "pay"}).json()
    assert [(a["id"], a["state"]) for a in listed] == [
        ("pay/checkout-errors", "INSUFFICIENT_DATA"),
        ("pay/quiet", "INSUFFICIENT_DATA"),
    ]

    def push_and_check() -> bool:
        call(
            server,
            "POST",
            "/v1/metrics",
            body={
                "metrics": [
                    {"name": "checkout_errors", "dimensions": {"service": "pay"}, "value": 10}
                ]
            },
        )
        return bool(
            call(server, "GET", "/v1/alarms/pay/checkout-errors").json()["state"] == "ALARM"
        )

    wait_for(push_and_check, "pay/checkout-errors in ALARM")
    history = json.loads(server.cli("alarms", "history", "pay/checkout-errors", "--json"))
    assert history[-1]["new_state"] == "ALARM"
    assert history[-1]["reason"].startswith("Threshold Crossed")
    assert [p["value"] for p in history[-1]["datapoints"]][-1] >= 10
    table = server.cli("alarms", "history", "pay/checkout-errors")
    assert "ALARM" in table and "Threshold Crossed" in table
    got = json.loads(server.cli("alarms", "get", "pay/checkout-errors", "--json"))
    assert got["state"] == "ALARM" and len(got["evaluation"]["range"]) == 4  # N + 2
    shown = server.cli("alarms", "get", "pay/checkout-errors")
    assert "period start" in shown and "ALARM" in shown


def test_set_state_by_a_deployer_is_kept_with_its_actor_and_readers_can_only_read(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "cart.yaml"
    path.write_text(yaml.safe_dump(service("cart", NEVER)))
    server.cli("apply", "-f", str(path))
    reader = token(server, "reader")
    r = call(
        server, "POST", "/v1/alarms/cart/quiet/state", reader, {"state": "ALARM", "reason": "drill"}
    )
    assert r.status_code == 403
    assert call(server, "GET", "/v1/alarms/cart/quiet", reader).status_code == 200
    r = call(server, "POST", "/v1/alarms/cart/quiet/state", body={"state": "BROKEN", "reason": ""})
    assert r.status_code == 422
    assert {p["path"] for p in r.json()["problems"]} == {"state", "reason"}
    out = server.cli(
        "alarms", "set-state", "cart/quiet", "--state", "ALARM", "--reason", "rollback drill"
    )
    assert "cart/quiet is now ALARM" in out
    [last] = call(server, "GET", "/v1/alarms/cart/quiet/history").json()[-1:]
    assert (last["new_state"], last["reason"], last["forced"], last["actor"]) == (
        "ALARM",
        "rollback drill",
        True,
        "first-admin",  # the token's name, not its role
    )
    assert call(server, "GET", "/v1/alarms/cart/nope").status_code == 404


def test_apply_replaces_the_alarm_set_and_kept_alarms_keep_their_state(
    server: Server, tmp_path: Path
) -> None:
    slow = {**NEVER, "period": 60}  # a forced state holds a whole period
    path = tmp_path / "box.yaml"
    path.write_text(yaml.safe_dump(service("box", slow, {**NEVER, "name": "gone"})))
    server.cli("apply", "-f", str(path))
    server.cli("alarms", "set-state", "box/quiet", "--state", "OK", "--reason", "by hand")
    path.write_text(yaml.safe_dump(service("box", {**slow, "threshold": 5e9})))
    server.cli("apply", "-f", str(path))
    listed = json.loads(server.cli("alarms", "list", "--service", "box", "--json"))
    assert [(a["name"], a["state"], a["spec"]["threshold"]) for a in listed] == [
        ("quiet", "OK", 5e9)
    ]
    bad = service(
        "box", {**NEVER, "metric": {"source": "push", "name": "x", "dimensions": {"rev": "{gren}"}}}
    )
    r = call(server, "PUT", "/v1/services/box", body=bad)
    assert r.status_code == 422
    assert [p["path"] for p in r.json()["problems"]] == ["alarms[0].metric.dimensions.rev"]


# --- Alertmanager -----------------------------------------------------------------------------


def am_alert(status: str, name: str, service: str | None, fingerprint: str) -> dict[str, Any]:
    labels = {"alertname": name, "severity": "page"}
    if service:
        labels["sluicegate_service"] = service
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "5xx above 5% for 1m"},
        "startsAt": "2024-05-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "receiver": "sluicegate",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }


def test_alertmanager_alerts_set_an_external_alarm_until_all_are_resolved(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump(service("web")))
    server.cli("apply", "-f", str(path))
    r = call(
        server,
        "POST",
        "/v1/alertmanager",
        body=webhook(
            am_alert("firing", "HighErrors", "web", "a1"),
            am_alert("firing", "HighErrors", "web", "a2"),
            am_alert("firing", "Other", None, "b1"),
            am_alert("firing", "HighErrors", "ghost", "c1"),
        ),
    )
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == [{"alarm": "web/alertmanager:HighErrors", "state": "ALARM"}]
    assert len(r.json()["ignored"]) == 2
    alarm = call(server, "GET", "/v1/alarms/web/alertmanager:HighErrors").json()
    assert (alarm["kind"], alarm["guard"], alarm["state"]) == ("external", True, "ALARM")
    assert "HighErrors firing since 2024-05-01T12:00:00Z (2 alerts)" in alarm["reason"]
    call(
        server,
        "POST",
        "/v1/alertmanager",
        body=webhook(am_alert("resolved", "HighErrors", "web", "a1")),
    )
    assert (
        call(server, "GET", "/v1/alarms/web/alertmanager:HighErrors").json()["state"] == "ALARM"
    )  # a2 still fires
    call(
        server,
        "POST",
        "/v1/alertmanager",
        body=webhook(am_alert("resolved", "HighErrors", "web", "a2")),
    )
    history = call(server, "GET", "/v1/alarms/web/alertmanager:HighErrors/history").json()
    assert [(h["old_state"], h["new_state"]) for h in history] == [
        ("INSUFFICIENT_DATA", "ALARM"),
        ("ALARM", "OK"),
    ]


def test_alertmanager_needs_a_token_and_a_valid_payload(server: Server) -> None:
    r = httpx.post(server.url + "/v1/alertmanager", json=webhook(), timeout=10)
    assert r.status_code == 401
    r = call(server, "POST", "/v1/alertmanager", body={"alerts": [{"status": "maybe"}]})
    assert r.status_code == 422
    assert {p["path"] for p in r.json()["problems"]} == {"alerts[0].status", "alerts[0].labels"}
