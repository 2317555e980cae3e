"""The plan a new deployment answers says what will really happen: a service's first
deployment gets all traffic at once (no blue to compare with), and the rollback line names
what really rolls back: the default canary guard (unless the server runs with
--no-default-guards) and the guarding alarms."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._support import APP_PATH, free_port
from tests._support.server import Server, running_server

QUIET_ALARM: dict[str, Any] = {
    "name": "never",
    "metric": {"source": "push", "name": "errors", "dimensions": {"service": "{service}"}},
    "statistic": "Sum",
    "period": 1,
    "evaluation_periods": 1,
    "threshold": 1e9,
    "comparison": "GreaterThanThreshold",
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("plan-guarded") / "state") as s:
        yield s


@pytest.fixture(scope="module")
def unguarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("plan-unguarded") / "state", ["--no-default-guards"]
    ) as s:
        yield s


def call(server: Server, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(
        method,
        server.url + path,
        json=body,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def declare(server: Server, name: str, *alarms: dict[str, Any], hooks: bool = False) -> None:
    hook = [{"command": [sys.executable, "-c", "pass"], "timeout": "30s"}]
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
        "deployment": {
            "config": "Canary10Percent5Minutes",
            "termination_wait": "0s",
            "health_timeout": "1m",
            "hooks": {"before_allow_traffic": hook} if hooks else {},
        },
        "alarms": list(alarms),
    }
    call(server, "PUT", f"/v1/services/{name}", spec)


def deploy(server: Server, name: str, revision: str) -> dict[str, Any]:
    created: dict[str, Any] = call(
        server, "POST", f"/v1/services/{name}/deployments", {"revision": revision}
    )
    return created


def second_deployment_plan(server: Server, name: str) -> list[str]:
    """The plan of ``name``'s second deployment (stopped again at once)."""
    first = deploy(server, name, "v1")
    server.wait_phase(first["id"], {"succeeded"})
    second = deploy(server, name, "v2")
    call(server, "POST", f"/v1/deployments/{second['id']}/stop")
    server.wait_phase(second["id"], {"stopped"})
    plan: list[str] = second["plan"]
    return plan


def test_a_first_deployment_says_it_sends_all_traffic_at_once_and_does(guarded: Server) -> None:
    declare(guarded, "first", hooks=True)
    dep = deploy(guarded, "first", "v1")
    assert dep["plan"] == [
        "First deployment of first: there is no previous revision to compare v1 with, so it "
        "gets all traffic at once; plan Canary10Percent5Minutes applies from the next "
        "deployment on.",
        "   1. start v1 and wait until every replica is healthy (at most 1m)",
        "   2. run the before_allow_traffic hook",
        "   3. all traffic to v1 at once",
        "Rollback: none, there is no previous revision to return to (`sluice rollback` and "
        "`sluice stop` are refused once v1 has traffic) and no guard or alarm judges it. If v1 "
        "cannot start, is not healthy in time or a hook fails, the deployment fails and v1 is "
        "stopped.",
    ]
    done = guarded.wait_phase(dep["id"], {"succeeded"})
    assert done["green_weight"] == 100 and done["step_index"] == 0  # no canary step was taken
    assert "first revision of the service: all traffic to green" in [
        e["message"] for e in done["events"]
    ]


def test_the_rollback_line_names_the_default_canary_guard(guarded: Server) -> None:
    declare(guarded, "canaried")
    plan = second_deployment_plan(guarded, "canaried")
    assert plan[0] == "Plan Canary10Percent5Minutes:"
    assert plan[-1] == (
        "Rollback: `sluice rollback` returns all traffic to blue in one router call; automatic "
        "when the default canary guard finds green's errors or latency worse than blue's (no "
        "guarding alarm is declared: spec `alarms:`)"
    )


def test_the_rollback_line_names_the_guard_and_the_guarding_alarms(guarded: Server) -> None:
    declare(guarded, "alarmed", QUIET_ALARM)
    plan = second_deployment_plan(guarded, "alarmed")
    assert plan[-1].endswith(
        "automatic when the default canary guard finds green's errors or latency worse than "
        "blue's, or a guarding alarm is in ALARM: alarmed/never"
    )


def test_without_default_guards_the_rollback_line_says_nothing_rolls_back_by_itself(
    unguarded: Server,
) -> None:
    declare(unguarded, "bare")
    assert second_deployment_plan(unguarded, "bare")[-1] == (
        "Rollback: `sluice rollback` returns all traffic to blue in one router call; nothing "
        "rolls back automatically: the server runs with --no-default-guards and no guarding "
        "alarm is declared (spec `alarms:`)"
    )


def test_without_default_guards_only_the_guarding_alarms_roll_back(unguarded: Server) -> None:
    declare(unguarded, "watched", QUIET_ALARM)
    assert second_deployment_plan(unguarded, "watched")[-1].endswith(
        "automatic when a guarding alarm is in ALARM: watched/never (the default canary "
        "guard is off: the server runs with --no-default-guards)"
    )
