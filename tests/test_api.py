"""The server's API: role tokens, errors naming the field, one active deployment, OpenAPI."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._support import APP_PATH, free_port
from tests._support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("api") / "state") as s:
        yield s


def call(
    server: Server, method: str, path: str, token: str | None = None, body: Any = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)


def spec(name: str = "shop") -> dict[str, Any]:
    return {
        "service": name,
        "listener": {"port": free_port()},
        "compute": {
            "local": {"command": [sys.executable, str(APP_PATH), "--port", "{port}"], "replicas": 1}
        },
        "deployment": {"config": {"steps": [{"weight": 10}, {"pause": "until_promoted"}]}},
    }


_serial = itertools.count(1)  # token names are unique among valid tokens


def token(server: Server, role: str) -> str:
    r = call(
        server,
        "POST",
        "/v1/tokens",
        server.token,
        {"role": role, "name": f"t-{role}-{next(_serial)}"},
    )
    assert r.status_code == 201, r.text
    value: str = r.json()["token"]
    return value


def test_calls_without_a_valid_token_are_refused(server: Server) -> None:
    assert call(server, "GET", "/v1/services").status_code == 401
    assert call(server, "GET", "/v1/services", "sgt_nope").status_code == 401
    assert call(server, "GET", "/v1/services", server.token).status_code == 200


def test_roles_are_enforced(server: Server) -> None:
    reader, deployer = token(server, "reader"), token(server, "deployer")
    assert call(server, "GET", "/v1/services", reader).status_code == 200
    r = call(server, "PUT", "/v1/services/shop", reader, spec())
    assert r.status_code == 403 and "deployer" in r.json()["error"]
    assert call(server, "POST", "/v1/tokens", deployer, {"role": "admin"}).status_code == 403


def test_invalid_spec_is_refused_with_field_paths_and_changes_nothing(server: Server) -> None:
    bad = spec("broken")
    bad["listener"]["port"] = 0
    bad["compute"]["local"]["replicas"] = 1000
    r = call(server, "PUT", "/v1/services/broken", server.token, bad)
    assert r.status_code == 422
    paths = {p["path"] for p in r.json()["problems"]}
    assert {"listener.port", "compute.local.replicas"} <= paths
    assert call(server, "GET", "/v1/services/broken", server.token).status_code == 404


def test_a_second_deployment_while_one_is_active_is_a_conflict(server: Server) -> None:
    assert call(server, "PUT", "/v1/services/one", server.token, spec("one")).status_code == 200
    first = call(server, "POST", "/v1/services/one/deployments", server.token, {"revision": "v1"})
    assert first.status_code == 201, first.text
    assert first.json()["plan"]  # the plan is printed before anything happens
    server.wait_phase(first.json()["id"], {"succeeded"})
    second = call(server, "POST", "/v1/services/one/deployments", server.token, {"revision": "v2"})
    assert second.status_code == 201
    server.wait_phase(second.json()["id"], {"paused_until_promoted"})
    third = call(server, "POST", "/v1/services/one/deployments", server.token, {"revision": "v3"})
    assert third.status_code == 409
    assert "active" in third.json()["error"]
    r = call(server, "POST", f"/v1/deployments/{second.json()['id']}/rollback", server.token)
    assert r.status_code == 202
    done = server.wait_phase(second.json()["id"], {"rolled_back"})
    assert done["reason"].endswith("by first-admin")


def test_unknown_things_are_404_and_bad_commands_422(server: Server) -> None:
    assert call(server, "GET", "/v1/deployments/d-000000000000", server.token).status_code == 404
    r = call(server, "POST", "/v1/deployments/d-000000000000/launch", server.token)
    assert r.status_code in (404, 422)


def test_openapi_schema_describes_the_api(server: Server) -> None:
    schema = call(server, "GET", "/openapi.json").json()
    assert "/v1/services/{name}/deployments" in schema["paths"]
    assert schema["info"]["title"] == "Sluicegate"


def test_events_log_who_did_what(server: Server) -> None:
    events = call(server, "GET", "/v1/events", server.token).json()
    kinds = {e["kind"] for e in events}
    assert {"service.applied", "deployment.created"} <= kinds
    assert all(e["actor"] for e in events)
