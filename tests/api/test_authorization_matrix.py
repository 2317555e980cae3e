"""Who may call what: every route of the live server × every kind of credential.

The matrix names, for every operation in ``/openapi.json``, who is admitted; a new route
without an entry fails the test, so no route is ever born unguarded. Requests carry
placeholder names and empty bodies: an admitted caller gets anything but 401/403 (404 and
422 are fine: the door opened), a refused one exactly 403 — or 401 without a valid token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests._support.server import Server, running_server

ENV = "prod"
BROAD = {"admin": 2, "deployer": 1, "reader": 0}

# Who is admitted: a broad role and everything above it, or one of the narrow rules.
MATRIX: dict[str, str] = {
    "GET /metrics": "reader",
    "GET /v1/healthz": "public",
    "GET /v1/alarms": "reader",
    "GET /v1/alarms/{service}/{name}": "reader",
    "GET /v1/alarms/{service}/{name}/history": "reader",
    "POST /v1/alarms/{service}/{name}/state": "deployer",
    "POST /v1/alertmanager": "alertmanager",
    "GET /v1/deployments": "reader",
    "GET /v1/deployments/{dep_id}": "reader",
    "POST /v1/deployments/{dep_id}/retry": "deployer",
    "POST /v1/deployments/{dep_id}/{command}": "deployer",
    "GET /v1/events": "reader",
    "GET /v1/events/page": "reader",
    "GET /v1/flags/envs": "reader",
    "POST /v1/flags/envs": "deployer",
    "DELETE /v1/flags/envs/{env}": "admin",
    "GET /v1/flags/schema": "public",  # the flag-set JSON Schema: documentation
    "GET /v1/flags/{env}": "reader",
    "PUT /v1/flags/{env}": "deployer",
    "GET /v1/flags/{env}/diff": "reader",
    "POST /v1/flags/{env}/evaluate": "reader",
    "POST /v1/flags/{env}/evaluate/batch": "reader",
    "POST /v1/flags/{env}/exposures": "exposure-reporter",
    "GET /v1/flags/{env}/exposures": "reader",
    "POST /v1/flags/{env}/revert": "deployer",
    "GET /v1/flags/{env}/rollout": "reader",
    "POST /v1/flags/{env}/rollout/{command}": "deployer",
    "GET /v1/flags/{env}/rollouts": "reader",
    "GET /v1/flags/{env}/snapshot": "flag-reader",
    "GET /v1/flags/{env}/stream": "flag-reader",
    "GET /v1/flags/{env}/versions": "reader",
    "GET /v1/flags/{env}/versions/{number}": "reader",
    "POST /v1/metrics": "metrics-pusher",
    "GET /v1/metrics/query": "reader",
    "GET /v1/services": "reader",
    "PUT /v1/services/{name}": "deployer",
    "GET /v1/services/{name}": "reader",
    "DELETE /v1/services/{name}": "deployer",
    "POST /v1/services/{name}/deployments": "deployer",
    "POST /v1/services/{name}/scale": "deployer",
    "GET /v1/services/{name}/logs": "reader",
    "POST /v1/services/{name}/{command}": "deployer",
    "GET /v1/tokens": "admin",
    "POST /v1/tokens": "admin",
    "DELETE /v1/tokens/{name}": "admin",
    "GET /v1/webhooks": "admin",
    "POST /v1/webhooks": "admin",
    "GET /v1/webhooks/{webhook_id}": "admin",
    "PATCH /v1/webhooks/{webhook_id}": "admin",
    "DELETE /v1/webhooks/{webhook_id}": "admin",
    "GET /v1/webhooks/{webhook_id}/deliveries": "admin",
    "POST /v1/webhooks/{webhook_id}/test": "admin",
}

# Credential -> (role, env scope): every kind the server hands out, and the invalid ones.
CREDENTIALS = {
    "none": None,
    "revoked": ("reader", None),
    "admin": ("admin", None),
    "deployer": ("deployer", None),
    "reader": ("reader", None),
    "agent-prod": ("agent", ENV),
    "agent-other": ("agent", "staging"),
    "metrics": ("metrics", None),
    "alertmanager": ("alertmanager", None),
}


def admitted(rule: str, credential: str) -> bool:
    found = CREDENTIALS[credential]
    if found is None or credential == "revoked":
        return rule == "public"
    role, env = found
    if rule == "public":
        return True
    if rule in BROAD:
        return BROAD.get(role, -1) >= BROAD[rule]
    if rule == "flag-reader":
        return role in BROAD or (role == "agent" and env == ENV)
    if rule == "exposure-reporter":
        return role == "agent" and env == ENV
    if rule == "metrics-pusher":
        return role == "metrics" or BROAD.get(role, -1) >= BROAD["deployer"]
    if rule == "alertmanager":
        return role == "alertmanager" or BROAD.get(role, -1) >= BROAD["deployer"]
    raise AssertionError(f"unknown rule {rule}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    with running_server(tmp_path_factory.mktemp("authz") / "state") as server:
        admin = {"Authorization": f"Bearer {server.token}"}
        httpx.post(f"{server.url}/v1/flags/envs", json={"name": ENV}, headers=admin)
        httpx.post(f"{server.url}/v1/flags/envs", json={"name": "staging"}, headers=admin)
        tokens = {"admin": server.token}
        for credential, found in CREDENTIALS.items():
            if found is None or credential == "admin":
                continue
            role, env = found
            body = {"role": role, "name": f"matrix-{credential}", "env": env}
            r = httpx.post(f"{server.url}/v1/tokens", json=body, headers=admin)
            assert r.status_code == 201, r.text
            tokens[credential] = r.json()["token"]
        r = httpx.delete(f"{server.url}/v1/tokens/matrix-revoked", headers=admin)
        assert r.status_code == 200, r.text
        yield server, tokens


def _operations(server: Server) -> list[str]:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    return sorted(f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops)


def test_every_route_has_an_entry_in_the_matrix(live: tuple[Server, dict[str, str]]) -> None:
    server, _ = live
    assert _operations(server) == sorted(MATRIX)


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_each_credential_passes_exactly_the_doors_it_was_made_for(
    live: tuple[Server, dict[str, str]], credential: str
) -> None:
    server, tokens = live
    headers = {"Authorization": f"Bearer {tokens[credential]}"} if credential in tokens else {}
    wrong = []
    for operation, rule in MATRIX.items():
        method, template = operation.split(" ", 1)
        path = re.sub(r"\{env\}", ENV, template)
        path = re.sub(r"\{command\}", "stop", path)
        path = re.sub(r"\{number\}", "1", path)
        path = re.sub(r"\{[a-z_]+\}", "matrix-missing", path)
        with httpx.stream(
            method, server.url + path, json=None if method == "GET" else {}, headers=headers,
            timeout=10,
        ) as r:  # fmt: skip
            status = r.status_code  # a stream answers its headers at once: not read further
        expected = admitted(rule, credential)
        if expected and status in (401, 403):
            wrong.append(f"{operation}: refused {status}, should be admitted ({rule})")
        if not expected and status != (403 if credential in tokens and credential != "revoked"
                                        else 401):  # fmt: skip
            wrong.append(f"{operation}: answered {status}, should be refused ({rule})")
    assert wrong == [], "\n".join(wrong)


def test_a_metrics_token_for_one_service_pushes_for_it_only(
    live: tuple[Server, dict[str, str]],
) -> None:
    server, tokens = live
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    made = httpx.post(f"{server.url}/v1/tokens", headers=admin, json={
        "role": "metrics", "name": "app-shop", "service": "shop"}).json()  # fmt: skip
    push = {"Authorization": f"Bearer {made['token']}"}

    def metric(service: str) -> dict[str, object]:
        return {"metrics": [{"name": "latency", "value": 1, "dimensions": {"service": service}}]}

    assert (
        httpx.post(f"{server.url}/v1/metrics", json=metric("shop"), headers=push).status_code == 200
    )
    r = httpx.post(f"{server.url}/v1/metrics", json=metric("cart"), headers=push)
    assert r.status_code == 403 and "pushes for service 'shop' only" in r.text


def test_events_name_the_token_not_its_role(live: tuple[Server, dict[str, str]]) -> None:
    server, tokens = live
    deployer = {"Authorization": f"Bearer {tokens['deployer']}"}
    r = httpx.post(f"{server.url}/v1/flags/envs", json={"name": "named"}, headers=deployer)
    assert r.status_code == 201, r.text
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    events = httpx.get(f"{server.url}/v1/events?kind=flags.*", headers=admin).json()
    created = [e for e in events if e["kind"] == "flags.env.created" and "named" in e["subject"]]
    assert [e["actor"] for e in created] == ["matrix-deployer"]
    revoked = httpx.get(f"{server.url}/v1/events?kind=token.revoked", headers=admin).json()
    assert [(e["subject"], e["actor"]) for e in revoked] == [("matrix-revoked", "first-admin")]
