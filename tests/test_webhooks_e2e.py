"""Webhooks through a real `sluice server`: the API (admin only, secret shown once, errors at
their field), the CLI, and a deployment whose events reach a real receiver, signed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sluicegate.notify import verify
from tests._support import APP_PATH, REPO_ROOT, free_port
from tests._support.receiver import Receiver
from tests._support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("webhooks") / "state", ["--allow-private-webhooks"]
    ) as s:
        yield s


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def call(
    server: Server, method: str, path: str, body: Any = None, token: str | None = None
) -> httpx.Response:
    auth = server.token if token is None else token
    headers = {"Authorization": f"Bearer {auth}"} if auth else {}
    return httpx.request(method, server.url + "/v1" + path, json=body, timeout=30, headers=headers)


def test_a_webhook_is_created_with_its_secret_shown_once_and_tested(
    server: Server, receiver: Receiver
) -> None:
    r = call(server, "POST", "/webhooks", {"url": receiver.url("/t"), "events": ["alarm.*"]})
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    hook = created["id"]
    listed = call(server, "GET", "/webhooks").json()
    assert {
        "id": hook,
        "url": receiver.url("/t"),
        "events": ["alarm.*"],
        "enabled": True,
    }.items() <= next(h for h in listed if h["id"] == hook).items()
    assert secret not in json.dumps(listed) + call(server, "GET", f"/webhooks/{hook}").text

    assert call(server, "POST", f"/webhooks/{hook}/test").status_code == 202
    (got,) = receiver.wait_for(1, "/t")
    assert got.header("X-Sluicegate-Event") == "webhook.test"
    assert verify(
        secret, got.header("X-Sluicegate-Timestamp"), got.body, got.header("X-Sluicegate-Signature")
    )
    assert json.loads(got.body)["subject"] == hook
    deliveries = wait_deliveries(server, hook, 1)
    assert [(d["kind"], d["status"], d["attempts"], d["last_status"]) for d in deliveries] == [
        ("webhook.test", "delivered", 1, 200)
    ]

    assert call(server, "PATCH", f"/webhooks/{hook}", {"enabled": False}).json()["enabled"] is False
    r = call(server, "POST", f"/webhooks/{hook}/test")
    assert r.status_code == 409 and "disabled" in r.json()["error"]
    assert call(server, "DELETE", f"/webhooks/{hook}").json() == {"deleted": hook}
    assert call(server, "GET", f"/webhooks/{hook}").status_code == 404
    assert call(server, "GET", f"/webhooks/{hook}/deliveries").status_code == 404
    kinds = [
        e["kind"] for e in call(server, "GET", "/events?limit=10000").json() if e["subject"] == hook
    ]
    assert kinds == ["webhook.created", "webhook.test", "webhook.disabled", "webhook.deleted"]


def test_bad_webhook_settings_are_refused_at_their_field(server: Server) -> None:
    r = call(
        server,
        "POST",
        "/webhooks",
        {"url": "ftp://x", "events": ["Deploy*", "ok.*"], "secret": "short"},
    )
    assert r.status_code == 422
    assert [p["path"] for p in r.json()["problems"]] == ["url", "events[0]", "secret"]
    r = call(server, "POST", "/webhooks", {"url": "http://x/", "events": ["*"], "sign": "x"})
    assert r.status_code == 422 and r.json()["problems"][0]["path"] == "sign"
    assert call(server, "GET", "/webhooks/wh_nope").status_code == 404


def test_webhooks_are_for_admins_only(server: Server) -> None:
    r = call(server, "POST", "/tokens", {"role": "deployer", "name": "ci"})
    deployer = r.json()["token"]
    assert call(server, "GET", "/webhooks", token=deployer).status_code == 403
    r = call(server, "POST", "/webhooks", {"url": "http://x/", "events": ["*"]}, token=deployer)
    assert r.status_code == 403
    assert call(server, "GET", "/webhooks", token="").status_code == 401


def wait_deliveries(
    server: Server, hook: str, count: int, status: str = "delivered", timeout: float = 30
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        got = call(server, "GET", f"/webhooks/{hook}/deliveries?status={status}").json()
        if len(got) >= count:
            return got  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, got
        time.sleep(0.2)


def service_spec(port: int) -> dict[str, Any]:
    return {
        "service": "shop",
        "listener": {"port": port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {
            "local": {
                "command": [
                    sys.executable,
                    str(APP_PATH),
                    "--port",
                    "{port}",
                    "--version",
                    "{revision}",
                ],
                "replicas": 1,
                "stop_grace": "2s",
            }
        },
        "deployment": {"config": "AllAtOnce", "termination_wait": "0s"},
    }


@pytest.mark.slow
def test_sluice_webhooks_add_then_a_deployment_sends_signed_deployment_events(
    server: Server, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_HOOK_SECRET", "a-secret-from-the-environment")
    out = server.cli(
        "webhooks",
        "add",
        receiver.url("/deploys"),
        "--events",
        "deployment.*",
        "--events",
        "alarm.*",
        "--secret-env",
        "SHOP_HOOK_SECRET",
    )
    match = re.search(r"webhook (wh_[0-9a-f]+) -> ", out)
    assert match, out
    hook = match.group(1)
    assert "secret" not in out  # it came from the environment: nothing to show
    assert hook in server.cli("webhooks", "list")

    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(service_spec(free_port())))
    server.cli("apply", "-f", str(path))
    dep = re.search(r"deployment (\S+):", server.cli("deploy", "shop", "--revision", "v1"))
    assert dep
    server.wait_phase(dep.group(1), {"succeeded"})

    log = [
        e
        for e in call(server, "GET", "/events?limit=10000").json()
        if e["subject"] == dep.group(1) and e["kind"].startswith("deployment.")
    ]
    got = receiver.wait_for(len(log), "/deploys")
    assert [json.loads(r.body) for r in got] == log  # every deployment event, in log order
    assert got[-1].header("X-Sluicegate-Event") == "deployment.succeeded"
    for r in got:
        assert verify(
            "a-secret-from-the-environment",
            r.header("X-Sluicegate-Timestamp"),
            r.body,
            r.header("X-Sluicegate-Signature"),
        )
    assert not [r for r in receiver.requests if json.loads(r.body)["kind"] == "service.applied"]

    table = server.cli("webhooks", "deliveries", hook, "--status", "delivered")
    assert table.count("delivered") >= len(log)
    assert "deployment.succeeded" in table
    server.cli("webhooks", "rm", hook)
    assert hook not in server.cli("webhooks", "list")


def test_the_server_refuses_a_prometheus_url_that_is_not_http(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sluicegate",
            "server",
            "--state-dir",
            str(tmp_path / "state"),
            "--prometheus-url",
            "prom:9090",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert out.returncode == 2
    assert "--prometheus-url" in out.stderr and "'prom:9090' is not an http://" in out.stderr
