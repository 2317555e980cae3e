"""Live reconfiguration under load: weights, reloads, (de)registration with draining."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests._support import RouterProcess, router_config
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory


class Load:
    """Keep-alive clients hammering the router until stopped; counts every outcome."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.outcomes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        local: Counter[str] = Counter()
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    r = client.get(self.url)
                    local[r.headers.get("x-version", str(r.status_code))] += 1
                except httpx.HTTPError as exc:
                    local[f"error: {type(exc).__name__}"] += 1
        with self.lock:
            self.outcomes.update(local)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def put_weights(router: RouterProcess, **weights: int) -> dict[str, Any]:
    r = router.admin("PUT", "/v1/listeners/web/weights", {"weights": weights})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_no_request_fails_across_100_weight_changes_and_a_full_reload_under_load(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    blue, green = app_factory(version="v1"), app_factory(version="v2")
    config = router_config({"blue": [blue], "green": [green]}, {"blue": 90, "green": 10})
    router = router_factory(config)
    with Load(router.listener_url()) as load:
        for i in range(100):
            w = (i * 7) % 101
            assert put_weights(router, blue=100 - w, green=w)["weights"] == {
                "blue": 100 - w,
                "green": w,
            }
        reloaded = router_config(
            {"blue": [blue], "green": [green]},
            {"blue": 50, "green": 50},
            listener_port=router.listener_port(),
            admin_port=router.admin_port,
        )
        reloaded["target_groups"][0]["deregistration_delay"] = "5s"
        r = router.admin("PUT", "/v1/config", reloaded)
        assert r.status_code == 200, r.text
        time.sleep(0.5)  # keep the load on the reloaded config for a moment
    outcomes = load.outcomes
    assert not [k for k in outcomes if not k.startswith("v")], outcomes
    assert outcomes["v1"] > 100 and outcomes["v2"] > 100, outcomes
    assert router.admin("GET", "/v1/listeners").json()["web"]["default"] == {
        "blue": 50,
        "green": 50,
    }


def test_weight_change_is_visible_in_the_next_seconds_metrics(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    blue, green = app_factory(version="v1"), app_factory(version="v2")
    router = router_factory(
        router_config({"blue": [blue], "green": [green]}, {"blue": 100, "green": 0})
    )
    with Load(router.listener_url(), clients=2):
        time.sleep(1.2)
        put_weights(router, blue=0, green=100)
        changed_at = time.time()
        time.sleep(2.2)
    window = router.admin("GET", "/v1/metrics?window=10").json()["series"]
    per_second = {s["target_group"]: {p["t"]: p["requests"] for p in s["seconds"]} for s in window}
    first_full_second = int(changed_at) + 1
    assert per_second["blue"].get(first_full_second, 0) == 0, per_second
    assert per_second["green"][first_full_second] > 0, per_second
    assert any(t < int(changed_at) and n > 0 for t, n in per_second["blue"].items())


def test_deregistered_target_drains_in_flight_requests_and_gets_no_new_ones(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    a, b = app_factory(name="blue-1"), app_factory(name="blue-2")
    config = router_config({"blue": [a, b]})
    config["target_groups"][0]["deregistration_delay"] = "5s"
    router = router_factory(config)
    url = router.listener_url()
    with ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(httpx.get, f"{url}/slow?ms=1500", timeout=10) for _ in range(4)]
        time.sleep(0.5)  # the slow requests are in flight on both targets
        r = router.admin("DELETE", f"/v1/target-groups/blue/targets/{a.address}")
        assert r.status_code == 202, r.text
        assert r.json() == {
            "target_group": "blue",
            "target": a.address,
            "state": "draining",
            "deregistration_delay": 5.0,
        }
        status = router.admin("GET", "/v1/target-groups").json()["blue"]["targets"][a.address]
        assert status["draining"] is True and status["in_flight"] >= 1
        assert {r.headers["x-served-by"] for r in get_many(router.listener_port(), 20)} == {
            "blue-2"
        }
        results = [f.result() for f in slow]
    assert [r.status_code for r in results] == [200] * 4
    assert {r.headers["x-served-by"] for r in results} == {"blue-1", "blue-2"}
    cfg = router.admin("GET", "/v1/config").json()["config"]
    assert cfg["target_groups"][0]["targets"] == [b.address]


def test_requests_still_running_when_the_delay_ends_are_cut(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    a = app_factory(name="blue-1")
    b = app_factory(name="blue-2")
    router = router_factory(router_config({"blue": [a]}))
    url = router.listener_url()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, f"{url}/slow?ms=4000", timeout=10)
        time.sleep(0.4)
        assert (
            router.admin(
                "POST", "/v1/target-groups/blue/targets", {"target": b.address}
            ).status_code
            == 201
        )
        r = router.admin("DELETE", f"/v1/target-groups/blue/targets/{a.address}?delay=0.5")
        assert r.status_code == 202
        started = time.monotonic()
        cut = slow.result()
        waited = time.monotonic() - started
    # The response had not started, so the client gets a clean 502 (not a retry: the request
    # was already sent), well before the 4 s the backend wanted.
    assert cut.status_code == 502
    assert cut.headers["x-sluicegate-error"] == "1"
    assert waited < 2.5
    targets = router.admin("GET", "/v1/target-groups").json()["blue"]["targets"]
    assert list(targets) == [b.address]


def test_registered_target_joins_rotation(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    a, b = app_factory(name="blue-1"), app_factory(name="blue-2")
    router = router_factory(router_config({"blue": [a]}))
    r = router.admin("POST", "/v1/target-groups/blue/targets", {"target": b.address})
    assert r.status_code == 201, r.text
    assert (
        router.admin("POST", "/v1/target-groups/blue/targets", {"target": b.address}).status_code
        == 409
    )
    served = Counter(x.headers["x-served-by"] for x in get_many(router.listener_port(), 40))
    assert served == {"blue-1": 20, "blue-2": 20}


def test_a_target_reloaded_back_in_while_it_drains_serves_again(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    a, b = app_factory(name="blue-1"), app_factory(name="blue-2")
    config = router_config({"blue": [a, b]})
    config["target_groups"][0]["deregistration_delay"] = "30s"
    router = router_factory(config)
    without_a = router_config(
        {"blue": [b]}, listener_port=router.listener_port(), admin_port=router.admin_port
    )
    without_a["target_groups"][0]["deregistration_delay"] = "30s"
    assert router.admin("PUT", "/v1/config", without_a).status_code == 200
    assert (
        router.admin("GET", "/v1/target-groups").json()["blue"]["targets"][a.address]["draining"]
        is True
    )
    assert router.admin("PUT", "/v1/config", config).status_code == 200
    status = router.admin("GET", "/v1/target-groups").json()["blue"]["targets"]
    assert status[a.address]["draining"] is False
    served = Counter(x.headers["x-served-by"] for x in get_many(router.listener_port(), 40))
    assert served == {"blue-1": 20, "blue-2": 20}
