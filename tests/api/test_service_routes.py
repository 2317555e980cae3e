"""Services, deployments and the event log through a real server: the public deployment view,
commands by service, deleting a service, filtering deployments and events, 64-bit bounds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._support import APP_PATH, free_port
from tests._support.server import Server, running_server

GATED = {"steps": [{"weight": 10}, {"pause": "until_promoted"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("service-routes") / "state", ["--no-default-guards"]
    ) as s:
        yield s


def call(
    server: Server, method: str, path: str, body: Any = None, params: Any = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.request(
        method, server.url + path, json=body, params=params, headers=headers, timeout=30
    )


def ok(server: Server, method: str, path: str, body: Any = None, params: Any = None) -> Any:
    r = call(server, method, path, body, params)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def declare(server: Server, name: str) -> None:
    spec = {
        "service": name,
        "listener": {"port": free_port()},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {
            "local": {
                "command": [sys.executable, str(APP_PATH), "--port", "{port}"],
                "replicas": 1,
                "stop_grace": "2s",
            }
        },
        "deployment": {"config": GATED, "termination_wait": "0s"},
    }
    ok(server, "PUT", f"/v1/services/{name}", spec)


def paused_at_the_gate(server: Server, name: str) -> tuple[str, str]:
    """``name`` serving v1, and v2 deploying, waiting at its manual gate: the two ids."""
    declare(server, name)
    first = ok(server, "POST", f"/v1/services/{name}/deployments", {"revision": "v1"})["id"]
    server.wait_phase(first, {"succeeded"})
    second = ok(server, "POST", f"/v1/services/{name}/deployments", {"revision": "v2"})["id"]
    server.wait_phase(second, {"paused_until_promoted"})
    return first, second


def test_a_deployment_shows_its_progress_in_public_fields(server: Server) -> None:
    first, second = paused_at_the_gate(server, "viewed")
    dep = ok(server, "GET", f"/v1/deployments/{second}")
    assert {
        k: dep[k]
        for k in (
            "service",
            "revision",
            "from_revision",
            "phase",
            "status",
            "active",
            "green_weight",
            "step_index",
            "step_count",
            "plan_name",
            "reason",
            "holding",
            "actor",
        )
    } == {
        "service": "viewed",
        "revision": "v2",
        "from_revision": "v1",
        "phase": "paused_until_promoted",
        "status": "in_progress",
        "active": True,
        "green_weight": 10,
        "step_index": 1,
        "step_count": 3,  # 10 %, the gate, then the 100 % the written steps stop short of
        "plan_name": "Custom steps",
        "reason": None,
        "holding": None,
        "actor": "first-admin",
    }
    assert set(dep["replicas"]) == {"v1", "v2"} and dep["events"]
    ended = ok(server, "GET", f"/v1/deployments/{first}")
    assert (ended["active"], ended["green_weight"], ended["replicas"]) == (False, 100, {})
    ok(server, "POST", f"/v1/deployments/{second}/rollback")
    assert server.wait_phase(second, {"rolled_back"})["reason"] == "rolled back by first-admin"


def test_commands_by_service_reach_its_active_deployment(server: Server) -> None:
    _, second = paused_at_the_gate(server, "commanded")
    accepted = ok(server, "POST", "/v1/services/commanded/promote")
    assert {k: accepted[k] for k in ("service", "deployment", "command", "state")} == {
        "service": "commanded",
        "deployment": second,
        "command": "promote",
        "state": "accepted",
    }
    server.wait_phase(second, {"succeeded"})
    none_active = call(server, "POST", "/v1/services/commanded/rollback")
    assert none_active.status_code == 409
    assert "no active deployment" in none_active.json()["error"]
    assert call(server, "POST", "/v1/services/nowhere/stop").status_code == 404
    assert call(server, "POST", "/v1/services/commanded/launch").status_code == 422


def test_a_service_is_deleted_only_once_no_deployment_is_active(server: Server) -> None:
    _, second = paused_at_the_gate(server, "doomed")
    busy = call(server, "DELETE", "/v1/services/doomed")
    assert busy.status_code == 409 and second in busy.json()["error"]
    ok(server, "POST", "/v1/services/doomed/stop")
    server.wait_phase(second, {"stopped"})
    assert ok(server, "DELETE", "/v1/services/doomed") == {
        "service": "doomed",
        "deleted": True,
        "stopped": ["v1"],
    }
    assert call(server, "GET", "/v1/services/doomed").status_code == 404
    assert "doomed" not in [s["service"] for s in ok(server, "GET", "/v1/services")]
    assert call(server, "DELETE", "/v1/services/doomed").status_code == 404
    deleted = ok(server, "GET", "/v1/events", params={"kind": "service.deleted"})
    assert [e["message"] for e in deleted] == ["service doomed deleted; stopped v1"]


def test_deployments_are_listed_by_service_and_by_whether_they_are_active(server: Server) -> None:
    first, second = paused_at_the_gate(server, "listed")

    def ids(**params: Any) -> list[str]:
        return [d["id"] for d in ok(server, "GET", "/v1/deployments", params=params)]

    assert ids(service="listed") == [second, first]
    assert ids(service="listed", active="true") == [second]
    assert ids(service="listed", active="false") == [first]
    assert second in ids(active="true") and first not in ids(active="true", limit=1000)
    assert ids(service="listed", active="false", limit=1) == [first]
    ok(server, "POST", f"/v1/deployments/{second}/stop")
    server.wait_phase(second, {"stopped"})
    assert ids(service="listed", active="true") == []


def test_events_are_filtered_by_kind_and_by_service_with_its_deployments(server: Server) -> None:
    first, second = paused_at_the_gate(server, "watched")
    mine = ok(server, "GET", "/v1/events", params={"service": "watched", "limit": 10000})
    subjects = {e["subject"] for e in mine}
    assert subjects == {"watched", first, second}
    created = ok(server, "GET", "/v1/events", params={"service": "watched", "kind": "deployment.*"})
    assert {e["kind"].split(".")[0] for e in created} == {"deployment"}
    exact = ok(
        server, "GET", "/v1/events", params={"service": "watched", "kind": "deployment.created"}
    )
    assert [e["subject"] for e in exact] == [first, second]
    bad = call(server, "GET", "/v1/events", params={"kind": "deployment.%"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["path"] == "query.kind"
    ok(server, "POST", f"/v1/deployments/{second}/rollback")
    server.wait_phase(second, {"rolled_back"})


def test_events_since_and_limit_give_the_newest_after_since_oldest_first(server: Server) -> None:
    declare(server, "paged")
    everything = ok(server, "GET", "/v1/events", params={"limit": 10000})
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids) and len(ids) >= 4
    newest = ok(server, "GET", "/v1/events", params={"limit": 2})
    assert [e["id"] for e in newest] == ids[-2:]
    after = ok(server, "GET", "/v1/events", params={"since": ids[-4], "limit": 2})
    assert [e["id"] for e in after] == ids[-2:]
    after_all = ok(server, "GET", "/v1/events", params={"since": ids[-4], "limit": 10})
    assert [e["id"] for e in after_all] == ids[-3:]


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", "/v1/events", {"since": 2**63}, None),
        ("GET", "/v1/events", {"since": -1}, None),
        ("GET", "/v1/deployments", {"limit": 2**64}, None),
        ("GET", "/v1/services/shop/logs", {"revision": "v1", "replica": 2**63}, None),
        ("GET", "/v1/flags/prod/versions/9223372036854775808", None, None),
        ("GET", "/v1/flags/prod/diff", {"to": 2**63}, None),
        ("GET", "/v1/flags/prod/exposures", {"since": 2**70}, None),
        ("GET", "/v1/metrics/query", {"name": "x", "end": 2**63}, None),
        ("POST", "/v1/flags/prod/revert", None, {"to": 2**63}),
        ("POST", "/v1/flags/prod/evaluate", None, {"key": "k", "version": 2**63}),
    ],
)
def test_integers_beyond_64_bits_are_invalid_input_not_a_server_error(
    server: Server, method: str, path: str, params: Any, body: Any
) -> None:
    r = call(server, method, path, body, params)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid input" and r.json()["problems"]


def test_a_body_that_is_not_json_text_is_invalid_input(server: Server) -> None:
    r = httpx.put(
        server.url + "/v1/services/x",
        content=b"\xff\xfe\xfa",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["problems"][0]["path"] == ""


def test_the_schema_types_every_answer_and_declares_the_error_answers(server: Server) -> None:
    schema = httpx.get(server.url + "/openapi.json").json()
    untyped, errors_unshaped, open_routes = [], [], []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            answers = op["responses"]
            ok_answer = next(a for code, a in answers.items() if code.startswith("2"))
            content = ok_answer.get("content", {})
            json_schema = content.get("application/json", {}).get("schema", {})
            text = "text/plain" in content or "text/event-stream" in content
            if not text and (not json_schema or json_schema.get("additionalProperties") is True):
                untyped.append(where)
            for code, answer in answers.items():
                if code[0] in "45":
                    ref = answer["content"]["application/json"]["schema"].get("$ref", "")
                    if not ref.endswith(("/ErrorBody", "/Health")):
                        errors_unshaped.append(f"{where} {code}")
            if "401" in answers:
                assert op["security"] == [{"bearer": []}], where
            else:
                open_routes.append(where)
    assert untyped == ["GET /v1/flags/schema"]  # a JSON Schema document: any object
    assert errors_unshaped == []
    assert sorted(open_routes) == ["GET /v1/flags/schema", "GET /v1/healthz"]
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    deployment = schema["components"]["schemas"]["Deployment"]["properties"]
    assert deployment["state"]["deprecated"] is True
    assert {"reason", "green_weight", "step_index", "step_count", "plan_name"} <= set(deployment)
    problems = schema["components"]["schemas"]["ErrorBody"]["properties"]["problems"]
    assert problems["items"] == {"$ref": "#/components/schemas/ProblemOut"}
