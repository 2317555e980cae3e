"""Weighted forwarding, target-group stickiness and rules, through a real router and apps."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests._support import AppProcess, RouterProcess, router_config, start_app, start_router
from tests._support.rawhttp import Reply, get_many


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, AppProcess]]:
    started = {
        "blue-1": start_app(version="v1", name="blue-1"),
        "blue-2": start_app(version="v1", name="blue-2"),
        "green-1": start_app(version="v2", name="green-1"),
    }
    yield started
    for app in started.values():
        app.stop()


@pytest.fixture(scope="module")
def router(apps: dict[str, AppProcess]) -> Iterator[RouterProcess]:
    config = router_config(
        {"blue": [apps["blue-1"], apps["blue-2"]], "green": [apps["green-1"]]},
        {"blue": 90, "green": 10},
        sticky="1h",
        rules=[
            {
                "match": {"header": {"x-canary": "always"}},
                "forward": [{"target_group": "green", "weight": 100}],
            }
        ],
    )
    with start_router(config) as r:
        yield r


@pytest.fixture(autouse=True)
def default_weights(router: RouterProcess) -> None:
    r = router.admin("PUT", "/v1/listeners/web/weights", {"weights": {"blue": 90, "green": 10}})
    assert r.status_code == 200, r.text


def set_weights(router: RouterProcess, **weights: int) -> None:
    r = router.admin("PUT", "/v1/listeners/web/weights", {"weights": weights})
    assert r.status_code == 200, r.text
    assert r.json()["weights"] == weights


def cookie_of(reply: Reply) -> str:
    value = reply.set_cookie()
    assert value is not None, reply.headers
    return value


def test_new_clients_split_90_10_within_statistical_bounds(router: RouterProcess) -> None:
    replies = get_many(router.listener_port(), 10_000, batch=100)
    versions = Counter(r.version for r in replies)
    assert all(r.status == 200 for r in replies)
    assert set(versions) == {"v1", "v2"}
    # Binomial(10000, 0.1): sd = 30; allow 5 sd either way.
    assert 850 <= versions["v2"] <= 1150, versions
    # Every first visit is assigned a group and told so in a cookie.
    assert all(r.set_cookie() is not None for r in replies)


def test_requests_inside_a_group_are_spread_round_robin(router: RouterProcess) -> None:
    set_weights(router, blue=100, green=0)
    served = Counter(r.headers["x-served-by"] for r in get_many(router.listener_port(), 400))
    assert served == {"blue-1": 200, "blue-2": 200}


def test_sticky_cookie_pins_every_cookie_holder_to_its_first_group(router: RouterProcess) -> None:
    port = router.listener_port()
    firsts = get_many(port, 300)
    for first in firsts:
        cookie = cookie_of(first)
        later = get_many(port, 10, {"Cookie": f"other=1; sluice_tg={cookie}"})
        assert {r.version for r in later} == {first.version}
        assert all(r.set_cookie() is None for r in later)  # no re-assignment


def test_cookie_holders_of_a_group_set_to_weight_zero_are_rebalanced_at_once(
    router: RouterProcess,
) -> None:
    port = router.listener_port()
    set_weights(router, blue=0, green=100)
    green_cookie = cookie_of(get_many(port, 1)[0])
    assert green_cookie.startswith("green.")
    set_weights(router, blue=90, green=10)
    assert {r.version for r in get_many(port, 20, {"Cookie": f"sluice_tg={green_cookie}"})} == {
        "v2"
    }
    set_weights(router, blue=100, green=0)
    after = get_many(port, 20, {"Cookie": f"sluice_tg={green_cookie}"})
    assert {r.version for r in after} == {"v1"}
    assert cookie_of(after[0]).startswith("blue.")


@pytest.mark.parametrize(
    "forged",
    [
        "green.9999999999.AAAAAAAAAAAAAAAAAAAAAA",
        "green",
        "green.1.x.y",
        "",
    ],
)
def test_forged_cookie_is_ignored_and_the_client_rebalanced(
    router: RouterProcess, forged: str
) -> None:
    set_weights(router, blue=100, green=0)
    replies = get_many(router.listener_port(), 20, {"Cookie": f"sluice_tg={forged}"})
    assert {r.version for r in replies} == {"v1"}
    assert all(cookie_of(r).startswith("blue.") for r in replies)


def test_tampered_group_in_a_genuine_cookie_is_ignored(router: RouterProcess) -> None:
    port = router.listener_port()
    set_weights(router, blue=100, green=1)
    blue_cookie = cookie_of(get_many(port, 1)[0])
    assert blue_cookie.startswith("blue.")
    tampered = "green." + blue_cookie.split(".", 1)[1]
    versions = Counter(r.version for r in get_many(port, 50, {"Cookie": f"sluice_tg={tampered}"}))
    assert versions["v1"] >= 45  # re-balanced at 1000:1, not sent to green


def test_header_rule_forwards_to_its_group_before_the_default(router: RouterProcess) -> None:
    replies = get_many(router.listener_port(), 50, {"X-Canary": "always"})
    assert {r.version for r in replies} == {"v2"}


def test_metrics_count_exactly_the_requests_sent_per_group(router: RouterProcess) -> None:
    before = _totals(router)
    replies = get_many(router.listener_port(), 2000, batch=100)
    sent = Counter("blue" if r.version == "v1" else "green" for r in replies)
    after = _totals(router)
    assert after["blue"] - before["blue"] == sent["blue"]
    assert after["green"] - before["green"] == sent["green"]


def _totals(router: RouterProcess) -> Counter[str]:
    text = router.admin("GET", "/metrics").text
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("sluicegate_router_requests_total{") and 'code="2xx"' in line:
            group = line.split('target_group="')[1].split('"')[0]
            out[group] += int(line.rsplit(" ", 1)[1])
    return out


def test_latency_is_measured_below_a_millisecond_not_rounded_to_the_loop_clock(
    router: RouterProcess,
) -> None:
    get_many(router.listener_port(), 300, batch=1)
    time.sleep(1.2)  # close the second
    series = router.admin("GET", "/v1/metrics?window=5&hist=1").json()["series"]
    hist: Counter[int] = Counter()
    for s in series:
        for point in s["seconds"]:
            hist.update({int(k): v for k, v in point["hist"].items()})
    # uvloop's loop.time() ticks in whole milliseconds; a proxied request takes well over 1 µs.
    assert sum(hist.values()) >= 300
    assert sum(n for i, n in hist.items() if i < 16) == 0, hist
