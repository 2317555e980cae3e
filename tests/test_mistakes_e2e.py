"""The mistakes a new user makes, against a real `sluice server`, router and replicas.

Each ends refused or FAILED with the real cause where the user looks (the API's answer, the
deployment's events, `sluice logs`), within its bound — and harms nothing else: a bystander
service still deploys afterwards, and a bad release elsewhere is still rolled back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._support import APP_PATH, REPO_ROOT, free_port
from tests._support.rawhttp import get_many
from tests._support.server import Server, stop_everything

pytestmark = pytest.mark.slow

APP = [sys.executable, str(APP_PATH), "--port", "{port}", "--version", "{revision}"]


def spec(name: str, port: int, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "service": name,
        "listener": {"port": port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {"local": {"command": APP, "replicas": 1, "stop_grace": "1s"}},
        "deployment": {"config": "AllAtOnce", "termination_wait": "0s", "health_timeout": "60s"},
    }
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return data


class Api:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, "/v1" + path, json=body)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        r = self.call(method, path, body)
        assert r.status_code < 300, r.text
        return r.json()

    def apply(self, data: dict[str, Any]) -> httpx.Response:
        return self.call("PUT", f"/services/{data['service']}", data)

    def deploy(self, service: str, revision: str, **body: Any) -> str:
        dep: str = self.ok(
            "POST", f"/services/{service}/deployments", {"revision": revision, **body}
        )["id"]
        return dep

    def events(self, subject: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.ok("GET", f"/events?subject={subject}&limit=1000")
        return out

    def until(self, dep: str, phases: set[str], timeout: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            d: dict[str, Any] = self.ok("GET", f"/deployments/{dep}")
            if d["phase"] in phases:
                return d
            story = "\n".join(f"{e['kind']}: {e['message']}" for e in d["events"])
            assert time.monotonic() < deadline, f"{dep} still {d['phase']}:\n{story}"
            time.sleep(0.2)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def versions(port: int, n: int = 10) -> set[str]:
    return {r.version if r.status == 200 else str(r.status) for r in get_many(port, n)}


def sluice(*args: str, server: Server | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if server is not None:
        env.update(SLUICE_URL=server.url, SLUICE_TOKEN=server.token)
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def router_pid(state: Path) -> int:
    pid: int = json.loads((state / "router" / "router.json").read_text())["pid"]
    return pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    )


@contextlib.contextmanager
def held_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


class Env:
    """One server for the module, with a bystander service that must keep deploying."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.server = Server(state, free_port(), ["--give-up-after", "3s"])
        self.server.start()
        self.api = Api(self.server)
        self.good_port = free_port()
        self.revision = 0
        assert self.api.apply(spec("good", self.good_port)).status_code == 200
        self.bystander_deploys()

    def bystander_deploys(self) -> None:
        """Nothing else was harmed: the bystander still deploys, and still rolls back."""
        self.revision += 1
        rev = f"g{self.revision}"
        self.api.until(self.api.deploy("good", rev), {"succeeded"})
        assert versions(self.good_port) == {rev}

    def bad_release_elsewhere_rolls_back(self) -> None:
        hook = {"before_allow_traffic": [{"command": ["false"]}]}
        data = spec("good", self.good_port, deployment={"hooks": hook})
        assert self.api.apply(data).status_code == 200
        try:
            dep = self.api.until(
                self.api.deploy("good", f"bad{self.revision}"),
                {"rolled_back", "failed", "succeeded"},
            )
            assert dep["phase"] == "rolled_back", dep
            assert versions(self.good_port) == {f"g{self.revision}"}
        finally:
            assert self.api.apply(spec("good", self.good_port)).status_code == 200

    def sql(self, statement: str, *args: Any) -> None:
        with contextlib.closing(sqlite3.connect(self.state / "sluicegate.db", timeout=10)) as db:
            db.execute(statement, args)
            db.commit()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    state = tmp_path_factory.mktemp("mistakes") / "state"
    e = Env(state)
    try:
        yield e
    finally:
        e.api.http.close()
        e.server.stop()
        stop_everything(state)


