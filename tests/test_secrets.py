"""Secret hygiene: a canary in the server's environment reaches no replica, hook, answer,
event or log; the state dir is the owner's alone."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from sluicegate._child_env import ALLOWED, child_env
from tests._support import free_port
from tests._support.server import running_server
from tests.test_mistakes_e2e import Api, spec

CANARY = "canary-7f3a9c1e5b"


def test_a_child_gets_the_allowlist_its_own_env_and_what_the_operator_passes_on_purpose() -> None:
    server_env = {"PATH": "/bin", "LC_TIME": "C", "DATABASE_URL": "postgresql://u:pw@h/db",
                  "AWS_SECRET_ACCESS_KEY": "x", "SLUICE_PASS_ENV": "APP_* TRACE_ID",
                  "APP_MODE": "blue", "TRACE_ID": "t1"}  # fmt: skip
    env = child_env({"PORT": "8080", "PATH": "/opt/bin"}, source=server_env)
    assert env == {"PATH": "/opt/bin", "LC_TIME": "C", "PORT": "8080", "APP_MODE": "blue",
                   "TRACE_ID": "t1"}  # fmt: skip
    assert "PATH" in ALLOWED and "HOME" in ALLOWED


@pytest.mark.slow
def test_a_canary_in_the_servers_environment_reaches_nothing_it_was_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_CANARY_SECRET", CANARY)  # the server inherits it
    show_env = [sys.executable, "-c",
                "import os, sys; print('env:', sorted(os.environ))"
                "; print('canary:', os.environ.get('SLUICE_CANARY_SECRET'))"
                "; sys.stdout.flush()"
                "; os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"]  # fmt: skip
    app = [*show_env, str(Path(__file__).parent.parent / "examples" / "app.py"), "--port",
           "{port}"]  # fmt: skip
    hook = {"before_allow_traffic": [{"command": [*show_env[:3]]}]}
    state = tmp_path / "state"
    with running_server(state) as server, Api(server) as api:
        data = spec("shop", free_port(), compute={"local": {"command": app}},
                    deployment={"hooks": hook}, listener={"test_port": free_port()})  # fmt: skip
        assert api.apply(data).status_code == 200
        dep = api.until(api.deploy("shop", "v1"), {"succeeded"})
        logs = api.ok("GET", "/services/shop/logs?revision=v1")["logs"]
        assert "canary: None" in logs and "'PATH'" in logs  # the replica ran and looked
        hook_event = next(e for e in dep["events"] if e["kind"] == "deployment.hook_passed")
        assert "canary: None" in hook_event["message"]
        everything = [
            logs,
            str(api.ok("GET", "/events?limit=10000")),
            str(dep),
            str(api.ok("GET", "/services/shop")),
            str(api.ok("GET", "/healthz")),
        ]
        for text in everything:
            assert CANARY not in text
    for path in state.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".db", ".lock", ".token", ".secret"):
            assert CANARY not in path.read_text(errors="replace"), path
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    for name in ("sluicegate.db", "server.lock", "router/router.log", "logs/shop/v1/0.log"):
        assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600, name


@pytest.mark.slow
def test_a_secret_env_value_reaches_the_replica_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "pw-3b9f1c77e0"
    monkeypatch.setenv("SHOP_DB_PASSWORD", secret)  # the server's environment holds it
    crash = [sys.executable, "-c",
             "import os, sys; print('connecting with', os.environ['DB_PASSWORD']); sys.exit(3)",
             "{port}"]  # fmt: skip
    with running_server(tmp_path / "state") as server, Api(server) as api:
        missing = spec("shop", free_port(), compute={"local": {
            "command": crash, "env": {"DB_PASSWORD": {"secret": "NOT_SET_ANYWHERE"}}}})  # fmt: skip
        r = api.apply(missing)
        assert r.status_code == 422
        assert r.json()["problems"] == [{"path": "compute.local.env.DB_PASSWORD", "message": (
            "the server's environment has no NOT_SET_ANYWHERE (start sluice server with it "
            "set)")}]  # fmt: skip
        data = spec("shop", free_port(), compute={"local": {
            "command": crash, "env": {"DB_PASSWORD": {"secret": "SHOP_DB_PASSWORD"}}}})  # fmt: skip
        assert api.apply(data).status_code == 200
        dep = api.until(api.deploy("shop", "v1"), {"failed"}, timeout=40)
        failed = next(e for e in dep["events"] if e["kind"] == "deployment.green_failed")
        assert any("connecting with [secret]" in line for line in failed["data"]["logs"])
        logs = api.ok("GET", "/services/shop/logs?revision=v1")["logs"]
        assert "connecting with [secret]" in logs  # the replica had it; the API hides it
        stored = api.ok("GET", "/services/shop")["spec"]["compute"]["local"]["env"]
        assert stored == {"DB_PASSWORD": {"secret": "SHOP_DB_PASSWORD", "file": None}}
        for text in (str(api.ok("GET", "/events?limit=10000")), str(dep), logs):
            assert secret not in text
    assert secret not in (tmp_path / "state" / "sluicegate.db").read_bytes().decode(
        errors="replace"
    )
