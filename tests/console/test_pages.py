"""The console's pages and actions over the real app (TestClient, a real SQLite store):
login and its mistakes, the session cookie, CSP, CSRF, roles, reasons, logout, revocation.
No router or replica runs: deployments are recorded in the store as the controller would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sluicegate.api import create_app
from sluicegate.clock import ManualClock
from sluicegate.compute import ComputeSelector, ExternalCompute, LocalCompute
from sluicegate.console import CSP, install_console
from sluicegate.deploy import Phase
from sluicegate.deploy.controller import Controller
from sluicegate.deploy.lifecycle import start
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.monitor.sources import Sources
from sluicegate.router.supervisor import RouterSupervisor
from sluicegate.router.traffic import RouterTraffic
from sluicegate.store import Store

GATED = {"steps": [{"weight": 20, "pause": "2s"}, {"pause": "until_promoted"}]}


SPEC = {
    "service": "shop",
    "listener": {"port": 9},
    "compute": {"local": {"command": ["true", "{port}"], "replicas": 1}},
}


def gated_state(now: float) -> dict[str, Any]:
    """A deployment at its manual gate with green at 20 %, as the controller records it."""
    state = replace(
        start(now, has_blue=True), phase=Phase.PAUSED_UNTIL_PROMOTED, green_weight=20,
        step_index=1,
    )  # fmt: skip
    return {**asdict(state), "phase": state.phase.value, "ending": None}


class World:
    def __init__(self, tmp: Path, *, engine: bool = False) -> None:
        self.clock = ManualClock()
        self.store = Store.open(tmp / "db.sqlite", clock=self.clock)
        computes = ComputeSelector(local=LocalCompute(tmp), external=ExternalCompute())
        traffic = RouterTraffic(RouterSupervisor(tmp).client())  # never called here
        self.ctl = Controller(self.store, computes, traffic, self.clock)
        # the alarm loop's engine, for forced states (no source: it never evaluates here)
        alarms = AlarmEngine(self.store, Sources(), self.clock) if engine else None
        self.app = create_app(self.ctl, self.store, engine=alarms)
        self.console = install_console(self.app, self.clock)
        self.store.services.put("shop", SPEC)
        self.store.deployments.create(
            "shop", "v1", config={"plan": GATED, "actor": "ci"}, state={}, phase="succeeded",
            status="succeeded", active=False,
        )  # fmt: skip
        self.dep = self.store.deployments.create(
            "shop", "v2", from_revision="v1", config={"plan": GATED, "actor": "ci"},
            state=gated_state(self.clock.now()),
            phase="paused_until_promoted", status="in_progress",
        )  # fmt: skip
        self.tokens = {
            role: self.store.tokens.create(role, f"{role}-1")
            for role in ("admin", "deployer", "reader")
        }

    def client(self, role: str | None = None, base_url: str = "http://testserver") -> TestClient:
        c = TestClient(self.app, base_url=base_url)
        if role is not None:
            r = c.post("/ui/login", data={"token": self.tokens[role]}, follow_redirects=False)
            assert r.status_code == 303, r.text
        return c


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def csrf_of(client: TestClient, path: str = "/ui/") -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert m, "no CSRF token on the page"
    return m.group(1)


def test_pages_send_a_visitor_without_a_session_to_the_login_form(world: World) -> None:
    c = world.client()
    for path in ("/ui/", f"/ui/deployments/{world.dep.id}", "/ui/activity"):
        r = c.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/ui/login"), path
    assert c.get("/ui/live/overview").status_code == 401
    assert c.post(f"/ui/deployments/{world.dep.id}/rollback", data={}).status_code == 401


def test_login_mistakes_are_named_and_open_no_session(world: World) -> None:
    c = world.client()
    r = c.post("/ui/login", data={"token": "sgt_nope"})
    assert r.status_code == 401 and "token: unknown, revoked or expired" in r.text
    assert c.post("/ui/login", data={}).status_code == 401
    agent = world.store.tokens.create("agent", "edge", "prod")
    r = c.post("/ui/login", data={"token": agent})
    assert r.status_code == 401
    assert "&#39;edge&#39; is a agent token; the console needs a reader" in r.text
    assert "set-cookie" not in r.headers
    assert len(world.console.sessions) == 0


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_session_cookie_is_httponly_strict_scoped_and_secure_over_tls(
    world: World, scheme: str
) -> None:
    c = world.client(base_url=f"{scheme}://testserver")
    r = c.post("/ui/login", data={"token": world.tokens["reader"]}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert ("Secure" in cookie) == (scheme == "https")
    assert world.tokens["reader"] not in cookie  # the token stays on the server


def test_every_page_has_the_csp_and_no_inline_script_or_style(world: World) -> None:
    c = world.client("deployer")
    for path in ("/ui/", "/ui/?filter=needs-action", f"/ui/deployments/{world.dep.id}",
                 "/ui/activity?kind=deployment.*", "/ui/login"):  # fmt: skip
        r = c.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), path
        assert not re.search(r"\sstyle=", r.text), path
        assert not re.search(r"\son[a-z]+=", r.text), path


def test_the_overview_lists_every_service_and_filters_those_needing_action(world: World) -> None:
    world.store.services.put("calm", {"service": "calm"})
    c = world.client("reader")
    page = c.get("/ui/").text
    assert 'id="svc-shop"' in page and 'id="svc-calm"' in page
    assert "waiting for promote" in page and 'data-set="20"' in page
    needs = c.get("/ui/?filter=needs-action").text
    assert 'id="svc-shop"' in needs and 'id="svc-calm"' not in needs
    assert c.get("/ui/?filter=bogus").status_code == 422


def test_a_reader_sees_no_action_and_is_refused_even_with_its_csrf_token(world: World) -> None:
    c = world.client("reader")
    page = c.get(f"/ui/deployments/{world.dep.id}").text
    assert 'class="action"' not in page and "do-rollback" not in page
    r = c.post(
        f"/ui/deployments/{world.dep.id}/rollback",
        data={"csrf": csrf_of(c), "reason": "because"},
    )
    assert r.status_code == 403 and "needs the deployer role" in r.text
    assert world.store.commands.pending(world.dep.id) == []


def test_an_action_without_or_with_a_wrong_csrf_token_or_from_another_site_is_refused(
    world: World,
) -> None:
    c = world.client("deployer")
    url = f"/ui/deployments/{world.dep.id}/rollback"
    assert c.post(url, data={"reason": "x"}).status_code == 403
    assert c.post(url, data={"reason": "x", "csrf": "guess"}).status_code == 403
    other = world.client("deployer")
    assert c.post(url, data={"reason": "x", "csrf": csrf_of(other)}).status_code == 403
    r = c.post(url, data={"reason": "x", "csrf": csrf_of(c)},
               headers={"Origin": "https://evil.example"})  # fmt: skip
    assert r.status_code == 403 and "another site" in r.text
    assert world.store.commands.pending(world.dep.id) == []


def test_an_action_needs_a_reason_which_lands_in_the_event_log_with_the_token_name(
    world: World,
) -> None:
    c = world.client("deployer")
    url = f"/ui/deployments/{world.dep.id}/rollback"
    for reason, problem in (("  ", "reason: required"), ("x" * 501, "at most 500")):
        r = c.post(url, data={"csrf": csrf_of(c), "reason": reason})
        assert r.status_code == 422 and problem in r.text
    assert world.store.commands.pending(world.dep.id) == []
    r = c.post(url, data={"csrf": csrf_of(c), "reason": "checkout\n errors"},
               follow_redirects=False)  # fmt: skip
    assert (r.status_code, r.headers["location"]) == (303, f"/ui/deployments/{world.dep.id}")
    [cmd] = world.store.commands.pending(world.dep.id)
    assert (cmd.command, cmd.actor) == ("rollback", "deployer-1")
    [e] = world.store.events.list(subject=world.dep.id, kind="deployment.command")
    assert (e.actor, e.data["reason"], e.data["command"]) == ("deployer-1", "checkout errors",
                                                               "rollback")  # fmt: skip
    assert "rollback asked by deployer-1: checkout errors" in c.get("/ui/activity").text
    assert c.post(f"/ui/deployments/{world.dep.id}/explode",
                  data={"csrf": csrf_of(c), "reason": "x"}).status_code == 404  # fmt: skip


def test_logout_needs_the_csrf_token_and_ends_the_session(world: World) -> None:
    c = world.client("reader")
    assert c.post("/ui/logout", data={}).status_code == 403
    r = c.post("/ui/logout", data={"csrf": csrf_of(c)}, follow_redirects=False)
    assert r.status_code == 303 and 'sluice_session=""' in r.headers["set-cookie"]
    assert len(world.console.sessions) == 0
    assert c.get("/ui/", follow_redirects=False).status_code == 303


def test_revoking_the_token_ends_its_console_sessions_at_once(world: World) -> None:
    c = world.client("deployer")
    assert c.get("/ui/").status_code == 200
    world.store.tokens.revoke_named("deployer-1")
    assert c.get("/ui/", follow_redirects=False).status_code == 303
    assert len(world.console.sessions) == 0


def test_an_idle_session_expires(world: World) -> None:
    c = world.client("reader")
    world.clock._now += world.console.sessions.idle + 1
    assert c.get("/ui/", follow_redirects=False).status_code == 303


def test_the_activity_filters_by_kind_service_and_who(world: World) -> None:
    world.store.events.append("service.applied", "other", "service other applied", actor="bob")
    world.store.events.append("deployment.step", world.dep.id, "step 1 of 2", actor="controller")
    c = world.client("reader")
    only_bob = c.get("/ui/activity?actor=bob").text
    assert "service other applied" in only_bob and "step 1 of 2" not in only_bob
    shop = c.get("/ui/activity?service=shop&kind=deployment.*").text
    assert "step 1 of 2" in shop and "service other applied" not in shop


def test_static_files_are_served_and_unknown_ones_are_not(world: World) -> None:
    c = world.client()
    r = c.get("/ui/static/htmx.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert c.get("/ui/static/../__init__.py").status_code == 404
    assert c.get("/ui/static/README.md").status_code == 404


def test_console_routes_are_not_in_the_api_schema(world: World) -> None:
    paths: dict[str, Any] = world.client().get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]


def test_a_mistake_in_the_console_is_a_page_naming_it_and_the_api_keeps_its_json(
    world: World,
) -> None:
    c = world.client("deployer")
    r = c.post(f"/ui/deployments/{world.dep.id}/rollback", data={"csrf": csrf_of(c)})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert 'id="error">reason: required' in r.text and "Nothing was changed." in r.text
    r = c.get("/ui/deployments/d-000000000000")
    assert r.status_code == 404 and "not found" in r.text and "<h1>404: not found</h1>" in r.text
    r = c.post(f"/ui/deployments/{world.dep.id}/retry",
               data={"csrf": csrf_of(c), "reason": "again"})  # fmt: skip
    assert r.status_code == 409 and "can be retried" in r.text  # it is still active
    api = TestClient(world.app).get("/v1/services")
    assert api.status_code == 401 and api.json()["error"]


def test_an_insecure_server_lets_anyone_in_as_admin_but_still_wants_csrf(world: World) -> None:
    world.app.state.insecure = True  # sluice server --insecure: no token needed
    c = world.client()
    r = c.post("/ui/login", data={"token": "anything"}, follow_redirects=False)
    assert r.status_code == 303
    assert "insecure (admin)" in c.get("/ui/").text
    url = f"/ui/deployments/{world.dep.id}/stop"
    assert c.post(url, data={"reason": "x"}).status_code == 403
    assert (
        c.post(url, data={"reason": "x", "csrf": csrf_of(c)}, follow_redirects=False).status_code
        == 303
    )
    [cmd] = world.store.commands.pending(world.dep.id)
    assert (cmd.command, cmd.actor) == ("stop", "insecure")
