"""The exposures API through a real server: only an environment's own agent keys report,
only series the environment can have are counted, bad reports are refused by field, counts
are summed per minute and read back per flag x variant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests._support.server import Server, running_server
from tests.api.test_flag_routes import call


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("exposures-api") / "state") as s:
        for env in ("prod", "staging"):
            r = call(s, "POST", "/v1/flags/envs", s.token, {"name": env})
            assert r.status_code == 201, r.text
            r = call(s, "PUT", f"/v1/flags/{env}", s.token, {"document": FLAGS})
            assert r.status_code in (200, 201), r.text
        yield s


def _boolean(*keys: str) -> dict[str, Any]:
    return {k: {"type": "boolean", "default_variant": "off"} for k in keys}


# The flags the reports below count: a report may only add series the environment can have.
FLAGS = {
    "flags": {
        **_boolean("search", "banner", "resent", "ahead", "valid-but-refused", "x"),
        "checkout": {
            "type": "string",
            "variants": {"old": "o", "new": "n"},
            "default_variant": "old",
        },
    }
}


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    out = {"admin": server.token}
    for role, env in (
        ("reader", None),
        ("deployer", None),
        ("agent", "prod"),
        ("agent", "staging"),
    ):
        r = call(
            server,
            "POST",
            "/v1/tokens",
            server.token,
            {"role": role, "name": f"{role}-{env}", "env": env},
        )
        assert r.status_code == 201, r.text
        out[role if env is None else f"agent-{env}"] = r.json()["token"]
    out["agent-prod-name"] = "agent-prod"
    return out


def report(*counts: tuple[str, str, int], end: float | None = None) -> dict[str, Any]:
    end = time.time() if end is None else end
    return {
        "agent": "host-a:2772",
        "start": end - 10,
        "end": end,
        "counts": [{"flag": f, "variant": v, "count": n} for f, v, n in counts],
    }


def totals(server: Server, env: str, token: str, **params: Any) -> dict[tuple[str, str], int]:
    r = call(server, "GET", f"/v1/flags/{env}/exposures", token, params=params)
    assert r.status_code == 200, r.text
    return {(v["flag"], v["variant"]): v["count"] for v in r.json()["variants"]}


def test_an_agent_key_reports_only_for_its_own_environment(
    server: Server, tokens: dict[str, str]
) -> None:
    body = report(("checkout", "new", 3))
    r = call(server, "POST", "/v1/flags/staging/exposures", tokens["agent-prod"], body)
    assert r.status_code == 403 and "'prod'" in r.json()["error"]
    assert call(server, "POST", "/v1/flags/staging/exposures", None, body).status_code == 401
    assert totals(server, "staging", tokens["reader"]) == {}

    r = call(server, "POST", "/v1/flags/staging/exposures", tokens["agent-staging"], body)
    assert r.status_code == 200, r.text
    assert r.json()["evaluations"] == 3
    assert totals(server, "staging", tokens["reader"]) == {("checkout", "new"): 3}


def test_only_agent_keys_report_and_agents_may_not_read_the_totals(
    server: Server, tokens: dict[str, str]
) -> None:
    body = report(("search", "on", 2), ("search", "off", 5))
    for broad in ("reader", "deployer", "admin"):  # counts drive alarms: no forged reports
        r = call(server, "POST", "/v1/flags/prod/exposures", tokens[broad], body)
        assert r.status_code == 403, (broad, r.text)
    r = call(server, "POST", "/v1/flags/prod/exposures", tokens["agent-prod"], body)
    assert r.status_code == 200, r.text
    r = call(server, "GET", "/v1/flags/prod/exposures", tokens["agent-prod"])
    assert r.status_code == 403
    got = totals(server, "prod", tokens["reader"], flag="search")
    assert got == {("search", "on"): 2, ("search", "off"): 5}


def test_reports_add_up_and_totals_start_at_the_minute_holding_since(
    server: Server, tokens: dict[str, str]
) -> None:
    now = time.time()
    old = now - 7200  # two hours ago: outside the default hour
    agent = tokens["agent-prod"]
    for body in (
        report(("banner", "on", 4), end=old),
        report(("banner", "on", 6), end=now),
        report(("banner", "on", 1), ("banner", "error:TYPE_MISMATCH", 2), end=now),
    ):
        assert call(server, "POST", "/v1/flags/prod/exposures", agent, body).status_code == 200
    assert totals(server, "prod", tokens["reader"], flag="banner") == {
        ("banner", "on"): 7,
        ("banner", "error:TYPE_MISMATCH"): 2,
    }
    assert totals(server, "prod", tokens["reader"], flag="banner", since=int(old)) == {
        ("banner", "on"): 11,
        ("banner", "error:TYPE_MISMATCH"): 2,
    }
    r = call(
        server,
        "GET",
        "/v1/flags/prod/exposures",
        tokens["reader"],
        params={"flag": "banner", "since": int(old)},
    )
    minute = int(now) // 60 * 60
    assert {v["variant"]: v["last_minute"] for v in r.json()["variants"]} == {
        "on": minute,
        "error:TYPE_MISMATCH": minute,
    }


def test_a_numbered_report_sent_again_is_acknowledged_and_counted_once(
    server: Server, tokens: dict[str, str]
) -> None:
    body = {**report(("resent", "on", 4)), "instance": "i-1", "seq": 1}
    first = call(server, "POST", "/v1/flags/prod/exposures", tokens["agent-prod"], body)
    again = call(server, "POST", "/v1/flags/prod/exposures", tokens["agent-prod"], body)
    assert (first.status_code, first.json()["stored"]) == (200, True)
    assert (again.status_code, again.json()["stored"], again.json()["evaluations"]) == (
        200,
        False,
        0,
    )
    body = {**report(("resent", "on", 1)), "instance": "i-1", "seq": 2}
    assert (
        call(server, "POST", "/v1/flags/prod/exposures", tokens["agent-prod"], body).json()[
            "stored"
        ]
        is True
    )
    assert totals(server, "prod", tokens["reader"], flag="resent") == {("resent", "on"): 5}
    r = call(server, "GET", "/v1/flags/prod/exposures", tokens["reader"])
    assert [(a["agent"], a["instance"], a["reports"]) for a in r.json()["agents"]] == [
        ("agent-prod/host-a:2772", "i-1", 2)  # the reporting key's name, then the agent's
    ]


def test_a_report_from_an_agent_whose_clock_runs_ahead_lands_in_the_current_minute(
    server: Server, tokens: dict[str, str]
) -> None:
    before = int(time.time()) // 60 * 60
    r = call(
        server,
        "POST",
        "/v1/flags/prod/exposures",
        tokens["agent-prod"],
        report(("ahead", "on", 1), end=time.time() + 86400),
    )
    after = int(time.time()) // 60 * 60
    assert r.status_code == 200 and r.json()["minute"] in (before, after)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"counts": [{"flag": "x", "variant": "on", "count": -1}]}, "counts[0].count"),
        ({"counts": [{"flag": "x", "variant": "on", "count": 1.5}]}, "counts[0].count"),
        ({"counts": [{"flag": "x", "variant": "on", "count": "3"}]}, "counts[0].count"),
        ({"counts": [{"flag": "", "variant": "on", "count": 1}]}, "counts[0].flag"),
        ({"counts": [{"flag": "x", "count": 1}]}, "counts[0].variant"),
        ({"counts": [{"flag": "x", "variant": "on", "count": 1}] * 1001}, "counts"),
        ({"start": 100.0, "end": 50.0}, "end"),
        ({"agent": ""}, "agent"),
        ({"seq": 1}, "seq"),
        ({"instance": "i1", "seq": 0}, "seq"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_report_is_refused_naming_the_field_and_stores_nothing(
    server: Server, tokens: dict[str, str], change: dict[str, Any], path: str
) -> None:
    body = {**report(("valid-but-refused", "on", 1)), **change}
    r = call(server, "POST", "/v1/flags/prod/exposures", tokens["agent-prod"], body)
    assert r.status_code == 422, r.text
    assert path in [p["path"] for p in r.json()["problems"]]
    assert totals(server, "prod", tokens["reader"], flag="valid-but-refused") == {}
    assert totals(server, "prod", tokens["reader"], flag="x") == {}


def test_an_unknown_environment_is_404_for_readers(server: Server, tokens: dict[str, str]) -> None:
    r = call(server, "GET", "/v1/flags/nope/exposures", tokens["reader"])
    assert r.status_code == 404


def test_series_the_environment_cannot_have_are_ignored_and_counted_as_such(
    server: Server, tokens: dict[str, str]
) -> None:
    body = report(
        ("checkout", "new", 1),  # a real variant
        ("checkout", "error:TYPE_MISMATCH", 1),  # an error code: real too
        ("checkout", "forged", 9),  # not a variant of checkout
        ("no-such-flag", "error:FLAG_NOT_FOUND", 2),  # an app asking for a missing flag
        ("no-such-flag", "on", 9),  # not an error of a missing flag: invented
    )
    r = call(server, "POST", "/v1/flags/prod/exposures", tokens["agent-prod"], body)
    assert r.status_code == 200, r.text
    assert (r.json()["evaluations"], r.json()["ignored"]) == (4, 2)
    got = totals(server, "prod", tokens["reader"], flag="checkout")
    assert got.get(("checkout", "forged")) is None and got[("checkout", "new")] >= 1
