"""Active health checks: unhealthy targets leave rotation, come back, and groups fail open."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from tests._support import AppProcess, RouterProcess, router_config
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


def healthy(router: RouterProcess, group: str, app: AppProcess) -> bool:
    targets = router.admin("GET", "/v1/target-groups").json()[group]["targets"]
    return bool(targets[app.address]["healthy"])


def served_by(router: RouterProcess, n: int = 40) -> Counter[str]:
    return Counter(
        r.headers.get("x-served-by", str(r.status)) for r in get_many(router.listener_port(), n)
    )


def test_unhealthy_target_leaves_rotation_and_returns_after_recovery(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    a, b = app_factory(name="blue-1"), app_factory(name="blue-2")
    router = router_factory(router_config({"blue": [a, b]}, interval="200ms"))
    assert served_by(router) == {"blue-1": 20, "blue-2": 20}

    a.set_health(503)
    wait_for(lambda: not healthy(router, "blue", a), what="blue-1 marked unhealthy")
    assert served_by(router) == {"blue-2": 40}
    status = router.admin("GET", "/v1/target-groups").json()["blue"]["targets"][a.address]
    assert status["last_check_error"] == "status 503"

    a.set_health(200)
    wait_for(lambda: healthy(router, "blue", a), what="blue-1 healthy again")
    assert served_by(router) == {"blue-1": 20, "blue-2": 20}


def test_a_target_that_stops_answering_is_ejected(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    a, b = app_factory(name="blue-1"), app_factory(name="blue-2")
    router = router_factory(router_config({"blue": [a, b]}, interval="200ms"))
    a.stop()
    wait_for(lambda: not healthy(router, "blue", a), what="stopped target marked unhealthy")
    assert served_by(router) == {"blue-2": 40}


def test_group_with_no_healthy_target_fails_open_and_says_so(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    a = app_factory(name="blue-1")
    router = router_factory(router_config({"blue": [a]}, interval="200ms"))
    a.set_health(500)
    wait_for(lambda: not healthy(router, "blue", a), what="only target unhealthy")
    # Like ALB: traffic still goes to the group's targets rather than nowhere.
    assert served_by(router, 10) == {"blue-1": 10}
    assert router.admin("GET", "/v1/target-groups").json()["blue"]["fail_open"] is True
    assert (
        'sluicegate_router_fail_open{target_group="blue"} 1' in router.admin("GET", "/metrics").text
    )
    assert "failing open" in router.logs()
