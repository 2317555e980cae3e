"""The flags API through a real server: roles, problems by path, ETag/If-Match and 409s,
versions, diffs, evaluation, rollouts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sluicegate.flags import validate_flag_set
from tests._support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("flags-api") / "state") as s:
        yield s


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    out = {"admin": server.token}
    for role in ("reader", "deployer"):
        r = call(server, "POST", "/v1/tokens", server.token, {"role": role, "name": role})
        out[role] = r.json()["token"]
    return out


def call(
    server: Server,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    h = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(
        method,
        server.url + path,
        json=body,
        headers={**h, **(headers or {})},
        params=params,
        timeout=30,
    )


def flag_set(value: str = "old") -> dict[str, Any]:
    return {
        "segments": {"beta": {"ids": ["alice", "bob"]}},
        "flags": {
            "checkout": {"type": "string", "variants": {"v": value}, "default_variant": "v"},
            "new-search": {
                "type": "boolean",
                "rules": [{"name": "beta", "when": {"segment": "beta"}, "variant": "on"}],
            },
        },
    }


def new_env(server: Server, tokens: dict[str, str], name: str) -> None:
    r = call(server, "POST", "/v1/flags/envs", tokens["deployer"], {"name": name})
    assert r.status_code == 201, r.text


def test_readers_read_and_evaluate_deployers_change(server: Server, tokens: dict[str, str]) -> None:
    reader, deployer = tokens["reader"], tokens["deployer"]
    r = call(server, "POST", "/v1/flags/envs", reader, {"name": "roles"})
    assert r.status_code == 403 and "deployer" in r.json()["error"]
    new_env(server, tokens, "roles")
    r = call(server, "PUT", "/v1/flags/roles", reader, {"document": flag_set()})
    assert r.status_code == 403
    assert (
        call(server, "PUT", "/v1/flags/roles", deployer, {"document": flag_set()}).status_code
        == 201
    )
    assert call(server, "GET", "/v1/flags/roles", reader).status_code == 200
    r = call(
        server,
        "POST",
        "/v1/flags/roles/evaluate",
        reader,
        {"key": "new-search", "context": {"userId": "alice"}},
    )
    assert (r.status_code, r.json()["value"]) == (200, True)
    assert call(server, "GET", "/v1/flags/envs").status_code == 401
    assert call(server, "POST", "/v1/flags/roles/revert", reader, {"to": 1}).status_code == 403
    assert call(server, "POST", "/v1/flags/roles/rollout/stop", reader).status_code == 403


def test_an_invalid_flag_set_is_rejected_with_every_problem_by_path(
    server: Server, tokens: dict[str, str]
) -> None:
    new_env(server, tokens, "invalid")
    assert (
        call(
            server, "PUT", "/v1/flags/invalid", tokens["deployer"], {"document": flag_set()}
        ).status_code
        == 201
    )
    bad = flag_set("new")
    bad["flags"]["checkout"]["default_variant"] = "nope"
    bad["flags"]["new-search"]["rules"][0]["when"] = {
        "attribute": "age",
        "op": "gt",
        "value": "ten",
    }
    bad["flags"]["split"] = {
        "type": "boolean",
        "fallthrough": {
            "split": [{"variant": "on", "weight": 60}, {"variant": "off", "weight": 60}]
        },
    }
    r = call(
        server,
        "PUT",
        "/v1/flags/invalid",
        tokens["deployer"],
        {"document": bad, "rollout": {"strategy": "Slowly", "bake_time": "soon"}},
    )
    assert r.status_code == 422
    problems = {p["path"]: p["message"] for p in r.json()["problems"]}
    assert problems["flags.checkout.default_variant"].startswith("unknown variant 'nope'")
    assert "gt needs a number" in problems["flags.new-search.rules[0].when.value"]
    assert "sum to 120" in problems["flags.split.fallthrough.split"]
    got = call(server, "GET", "/v1/flags/invalid", tokens["reader"])
    assert (got.json()["version"], got.json()["latest_version"]) == (1, 1)
    r = call(
        server,
        "PUT",
        "/v1/flags/invalid",
        tokens["deployer"],
        {"document": flag_set("new"), "rollout": {"strategy": "Slowly", "bake_time": "x"}},
    )
    assert r.status_code == 422
    assert {p["path"] for p in r.json()["problems"]} == {"rollout.strategy", "rollout.bake_time"}


def test_etag_and_if_match_keep_two_editors_from_overwriting_each_other(
    server: Server, tokens: dict[str, str]
) -> None:
    new_env(server, tokens, "etag")
    empty = call(server, "GET", "/v1/flags/etag", tokens["reader"])
    assert (empty.headers["etag"], empty.json()["document"]) == ('"0"', None)
    first = call(
        server,
        "PUT",
        "/v1/flags/etag",
        tokens["deployer"],
        {"document": flag_set()},
        headers={"If-Match": '"0"'},
    )
    assert (first.status_code, first.headers["etag"]) == (201, '"1"')
    seen = call(server, "GET", "/v1/flags/etag", tokens["reader"])
    assert seen.headers["etag"] == '"1"'
    assert seen.json()["document"] == validate_flag_set(flag_set()).document()  # normal form
    # two editors read version 1; the first one to save wins
    a = call(
        server,
        "PUT",
        "/v1/flags/etag",
        tokens["deployer"],
        {"document": flag_set("from-a"), "message": "a"},
        headers={"If-Match": '"1"'},
    )
    b = call(
        server,
        "PUT",
        "/v1/flags/etag",
        tokens["deployer"],
        {"document": flag_set("from-b"), "message": "b"},
        headers={"If-Match": '"1"'},
    )
    assert (a.status_code, a.headers["etag"], a.json()["version"]) == (201, '"2"', 2)
    assert b.status_code == 409 and "at version 2, not 1" in b.json()["error"]
    doc = call(server, "GET", "/v1/flags/etag", tokens["reader"]).json()["document"]
    assert doc["flags"]["checkout"]["variants"]["v"] == "from-a"
    bad = call(
        server,
        "PUT",
        "/v1/flags/etag",
        tokens["deployer"],
        {"document": flag_set()},
        headers={"If-Match": "latest"},
    )
    assert bad.status_code == 422 and bad.json()["problems"][0]["path"] == "If-Match"


def test_unchanged_flag_sets_save_no_version(server: Server, tokens: dict[str, str]) -> None:
    new_env(server, tokens, "same")
    call(server, "PUT", "/v1/flags/same", tokens["deployer"], {"document": flag_set()})
    again = call(server, "PUT", "/v1/flags/same", tokens["deployer"], {"document": flag_set()})
    assert (again.status_code, again.json()["changed"], again.json()["version"]) == (200, False, 1)


def test_versions_diff_and_revert(server: Server, tokens: dict[str, str]) -> None:
    new_env(server, tokens, "hist")
    for value in ("one", "two"):
        r = call(
            server,
            "PUT",
            "/v1/flags/hist",
            tokens["deployer"],
            {"document": flag_set(value), "message": f"copy {value}"},
        )
        assert r.status_code == 201
    assert r.json()["diff_text"] == "flag checkout: changed\n  variants.v: 'one' -> 'two'"
    d = call(server, "GET", "/v1/flags/hist/diff", tokens["reader"]).json()
    assert (d["from"], d["to"], d["changes"][0]["key"]) == (1, 2, "checkout")
    r = call(
        server,
        "POST",
        "/v1/flags/hist/revert",
        tokens["deployer"],
        {"to": 1},
        headers={"If-Match": '"2"'},
    )
    assert (r.status_code, r.json()["version"], r.headers["etag"]) == (201, 3, '"3"')
    history = call(server, "GET", "/v1/flags/hist/versions", tokens["reader"]).json()
    assert [(h["version"], h["status"], h["message"]) for h in history] == [
        (3, "current", "revert to version 1"),
        (2, "previous", "copy two"),
        (1, "previous", "copy one"),
    ]
    one = call(server, "GET", "/v1/flags/hist/versions/1", tokens["reader"]).json()
    assert (
        one["document"]
        == call(server, "GET", "/v1/flags/hist", tokens["reader"]).json()["document"]
    )
    assert call(server, "GET", "/v1/flags/hist/versions/9", tokens["reader"]).status_code == 404
    events = call(
        server, "GET", "/v1/events", tokens["reader"], params={"subject": "flags/hist"}
    ).json()
    assert [e["kind"] for e in events] == ["flags.env.created", *["flags.version"] * 3]
    assert events[-1]["actor"] == "deployer" and events[-1]["data"]["revert_of"] == 1


def test_evaluate_explains_and_pins_versions(server: Server, tokens: dict[str, str]) -> None:
    new_env(server, tokens, "evals")
    for value in ("one", "two"):
        call(server, "PUT", "/v1/flags/evals", tokens["deployer"], {"document": flag_set(value)})
    r = call(
        server,
        "POST",
        "/v1/flags/evals/evaluate",
        tokens["reader"],
        {"key": "new-search", "context": {"userId": "carol"}, "explain": True},
    ).json()
    assert (r["value"], r["reason"], r["version"]) == (False, "DEFAULT", 2)
    assert "rules[0] beta: no match" in r["text"]
    old = call(
        server,
        "POST",
        "/v1/flags/evals/evaluate",
        tokens["reader"],
        {"key": "checkout", "version": 1},
    ).json()
    assert (old["value"], old["version"]) == ("one", 1)


def test_a_rollout_in_progress_is_readable_and_can_be_rolled_back(
    server: Server, tokens: dict[str, str]
) -> None:
    new_env(server, tokens, "ro")
    call(server, "PUT", "/v1/flags/ro", tokens["deployer"], {"document": flag_set("old")})
    slow = {"strategy": {"steps": [{"weight": 30, "pause": "1h"}]}}
    r = call(
        server,
        "PUT",
        "/v1/flags/ro",
        tokens["deployer"],
        {"document": flag_set("new"), "rollout": slow},
    )
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    rollout = r.json()["rollout"]
    assert (rollout["from_version"], rollout["to_version"], rollout["phase"]) == (
        1,
        2,
        "rolling_out",
    )
    got = call(server, "GET", "/v1/flags/ro", tokens["reader"]).json()
    assert (got["version"], got["rollout"]["id"]) == (1, rollout["id"])
    busy = call(
        server,
        "PUT",
        "/v1/flags/ro",
        tokens["deployer"],
        {"document": flag_set("newer")},
        headers={"If-Match": '"1"'},
    )
    assert busy.status_code == 409 and "in progress" in busy.json()["error"]
    done = call(server, "POST", "/v1/flags/ro/rollout/rollback", tokens["deployer"])
    assert (done.status_code, done.json()["phase"], done.json()["percent"]) == (
        200,
        "rolled_back",
        0,
    )
    status = call(server, "GET", "/v1/flags/ro/rollout", tokens["reader"]).json()
    assert status["reason"] == "rolled back by deployer"
    assert [e["kind"] for e in status["events"]][-1] == "flags.rollout.rolled_back"
    again = call(server, "POST", "/v1/flags/ro/rollout/stop", tokens["deployer"])
    assert again.status_code == 409
    assert call(server, "GET", "/v1/flags/ro", tokens["reader"]).json()["rollout"] is None


def test_a_rollout_guarded_by_an_unknown_alarm_is_refused_and_nothing_is_saved(
    server: Server, tokens: dict[str, str]
) -> None:
    new_env(server, tokens, "guarded")
    call(server, "PUT", "/v1/flags/guarded", tokens["deployer"], {"document": flag_set()})
    r = call(
        server,
        "PUT",
        "/v1/flags/guarded",
        tokens["deployer"],
        {"document": flag_set("new"), "rollout": {"alarms": ["shop/high-5xx"]}},
    )
    assert r.status_code == 422
    assert r.json()["problems"][0]["path"].startswith("rollout.alarms")
    assert "shop/high-5xx" in r.json()["problems"][0]["message"]
    assert call(server, "GET", "/v1/flags/guarded", tokens["reader"]).json()["version"] == 1


def test_unknown_environments_and_bad_names(server: Server, tokens: dict[str, str]) -> None:
    r = call(server, "GET", "/v1/flags/nowhere", tokens["reader"])
    assert r.status_code == 404 and "sluice flags envs create nowhere" in r.json()["error"]
    r = call(server, "POST", "/v1/flags/envs", tokens["deployer"], {"name": "no spaces"})
    assert r.status_code == 422 and r.json()["problems"][0]["path"] == "name"
    new_env(server, tokens, "twice")
    assert (
        call(server, "POST", "/v1/flags/envs", tokens["deployer"], {"name": "twice"}).status_code
        == 409
    )
    names = [e["name"] for e in call(server, "GET", "/v1/flags/envs", tokens["reader"]).json()]
    assert "twice" in names and names == sorted(names)


def test_the_schema_is_published(server: Server) -> None:
    schema = call(server, "GET", "/v1/flags/schema").json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "flags" in schema["properties"]


def test_an_environment_is_deleted_with_its_versions_and_its_name_is_free_again(
    server: Server, tokens: dict[str, str]
) -> None:
    new_env(server, tokens, "gone")
    put = call(server, "PUT", "/v1/flags/gone", tokens["deployer"], {"document": flag_set("old")})
    assert put.status_code == 201
    ctx = {"key": "checkout", "context": {"targetingKey": "u1"}}
    assert (
        call(server, "POST", "/v1/flags/gone/evaluate", tokens["reader"], ctx).json()["value"]
        == "old"
    )
    assert call(server, "DELETE", "/v1/flags/envs/gone", tokens["deployer"]).status_code == 403
    r = call(server, "DELETE", "/v1/flags/envs/gone", tokens["admin"])
    assert r.status_code == 200 and r.json() == {"env": "gone", "deleted": True}
    assert call(server, "GET", "/v1/flags/gone", tokens["reader"]).status_code == 404
    assert call(server, "DELETE", "/v1/flags/envs/gone", tokens["admin"]).status_code == 404
    events = call(
        server, "GET", "/v1/events", tokens["reader"], params={"kind": "flags.env.deleted"}
    ).json()
    assert [(e["subject"], e["actor"], e["data"]) for e in events] == [
        ("flags/gone", "first-admin", {"env": "gone", "versions": 1})
    ]
    # a new environment of the same name starts over: its version 1 is its own
    new_env(server, tokens, "gone")
    put = call(server, "PUT", "/v1/flags/gone", tokens["deployer"], {"document": flag_set("new")})
    assert put.json()["version"] == 1
    assert (
        call(server, "POST", "/v1/flags/gone/evaluate", tokens["reader"], ctx).json()["value"]
        == "new"
    )


def test_an_environment_in_use_is_not_deleted(server: Server, tokens: dict[str, str]) -> None:
    admin = tokens["admin"]
    new_env(server, tokens, "prod")  # the router's flag env (sluice server --router-flags-env)
    r = call(server, "DELETE", "/v1/flags/envs/prod", admin)
    assert r.status_code == 409 and "--router-flags-env" in r.json()["error"]
    new_env(server, tokens, "busy")
    call(server, "PUT", "/v1/flags/busy", tokens["deployer"], {"document": flag_set("old")})
    slow = {"strategy": {"steps": [{"weight": 10, "pause": "10m"}]}}
    r = call(
        server,
        "PUT",
        "/v1/flags/busy",
        tokens["deployer"],
        {"document": flag_set("new"), "rollout": slow},
    )
    assert r.status_code == 201 and r.json()["rollout"]["active"]
    r = call(server, "DELETE", "/v1/flags/envs/busy", admin)
    assert r.status_code == 409 and "in progress" in r.json()["error"]
    call(server, "POST", "/v1/flags/busy/rollout/stop", tokens["deployer"])
    call(server, "POST", "/v1/tokens", admin, {"role": "agent", "env": "busy", "name": "edge"})
    r = call(server, "DELETE", "/v1/flags/envs/busy", admin)
    assert r.status_code == 409 and "agent token (edge)" in r.json()["error"]
    assert call(server, "GET", "/v1/flags/busy", tokens["reader"]).json()["version"] == 1


def test_a_batch_evaluates_many_contexts_in_one_call_as_single_calls_would(
    server: Server, tokens: dict[str, str]
) -> None:
    new_env(server, tokens, "batch")
    r = call(server, "PUT", "/v1/flags/batch", tokens["deployer"], {"document": flag_set()})
    assert r.status_code in (200, 201), r.text
    users = ["alice", "carol", "bob"]
    items = [{"key": "new-search", "context": {"targetingKey": u}} for u in users]
    items.append({"key": "nope", "context": {}})
    r = call(server, "POST", "/v1/flags/batch/evaluate/batch", tokens["reader"],
             {"requests": items})  # fmt: skip
    assert r.status_code == 200, r.text
    answers = r.json()
    got = [(a["flag"], a["variant"]) for a in answers]
    assert got == [
        ("new-search", "on"),
        ("new-search", "off"),
        ("new-search", "on"),
        ("nope", None),
    ]
    assert answers[3]["error_code"] == "FLAG_NOT_FOUND"
    for item, answer in zip(items, answers, strict=True):
        single = call(server, "POST", "/v1/flags/batch/evaluate", tokens["reader"], item).json()
        assert single == answer
    too_many = {"requests": [items[0]] * 1001}
    r = call(server, "POST", "/v1/flags/batch/evaluate/batch", tokens["reader"], too_many)
    assert r.status_code == 422 and r.json()["problems"][0]["path"] == "requests"
