"""Flag-driven routing through the real router: a rule on a flag forwards the users the flag
selects to the green target group; the flag set is loaded (and changed) by the admin API."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.router._flagslot import compile_document
from tests._support import AppProcess, RouterProcess, router_config, start_app, start_router
from tests._support.rawhttp import get_many

USERS = [f"user-{i:03d}" for i in range(400)]
BETA = USERS[:40]
OTHERS = USERS[40:]


def flag_set(beta: list[str], share_on: int = 25) -> dict[str, Any]:
    """``new-checkout``: on for segment ``beta``, else on for ``share_on`` % of users."""
    return {
        "segments": {"beta": {"ids": beta}},
        "flags": {
            "new-checkout": {
                "type": "boolean",
                "rules": [{"name": "beta", "when": {"segment": "beta"}, "variant": "on"}],
                "fallthrough": {
                    "split": [
                        {"variant": "on", "weight": share_on},
                        {"variant": "off", "weight": 100 - share_on},
                    ]
                },
            }
        },
    }


FLAG_RULE = {
    "match": {"flag": {"key": "new-checkout", "variant": "on", "user_from": {"cookie": "uid"}}},
    "forward": [{"target_group": "green", "weight": 1}],
}


def expected_version(document: dict[str, Any], user: str) -> str:
    """What the router should serve ``user``: the same evaluator, run here."""
    variant = compile_document(1, document).evaluate_variant("new-checkout", {"targetingKey": user})
    return "v2" if variant == "on" else "v1"


def load(router: RouterProcess, version: int, document: dict[str, Any]) -> None:
    r = router.admin("PUT", "/v1/flags", {"version": version, "document": document})
    assert r.status_code == 200, r.text
    assert r.json() == {"version": version, "flags": ["new-checkout"]}


def versions_by_user(router: RouterProcess, users: list[str], n: int = 3) -> dict[str, set[str]]:
    port = router.listener_port()
    return {
        u: {r.version for r in get_many(port, n, {"Cookie": f"theme=dark; uid={u}"})} for u in users
    }


def group_requests(router: RouterProcess) -> Counter[str]:
    r = router.admin("GET", "/v1/metrics?window=300&open=1&listener=web")
    assert r.status_code == 200, r.text
    return Counter(
        {
            s["target_group"]: sum(p["requests"] for p in s["seconds"])
            for s in r.json()["series"]
            if s["target_group"] in ("blue", "green")
        }
    )


@pytest.fixture(scope="module")
def app_pair() -> Iterator[dict[str, AppProcess]]:
    started = {
        "blue": start_app(version="v1", name="blue-1"),
        "green": start_app(version="v2", name="green-1"),
    }
    yield started
    for app in started.values():
        app.stop()


def config_for(apps: dict[str, AppProcess]) -> dict[str, Any]:
    return router_config(
        {"blue": [apps["blue"]], "green": [apps["green"]]}, {"blue": 1}, rules=[FLAG_RULE]
    )


@pytest.fixture(scope="module")
def router(app_pair: dict[str, AppProcess]) -> Iterator[RouterProcess]:
    with start_router(config_for(app_pair)) as r:
        yield r


@pytest.fixture(autouse=True)
def first_flag_set(router: RouterProcess) -> None:
    load(router, 1, flag_set(BETA))


def test_beta_users_reach_green_others_split_about_25_percent_and_stay_put(
    router: RouterProcess,
) -> None:
    seen = versions_by_user(router, USERS)
    assert all(len(v) == 1 for v in seen.values()), "a user switched groups between requests"
    got = {u: v.pop() for u, v in seen.items()}
    assert all(got[u] == "v2" for u in BETA)
    green_others = sum(got[u] == "v2" for u in OTHERS)
    # Binomial(360, 0.25): mean 90, sd 8.2; allow 5 sd.
    assert 49 <= green_others <= 131, green_others
    document = flag_set(BETA)
    assert got == {u: expected_version(document, u) for u in USERS}


def test_requests_without_the_user_cookie_reach_the_default_and_are_counted(
    router: RouterProcess,
) -> None:
    before = router.admin("GET", "/v1/flags").json()["unmatched"]["no_user_id"]
    replies = get_many(router.listener_port(), 50, {"Cookie": "theme=dark"})
    assert [r.version for r in replies] == ["v1"] * 50
    flags = router.admin("GET", "/v1/flags").json()
    assert flags["version"] == 1 and flags["flags"] == ["new-checkout"]
    assert flags["unmatched"]["no_user_id"] == before + 50


def test_a_new_flag_set_moves_users_at_once(router: RouterProcess) -> None:
    port = router.listener_port()
    assert {r.version for r in get_many(port, 5, {"Cookie": "uid=user-000"})} == {"v2"}
    load(router, 2, flag_set(["user-399"], share_on=0))
    got = {u: v.pop() for u, v in versions_by_user(router, USERS, n=1).items()}
    assert got == {u: "v2" if u == "user-399" else "v1" for u in USERS}
    assert router.admin("GET", "/v1/flags").json()["version"] == 2


def test_a_bad_flag_set_is_refused_with_its_problems_and_the_old_one_kept(
    router: RouterProcess,
) -> None:
    bad = {"flags": {"new-checkout": {"type": "boolean", "default_variant": "maybe"}}}
    r = router.admin("PUT", "/v1/flags", {"version": 9, "document": bad})
    assert r.status_code == 422, r.text
    paths = [p["path"] for p in r.json()["problems"]]
    assert any(p.startswith("document.flags.new-checkout") for p in paths), paths
    r = router.admin("PUT", "/v1/flags", {"version": "ten", "document": []})
    assert r.status_code == 422
    assert {p["path"] for p in r.json()["problems"]} == {"version", "document"}
    assert router.admin("GET", "/v1/flags").json()["version"] == 1
    assert {r.version for r in get_many(router.listener_port(), 3, {"Cookie": "uid=user-000"})} == {
        "v2"
    }


def test_a_flag_the_router_does_not_know_matches_nobody_and_is_counted(
    router: RouterProcess,
) -> None:
    load_other = {"flags": {"other-flag": {"type": "boolean"}}}
    r = router.admin("PUT", "/v1/flags", {"version": 3, "document": load_other})
    assert r.status_code == 200, r.text
    before = router.admin("GET", "/v1/flags").json()["unmatched"]["unknown_flag"]
    replies = get_many(router.listener_port(), 20, {"Cookie": "uid=user-000"})
    assert {r.version for r in replies} == {"v1"}
    assert router.admin("GET", "/v1/flags").json()["unmatched"]["unknown_flag"] == before + 20
    text = router.admin("GET", "/metrics").text
    assert 'sluicegate_router_flag_unmatched_total{reason="unknown_flag"}' in text
    assert "sluicegate_router_flag_set_version 3" in text


def test_per_target_group_metrics_count_each_variant(router: RouterProcess) -> None:
    before = group_requests(router)
    got = {u: v.pop() for u, v in versions_by_user(router, USERS, n=2).items()}
    on = sum(v == "v2" for v in got.values())
    after = group_requests(router)
    assert after["green"] - before["green"] == 2 * on
    assert after["blue"] - before["blue"] == 2 * (len(USERS) - on)


def test_two_workers_agree_and_keep_the_flag_set_across_reloads_and_restarts(
    app_pair: dict[str, AppProcess],
) -> None:
    with start_router(config_for(app_pair), workers=2) as router:
        document = flag_set(BETA)
        load(router, 5, document)
        # Each connection lands on either worker (SO_REUSEPORT); all must answer alike.
        seen = versions_by_user(router, USERS, n=2)
        assert {u: v.pop() for u, v in seen.items()} == {
            u: expected_version(document, u) for u in USERS
        }
        # A reload of the routing config keeps the flag set in every worker.
        config = router.admin("GET", "/v1/config").json()["config"]
        assert router.admin("PUT", "/v1/config", {"config": config}).status_code == 200
        assert {
            r.version for r in get_many(router.listener_port(), 3, {"Cookie": "uid=user-001"})
        } == {"v2"}
        assert router.admin("GET", "/v1/flags").json()["version"] == 5
        # A worker that dies is started again with the current flag set.
        first, second = worker_pids(router)  # the two workers: the router's only children
        os.kill(first, signal.SIGKILL)
        wait_for_new_worker(router, {first, second})
        seen = versions_by_user(router, USERS, n=1)
        assert {u: v.pop() for u, v in seen.items()} == {
            u: expected_version(document, u) for u in USERS
        }


def worker_pids(router: RouterProcess) -> list[int]:
    children = Path(f"/proc/{router.pid}/task/{router.pid}/children").read_text().split()
    return [int(c) for c in children]


def wait_for_new_worker(router: RouterProcess, old: set[int]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = set(worker_pids(router))
        if len(pids) == 2 and pids - old and router.admin("GET", "/v1/status").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the killed worker was not started again")