# --- 1. apply is all or nothing -----------------------------------------------------------


def test_an_apply_that_takes_another_services_port_is_refused_and_stores_nothing(env: Env) -> None:
    api = env.api
    r = api.apply(spec("intruder", env.good_port))
    assert r.status_code == 422
    assert r.json()["problems"] == [
        {
            "path": "listener.port",
            "message": (
                f"port {env.good_port} is already used by service 'good' (its listener.port)"
            ),
        }
    ]
    assert api.call("GET", "/services/intruder").status_code == 404
    assert api.events("intruder") == []

    own = free_port()
    assert api.apply(spec("neighbour", own)).status_code == 200
    r = api.apply(spec("neighbour", own, listener={"test_port": env.good_port}))
    assert r.status_code == 422
    assert r.json()["problems"][0]["path"] == "listener.test_port"
    assert api.ok("GET", "/services/neighbour")["spec"]["listener"] == {
        "port": own,
        "test_port": None,
        "flag_route": None,
        "tls": None,
        "redirect_port": None,
    }
    assert [e["kind"] for e in api.events("neighbour")] == ["service.applied"]
    env.bystander_deploys()


def test_an_apply_on_a_port_another_program_holds_is_refused(env: Env) -> None:
    api = env.api
    with held_port() as taken:
        r = api.apply(spec("squatted", taken))
        assert r.status_code == 422, r.text
        problem = r.json()["problems"][0]
        assert problem["path"] == "listener.port"
        assert f"127.0.0.1:{taken}" in problem["message"]
        assert api.call("GET", "/services/squatted").status_code == 404

        # A serving service moved onto it: refused, and it keeps serving where it was.
        r = api.apply(spec("good", taken))
        assert r.status_code == 422, r.text
        assert versions(env.good_port) == {f"g{env.revision}"}
    env.bystander_deploys()


def test_a_port_taken_between_apply_and_deploy_is_refused_at_deploy(env: Env) -> None:
    api = env.api
    port = free_port()
    assert api.apply(spec("late", port)).status_code == 200
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        r = api.call("POST", "/services/late/deployments", {"revision": "v1"})
        assert r.status_code == 422, r.text
        assert r.json()["problems"][0]["path"] == "listener.port"
    assert api.ok("GET", "/deployments?service=late") == []


# --- 3. revisions that cannot run fail at once ---------------------------------------------


def test_a_command_that_does_not_exist_fails_at_once_with_its_cause_in_events_and_logs(
    env: Env,
) -> None:
    api = env.api
    data = spec(
        "ghost",
        free_port(),
        compute={
            "local": {"command": ["/nonexistent/bin/shop", "--port", "{port}"], "replicas": 1}
        },
    )
    assert api.apply(data).status_code == 200
    started = time.monotonic()
    dep = api.until(api.deploy("ghost", "v1"), {"failed"}, timeout=20)
    assert time.monotonic() - started < 15  # not the 60 s health timeout
    cause = "cannot run '/nonexistent/bin/shop': [Errno 2] No such file or directory"
    assert cause in dep["reason"]
    failed = [e for e in dep["events"] if e["kind"] == "deployment.green_failed"]
    assert len(failed) == 1 and cause in failed[0]["message"]
    logs = api.ok("GET", "/services/ghost/logs?revision=v1")["logs"]
    assert "cannot start /nonexistent/bin/shop" in logs
    env.bystander_deploys()


def test_a_command_that_crashes_at_once_fails_when_compute_gives_up_with_its_last_output(
    env: Env,
) -> None:
    api = env.api
    crash = [
        sys.executable,
        "-c",
        "import sys; print('boom: no config at', sys.argv[1]); sys.exit(3)",
        "{port}",
    ]
    data = spec("crasher", free_port(), compute={"local": {"command": crash, "replicas": 1}})
    assert api.apply(data).status_code == 200
    started = time.monotonic()
    dep = api.until(api.deploy("crasher", "v1"), {"failed"}, timeout=40)
    assert time.monotonic() - started < 30  # the restarts' back-off, not the 60 s timeout
    assert "crashed 5 times in a row, gave up" in dep["reason"]
    assert "exited with code 3" in dep["reason"]
    failed = next(e for e in dep["events"] if e["kind"] == "deployment.green_failed")
    assert any("boom: no config at" in line for line in failed["data"]["logs"])


