"""Services, deployments and the event log through a real server: the public deployment view,
commands by service, deleting a service, filtering deployments and events, 64-bit bounds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
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


def test_event_pages_read_forward_from_since_and_skip_none(server: Server) -> None:
    start = max([e["id"] for e in ok(server, "GET", "/v1/events", params={"limit": 1})], default=0)
    for name in ("paged-a", "paged-b", "paged-c"):
        declare(server, name)
    everything = ok(server, "GET", "/v1/events", params={"since": start, "limit": 10000})
    assert len(everything) >= 3
    read: list[dict[str, Any]] = []
    since = start
    while True:  # two at a time: /events would give the newest two, a page the oldest two
        page = ok(server, "GET", "/v1/events/page", params={"since": since, "limit": 2})
        read += page["events"]
        since = page["next"]
        if not page["more"]:
            break
    assert read == everything
    assert since == everything[-1]["id"]


def test_an_event_page_filters_as_the_event_list_does(server: Server) -> None:
    first, second = paused_at_the_gate(server, "paged-filter")
    for params in (
        {"service": "paged-filter"},
        {"service": "paged-filter", "kind": "deployment.*"},
        {"kind": "deployment.created"},
        {"subject": second},
        {"kind": "*", "subject": first},
    ):
        listed = ok(server, "GET", "/v1/events", params={**params, "limit": 10000})
        page = ok(server, "GET", "/v1/events/page", params={**params, "limit": 10000})
        assert page["events"] == listed and listed, params
        assert page["more"] is False
    ok(server, "POST", f"/v1/deployments/{second}/rollback")
    server.wait_phase(second, {"rolled_back"})


def test_an_event_page_that_matches_nothing_still_says_how_far_it_read(server: Server) -> None:
    declare(server, "paged-nothing")
    newest = ok(server, "GET", "/v1/events", params={"limit": 1})[-1]["id"]
    page = ok(server, "GET", "/v1/events/page", params={"kind": "no.such.kind"})
    assert page["events"] == [] and page["more"] is False and page["next"] >= newest


# A replica that prints what it is asked to: GET /say/<text> prints <text>.
SAYER = """
import http.server, sys
class Say(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith('/say/'):
            print(self.path[5:], flush=True)
        self.send_response(200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
    def log_message(self, *args):
        return  # quiet: the test reads the replica's own prints only
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Say).serve_forever()
"""


def test_logs_answer_a_cursor_after_which_only_new_lines_come(server: Server) -> None:
    port = free_port()
    spec = {
        "service": "sayer",
        "listener": {"port": port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {
            "local": {
                "command": [sys.executable, "-c", SAYER, "{port}"],
                "replicas": 2,
                "stop_grace": "1s",
            }
        },
        "deployment": {"termination_wait": "0s"},
    }
    ok(server, "PUT", "/v1/services/sayer", spec)
    dep = ok(server, "POST", "/v1/services/sayer/deployments", {"revision": "v1"})
    server.wait_phase(dep["id"], {"succeeded"})
    for i in range(3):
        assert httpx.get(f"http://127.0.0.1:{port}/say/before-{i}").status_code == 200
    tail = ok(server, "GET", "/v1/services/sayer/logs", params={"revision": "v1", "tail": 3})
    assert [r["replica"] for r in tail["replicas"]] == [0, 1]
    said = [line for r in tail["replicas"] for line in r["lines"] if line.startswith("before")]
    assert sorted(said) == ["before-0", "before-1", "before-2"]
    assert "==> replica 0 <==" in tail["logs"] and "before-0" in tail["logs"]
    positions = {r["replica"]: r["position"] for r in tail["replicas"]}
    assert tail["cursor"] == f"0:{positions[0]},1:{positions[1]}"

    def after(cursor: str) -> dict[str, Any]:
        params = {"revision": "v1", "after": cursor}
        answer: dict[str, Any] = ok(server, "GET", "/v1/services/sayer/logs", params=params)
        return answer

    quiet = after(tail["cursor"])
    assert quiet["cursor"] == tail["cursor"] and quiet["logs"] == ""
    assert all(r["lines"] == [] and r["skipped"] == 0 for r in quiet["replicas"])
    for i in range(6):
        httpx.get(f"http://127.0.0.1:{port}/say/after-{i}")
    new = after(tail["cursor"])
    lines = [line for r in new["replicas"] for line in r["lines"]]
    assert sorted(lines) == [f"after-{i}" for i in range(6)]
    assert after(new["cursor"])["replicas"][0]["lines"] == []
    one = ok(
        server,
        "GET",
        "/v1/services/sayer/logs",
        params={"revision": "v1", "replica": 1, "after": "0:0,1:0", "limit": 1},
    )
    assert [r["replica"] for r in one["replicas"]] == [1]
    assert one["replicas"][0]["more"] and len(one["replicas"][0]["lines"]) == 1
    assert one["cursor"] == f"0:0,1:{one['replicas'][0]['position']}"  # the rest kept as given
    for bad in ("0:x", "0:1,", "0:99999999999999999999", "0:9223372036854775808"):
        r = call(server, "GET", "/v1/services/sayer/logs", params={"revision": "v1", "after": bad})
        assert r.status_code == 422, (bad, r.text)
        assert "after" in r.json()["problems"][0]["path"], r.text
    ok(server, "DELETE", "/v1/services/sayer")


def test_followed_logs_never_show_a_secret_value_the_replicas_were_given(
    server: Server, tmp_path: Path
) -> None:
    secret = tmp_path / "token"
    secret.write_text("tok-5e2d9a41c3\n")
    port = free_port()
    spec = {
        "service": "keeper",
        "listener": {"port": port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {
            "local": {
                "command": [sys.executable, "-c", SAYER, "{port}"],
                "env": {"TOKEN": {"file": str(secret)}},
                "stop_grace": "1s",
            }
        },
        "deployment": {"termination_wait": "0s"},
    }
    ok(server, "PUT", "/v1/services/keeper", spec)
    dep = ok(server, "POST", "/v1/services/keeper/deployments", {"revision": "v1"})
    server.wait_phase(dep["id"], {"succeeded"})
    tail = ok(server, "GET", "/v1/services/keeper/logs", params={"revision": "v1"})
    httpx.get(f"http://127.0.0.1:{port}/say/using-tok-5e2d9a41c3-now")
    params = {"revision": "v1", "after": tail["cursor"]}
    new = ok(server, "GET", "/v1/services/keeper/logs", params=params)
    assert new["replicas"][0]["lines"] == ["using-[secret]-now"]
    assert "tok-5e2d9a41c3" not in new["logs"]
    ok(server, "DELETE", "/v1/services/keeper")


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
