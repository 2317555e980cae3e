"""The admin API: token required, clear errors naming the field, last good state kept."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests._support import (
    REPO_ROOT,
    AppProcess,
    RouterProcess,
    router_config,
    start_app,
    start_router,
)
from tests._support.rawhttp import get_many


@pytest.fixture(scope="module")
def app() -> Iterator[AppProcess]:
    with start_app(version="v1") as a:
        yield a


@pytest.fixture(scope="module")
def router(app: AppProcess) -> Iterator[RouterProcess]:
    with start_router(
        router_config({"blue": [app], "green": [app]}, {"blue": 90, "green": 10})
    ) as r:
        yield r


@pytest.mark.parametrize("path", ["/v1/config", "/v1/metrics", "/metrics", "/v1/status"])
def test_every_route_but_healthz_needs_the_token(router: RouterProcess, path: str) -> None:
    assert router.admin("GET", path, token="").status_code == 401
    assert router.admin("GET", path, token="wrong-token").status_code == 401
    assert router.admin("GET", path).status_code == 200
    assert httpx.get(router.admin_url + "/healthz").status_code == 200


def test_token_is_checked_on_changes_too(router: RouterProcess) -> None:
    r = router.admin("PUT", "/v1/listeners/web/weights", {"weights": {"blue": 0}}, token="x")
    assert r.status_code == 401
    assert router.admin("GET", "/v1/listeners").json()["web"]["default"] == {
        "blue": 90,
        "green": 10,
    }


@pytest.mark.parametrize(
    ("body", "status", "path"),
    [
        ({"weights": {"purple": 10}}, 422, "weights"),
        ({"weights": {"blue": 0, "green": 0}}, 422, "weights"),
        ({"weights": {"blue": "ten"}}, 422, "weights.blue"),
        ({"weights": {"blue": 1000}}, 422, "weights.blue"),
        ({"wieghts": {"blue": 1}}, 422, "weights"),
        ({"weights": {"blue": 1}, "rule": "first"}, 422, "rule"),
    ],
)
def test_bad_weights_are_refused_with_the_field_named_and_nothing_changes(
    router: RouterProcess, body: dict[str, object], status: int, path: str
) -> None:
    r = router.admin("PUT", "/v1/listeners/web/weights", body)
    assert r.status_code == status, r.text
    assert r.json()["problems"][0]["path"] == path
    assert router.admin("GET", "/v1/listeners").json()["web"]["default"] == {
        "blue": 90,
        "green": 10,
    }


def test_unknown_listener_and_route_are_404(router: RouterProcess) -> None:
    r = router.admin("PUT", "/v1/listeners/nope/weights", {"weights": {"blue": 1}})
    assert r.status_code == 404
    assert "nope" in r.json()["error"]
    assert router.admin("GET", "/v1/nothing-here").status_code == 404
    assert router.admin("DELETE", "/v1/target-groups/blue/targets/127.0.0.1:1").status_code == 404


def test_body_that_is_not_json_is_a_400(router: RouterProcess) -> None:
    r = httpx.put(
        router.admin_url + "/v1/listeners/web/weights",
        content=b"{not json",
        headers={"Authorization": f"Bearer {router.token}"},
    )
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]


def test_invalid_reload_lists_problems_by_path_and_keeps_serving_the_old_config(
    router: RouterProcess,
) -> None:
    bad = router.admin("GET", "/v1/config").json()["config"]
    bad["listeners"][0]["default"]["forward"][0]["target_group"] = "bleu"
    bad["target_groups"][0]["health_check"]["interval"] = "5 parsecs"
    r = router.admin("PUT", "/v1/config", bad)
    assert r.status_code == 422
    paths = {p["path"] for p in r.json()["problems"]}
    assert "target_groups[0].health_check.interval" in paths
    replies = get_many(router.listener_port(), 10)
    assert [x.status for x in replies] == [200] * 10


def test_reload_onto_a_busy_port_fails_and_keeps_the_old_listener(router: RouterProcess) -> None:
    config = router.admin("GET", "/v1/config").json()["config"]
    config["listeners"][0]["port"] = router.admin_port  # taken by the admin API itself
    config["admin"]["port"] = router.admin_port
    r = router.admin("PUT", "/v1/config", config)
    assert r.status_code == 422, r.text
    assert r.json()["problems"][0]["path"] == "admin.port"
    assert [x.status for x in get_many(router.listener_port(), 5)] == [200] * 5


def test_metrics_window_is_validated(router: RouterProcess) -> None:
    r = router.admin("GET", "/v1/metrics?window=abc")
    assert r.status_code == 422
    assert r.json()["problems"][0]["path"] == "window"


def test_router_refuses_to_start_without_a_token_unless_insecure(
    app: AppProcess, tmp_path: object
) -> None:
    config = router_config({"blue": [app]})
    path = os.path.join(str(tmp_path), "router.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    env = {k: v for k, v in os.environ.items() if k != "SLUICE_ADMIN_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "sluicegate", "router", "--config", path],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode == 2
    assert "SLUICE_ADMIN_TOKEN" in proc.stderr and "--insecure" in proc.stderr


def test_insecure_router_serves_the_admin_api_without_a_token(app: AppProcess) -> None:
    with start_router(router_config({"blue": [app]}), insecure=True) as r:
        assert httpx.get(r.admin_url + "/v1/config").status_code == 200
        assert "INSECURE" in r.logs()


def test_check_flag_validates_a_config_file_and_names_the_problem(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "router.yaml")
    with open(path, "w") as f:
        f.write(
            "listeners:\n  - name: web\n    port: 99999\n    default:\n"
            "      forward: [{target_group: blue}]\ntarget_groups: [{name: blue}]\n"
        )
    proc = subprocess.run(
        [sys.executable, "-m", "sluicegate", "router", "--config", path, "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "listeners[0].port" in proc.stderr
    assert path in proc.stderr


def test_check_flag_refuses_a_glob_in_path_prefix_naming_the_field(tmp_path: object) -> None:
    """``path_prefix: /admin*`` used to pass --check and then match nothing."""
    path = os.path.join(str(tmp_path), "router.yaml")
    with open(path, "w") as f:
        f.write(
            "listeners:\n  - name: web\n    port: 8080\n    rules:\n"
            "      - match: {path_prefix: /admin*}\n        forward: [{target_group: blue}]\n"
            "    default:\n      forward: [{target_group: blue}]\n"
            "target_groups: [{name: blue}]\n"
        )
    proc = subprocess.run(
        [sys.executable, "-m", "sluicegate", "router", "--config", path, "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        "listeners[0].rules[0].match.path_prefix: path_prefix '/admin*' is a prefix, not a glob"
        in proc.stderr
    )


def test_a_bad_deregistration_delay_is_refused_with_the_field_named(
    router: RouterProcess, app: AppProcess
) -> None:
    for delay in ("soon", "-1", "nan", "inf"):
        r = router.admin("DELETE", f"/v1/target-groups/blue/targets/{app.address}?delay={delay}")
        assert r.status_code == 422, r.text
        assert r.json()["problems"][0]["path"] == "delay"
    assert (
        router.admin("GET", "/v1/target-groups").json()["blue"]["targets"][app.address]["draining"]
        is False
    )


def test_a_body_that_is_not_utf8_is_a_400(router: RouterProcess) -> None:
    r = httpx.put(
        router.admin_url + "/v1/listeners/web/weights",
        content=b'{"weights": {"blue": "\xff"}}',
        headers={"Authorization": f"Bearer {router.token}"},
    )
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]