def test_an_undeclared_external_revision_is_refused_at_deploy(env: Env) -> None:
    api = env.api
    app_port = free_port()
    data = spec("outside", free_port())
    data["compute"] = {"external": {"revisions": {"v1": [f"127.0.0.1:{app_port}"]}}}
    applied = api.apply(data)
    assert applied.status_code == 200, applied.text
    r = api.call("POST", "/services/outside/deployments", {"revision": "v2"})
    assert r.status_code == 422
    assert r.json()["problems"] == [
        {
            "path": "revision",
            "message": (
                "compute.external.revisions.v2: no endpoints are declared for this revision "
                "(declared: v1); fix the spec and apply it first"
            ),
        }
    ]
    assert api.ok("GET", "/deployments?service=outside") == []


@pytest.mark.parametrize("command", ["stop", "rollback"])
def test_stop_and_rollback_take_effect_before_green_is_healthy(env: Env, command: str) -> None:
    api = env.api
    name = f"never-{command}"
    data = spec(name, free_port(), health_check={"path": "/no-such-page"})
    assert api.apply(data).status_code == 200
    dep = api.deploy(name, "v1")
    api.until(dep, {"health_gate"})
    assert api.call("POST", f"/deployments/{dep}/{command}").status_code == 202
    ended = api.until(dep, {"stopped", "rolled_back"}, timeout=10)
    assert ended["phase"] == ("stopped" if command == "stop" else "rolled_back")
    assert api.ok("GET", f"/services/{name}/logs?revision=v1")  # it ran, and was stopped


# --- 4. engines cannot die quietly --------------------------------------------------------


def _paused_at_a_gate(env: Env, name: str) -> tuple[str, int]:
    port = free_port()
    gate = {"config": {"steps": [{"weight": 10}, {"pause": "until_promoted"}]}}
    assert env.api.apply(spec(name, port, deployment=gate)).status_code == 200
    env.api.until(env.api.deploy(name, "v1"), {"succeeded"})
    dep = env.api.deploy(name, "v2")
    env.api.until(dep, {"paused_until_promoted"})
    return dep, port


def test_a_deployment_whose_state_makes_its_tick_raise_harms_no_one_and_is_given_up(
    env: Env,
) -> None:
    api = env.api
    dep, port = _paused_at_a_gate(env, "poisoned")
    env.sql("UPDATE deployments SET state = json_set(state, '$.step_index', 'x') WHERE id = ?", dep)
    wait_for(
        lambda: any(e["kind"] == "deployment.retrying" for e in api.events(dep)),
        10,
        "a retrying event",
    )
    retrying = next(e for e in api.events(dep) if e["kind"] == "deployment.retrying")
    assert "internal error: TypeError" in retrying["message"]
    ended = api.until(dep, {"failed"}, timeout=15)  # given up after --give-up-after 3s
    assert "kept failing" in ended["reason"]
    assert versions(port) == {"v1"}  # traffic back on blue
    health = api.ok("GET", "/healthz")
    assert health["engines"]["deploy"]["ok"] is True
    env.bystander_deploys()
    env.bad_release_elsewhere_rolls_back()


def test_a_service_whose_stored_spec_cannot_be_read_keeps_its_traffic_and_harms_no_one(
    env: Env,
) -> None:
    port = free_port()
    assert env.api.apply(spec("unreadable", port)).status_code == 200
    env.api.until(env.api.deploy("unreadable", "v1"), {"succeeded"})
    env.sql(
        "UPDATE services SET spec = json_set(spec, '$.listener.port', 'nope') "
        "WHERE name = 'unreadable'"
    )
    env.bystander_deploys()  # re-routes every service: this one keeps its listener
    assert versions(port) == {"v1"}
    env.bad_release_elsewhere_rolls_back()
    assert versions(port) == {"v1"}


def test_engines_report_their_last_good_tick_and_restarts(env: Env) -> None:
    health = env.api.ok("GET", "/healthz")
    assert health["status"] == "ok" and health["problems"] == []
    assert {
        "deploy",
        "flag-rollouts",
        "alarms",
        "webhooks",
        "router-watch",
        "replicas",
        "store",
    } <= set(health["engines"])
    for name, engine in health["engines"].items():
        if name != "rollups":  # ticks once a minute
            assert engine["seconds_since_good_tick"] < 10, (name, engine)
    text = env.api.http.get("/metrics").text
    assert 'sluicegate_engine_up{engine="deploy"} 1' in text
    assert 'sluicegate_engine_restarts_total{engine="deploy"} 0' in text


# --- 5. commands survive a crash ------------------------------------------------------------


def test_a_rollback_accepted_just_before_a_crash_is_applied_after_the_restart(env: Env) -> None:
    api = env.api
    dep, port = _paused_at_a_gate(env, "crashy")
    assert api.call("POST", f"/deployments/{dep}/rollback").status_code == 202
    env.server.kill()  # SIGKILL, within milliseconds of the 202
    env.server.start()
    ended = api.until(dep, {"rolled_back"}, timeout=20)
    assert ended["reason"] == "rolled back by first-admin"
    assert versions(port) == {"v1"}
    with contextlib.closing(sqlite3.connect(env.state / "sluicegate.db")) as db:
        pending = db.execute(
            "SELECT count(*) FROM deployment_commands WHERE deployment_id = ?"
            " AND handled_at IS NULL",
            (dep,),
        ).fetchone()[0]
    assert pending == 0
    env.bystander_deploys()


# --- 7. start-up and the state dir --------------------------------------------------------


def test_a_taken_api_port_fails_with_one_line_before_any_side_effect(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with held_port() as taken:
        out = sluice("server", "--port", str(taken), "--state-dir", str(state))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"sluice: error: cannot listen on 127.0.0.1:{taken} (--port/--host): address already "
        "in use (another sluice server? choose another --port)"
    ]
    assert "admin token" not in out.stdout
    assert not state.exists()  # nothing made, no router started


def test_a_second_server_on_the_same_state_dir_is_refused(env: Env) -> None:
    out = sluice("server", "--port", str(free_port()), "--state-dir", str(env.state))
    assert out.returncode == 2
    assert "another sluice server (pid" in out.stderr
    assert "Traceback" not in out.stderr
    assert env.api.ok("GET", "/healthz")["status"] == "ok"


def test_a_deleted_state_dir_stops_the_engines_and_a_restart_refuses_to_start_afresh(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    server = Server(state, free_port())
    server.start()
    api = Api(server)
    router = router_pid(state)
    try:
        assert api.ok("GET", "/healthz")["status"] == "ok"
        subprocess.run(["rm", "-rf", str(state)], check=True)
        wait_for(lambda: api.call("GET", "/healthz").status_code == 503, 10, "healthz 503")
        health = api.call("GET", "/healthz").json()
        assert f"the state dir {state} is gone" in health["paused"]
        refused = api.apply(spec("shop", free_port()))
        assert refused.status_code == 503
        assert "is gone" in refused.json()["error"]
        server.kill()

        again = sluice("server", "--port", str(free_port()), "--state-dir", str(state))
        assert again.returncode == 2
        assert f"a router started from {state}/router is still running (pid {router})" in (
            again.stderr
        )
        assert alive(router)
    finally:
        api.http.close()
        if server.proc and server.proc.poll() is None:
            server.kill()
        server.release()
        with contextlib.suppress(ProcessLookupError):
            os.kill(router, signal.SIGTERM)
        stop_everything(state)
