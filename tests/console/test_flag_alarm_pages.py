"""Flag and alarm pages over the real app: versions, a diff of two versions, explain for a
user, a rollout's progress and its stop with a reason; an alarm's rule, datapoints and
history; drills and reverts refused to readers and without a reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sluicegate.monitor._alarm_records import sync_alarms_in
from sluicegate.spec import ServiceSpec
from tests.console.test_pages import World, csrf_of


def flag_set(value: str) -> dict[str, Any]:
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


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    api = TestClient(w.app, headers={"Authorization": f"Bearer {w.tokens['admin']}"})
    assert api.post("/v1/flags/envs", json={"name": "prod"}).status_code == 201
    for value in ("old", "mid"):
        r = api.put("/v1/flags/prod", json={"document": flag_set(value), "message": value})
        assert r.status_code == 201, r.text
    slow = {"strategy": {"steps": [{"weight": 30, "pause": "1h"}]}}
    r = api.put("/v1/flags/prod", json={"document": flag_set("new"), "rollout": slow})
    assert r.status_code == 201, r.text
    yield w
    w.store.close()


def test_the_flag_pages_list_environments_versions_and_the_rollout_in_progress(
    world: World,
) -> None:
    c = world.client("reader")
    assert 'href="/ui/flags/prod"' in c.get("/ui/flags").text
    page = c.get("/ui/flags/prod").text
    # no rollout engine runs in this app: the rollout has not taken its first step
    assert 'id="rollout-phase">rolling_out' in page and "0 % of users on the new version" in page
    assert "step - of 2, plan custom steps" in page
    assert "rolling out (0 %)" in page and ">current<" in page
    assert 'id="rollout-actions"' not in page and 'id="do-revert"' not in page  # a reader


def test_a_diff_of_any_two_versions_shows_what_changed(world: World) -> None:
    c = world.client("reader")
    page = c.get("/ui/flags/prod?from=1&to=3").text
    assert "Diff: version 1 → 3" in page
    diff = page.split('id="diff">', 1)[1].split("</pre>", 1)[0]
    assert "checkout" in diff and "old" in diff and "new" in diff
    assert "new-search" not in diff  # unchanged
    r = c.get("/ui/flags/prod?from=1&to=9")
    assert r.status_code == 200 and "diff: " in r.text  # the mistake is named on the page
    assert c.get("/ui/flags/prod?from=-1").status_code == 422


def test_explain_for_a_user_id_says_which_rule_matched(world: World) -> None:
    c = world.client("reader")
    page = c.get("/ui/flags/prod?key=new-search&user=alice").text
    explained = page.split('id="explained">', 1)[1].split("</pre>", 1)[0]
    assert "beta" in explained and "on" in explained
    assert (
        "FLAG_NOT_FOUND: no flag &#39;nope&#39;" in c.get("/ui/flags/prod?key=nope&user=alice").text
    )


def test_a_deployer_stops_the_rollout_with_a_reason_recorded_under_its_name(world: World) -> None:
    c = world.client("deployer")
    url = "/ui/flags/prod/rollout/stop"
    assert c.post(url, data={"csrf": csrf_of(c, "/ui/flags/prod")}).status_code == 422
    r = c.post(url, data={"csrf": csrf_of(c, "/ui/flags/prod"), "reason": "wrong copy"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    [e] = world.store.events.list(subject="flags/prod", kind="flags.rollout.command")
    assert (e.actor, e.data["reason"], e.data["command"]) == ("deployer-1", "wrong copy", "stop")
    assert 'id="rollout-phase">stopped' in c.get("/ui/flags/prod").text


def test_a_revert_saves_the_old_version_again_with_the_reason_as_its_message(
    world: World,
) -> None:
    c = world.client("deployer")
    csrf = csrf_of(c, "/ui/flags/prod")
    c.post("/ui/flags/prod/rollout/stop", data={"csrf": csrf, "reason": "x"})
    r = c.post("/ui/flags/prod/revert", data={"csrf": csrf, "to": "1", "reason": "back to old"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    v = world.store.flags.version("prod")
    assert (v.version, v.actor, v.message) == (4, "deployer-1", "back to old")
    assert c.post("/ui/flags/prod/revert", data={"csrf": csrf, "reason": "x"}).status_code == 422
    reader = world.client("reader")
    r = reader.post("/ui/flags/prod/revert",
                    data={"csrf": csrf_of(reader), "to": "1", "reason": "x"})  # fmt: skip
    assert r.status_code == 403


ALARM = {
    "name": "errors",
    "metric": {"source": "push", "name": "errors"},
    "statistic": "Sum",
    "period": "10s",
    "evaluation_periods": 3,
    "datapoints_to_alarm": 2,
    "threshold": 5,
    "comparison": "GreaterThanThreshold",
}


def test_the_alarm_pages_show_state_rule_and_history_and_refuse_a_reader_drill(
    world: World,
) -> None:
    world.store.events.append(
        "alarm.state", "shop/errors", "2 of 3 datapoints breached", actor="monitor",
        data={"old_state": "OK", "new_state": "ALARM"},
    )  # fmt: skip
    with world.store.transaction() as tx:  # as `sluice apply` stores a spec's alarms
        sync_alarms_in(tx, ServiceSpec.model_validate(SPEC_WITH_ALARM), "test")
    c = world.client("reader")
    assert 'href="/ui/alarms/shop/errors"' in c.get("/ui/alarms").text
    page = c.get("/ui/alarms/shop/errors").text
    assert "Rule: Sum" in page and "in 2 of the last 3 periods" in page
    assert "2 of 3 datapoints breached" in page  # the history
    assert "no data yet" in page  # the chart, before any evaluation
    assert 'id="actions"' not in page
    r = c.post("/ui/alarms/shop/errors/state",
               data={"csrf": csrf_of(c), "state": "ALARM", "reason": "drill"})  # fmt: skip
    assert r.status_code == 403
    d = world.client("deployer")
    r = d.post("/ui/alarms/shop/errors/state",
               data={"csrf": csrf_of(d), "state": "BOGUS", "reason": "drill"})  # fmt: skip
    assert r.status_code == 422 and "state: must be one of" in r.text
    r = d.post("/ui/alarms/shop/errors/state",
               data={"csrf": csrf_of(d), "state": "ALARM", "reason": "drill"})  # fmt: skip
    assert r.status_code == 503  # this app runs no alarm loop: said, not ignored


SPEC_WITH_ALARM = {
    "service": "shop",
    "listener": {"port": 9},
    "compute": {"local": {"command": ["true", "{port}"], "replicas": 1}},
    "alarms": [ALARM],
}


def test_exposures_by_variant_are_charted_per_minute(world: World) -> None:
    minute = int(world.clock.now()) // 60 * 60
    world.store.flag_exposures.add("prod", minute - 120, [("new-search", "on", 5)])
    world.store.flag_exposures.add(
        "prod", minute, [("new-search", "on", 7), ("new-search", "off", 30)]
    )
    page = world.client("reader").get("/ui/flags/prod?key=new-search&user=bob").text
    chart = page.split('id="exposures">', 1)[1].split("</svg>", 1)[0]
    assert "exposures of new-search by variant" in chart
    assert 'data-series="on"' in chart  # two minutes: a line
    assert ">off</text>" in chart  # one minute: a point, and its legend
    empty = world.client("reader").get("/ui/flags/prod?key=checkout&user=bob").text
    assert "no data yet" in empty.split('id="exposures">', 1)[1]


def test_a_deployer_drills_an_alarm_and_its_history_names_who_and_why(tmp_path: Path) -> None:
    w = World(tmp_path, engine=True)
    with w.store.transaction() as tx:
        sync_alarms_in(tx, ServiceSpec.model_validate(SPEC_WITH_ALARM), "test")
    c = w.client("deployer")
    r = c.post("/ui/alarms/shop/errors/state",
               data={"csrf": csrf_of(c), "state": "ALARM", "reason": "game day"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert w.store.alarms.get("shop", "errors").state == "ALARM"
    page = c.get("/ui/alarms/shop/errors").text
    assert 'id="alarm-state">ALARM' in page
    history = page.split("<h2>History</h2>", 1)[1]
    assert "deployer-1" in history and "game day" in history and "(forced)" in history
    w.store.close()


def apply_form(c: TestClient, **fields: str) -> dict[str, str]:
    page = c.get("/ui/flags/prod").text
    expected = page.split('name="expected" value="', 1)[1].split('"', 1)[0]
    return {"csrf": csrf_of(c, "/ui/flags/prod"), "expected": expected, **fields}


def test_a_deployer_saves_a_pasted_flag_set_and_the_mistakes_save_nothing(world: World) -> None:
    c = world.client("deployer")
    c.post("/ui/flags/prod/rollout/stop", data={"csrf": csrf_of(c), "reason": "x"})
    page = c.get("/ui/flags/prod").text
    assert "default_variant: v" in page  # the form starts from the current document
    url = "/ui/flags/prod/apply"
    good = "flags:\n  checkout: {type: string, variants: {v: newest}, default_variant: v}\n"
    mistakes = [
        ({"document": "", "reason": "x"}, "required: paste the flag set"),
        ({"document": "flags: [\n", "reason": "x"}, "not YAML at line"),
        ({"document": "a: &x [1]\nb: *x\n", "reason": "x"}, "aliases (*name) are not accepted"),
        ({"document": "flags: {checkout: {type: strin}}", "reason": "x"}, "flags.checkout"),
        ({"document": good, "reason": "x", "strategy": "Slowly"}, "rollout.strategy"),
        ({"document": good, "reason": ""}, "reason: required"),
    ]
    for fields, problem in mistakes:
        r = c.post(url, data=apply_form(c, **fields))
        assert r.status_code == 422 and problem in r.text, (fields, r.text[-600:])
    stale = {**apply_form(c, document=good, reason="x"), "expected": "1"}
    r = c.post(url, data=stale)
    assert r.status_code == 409  # someone saved a version since this form was made
    assert world.store.flags.environment("prod").latest_version == 3  # nothing saved
    r = c.post(url, data=apply_form(c, document=good, reason="new price copy"),
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    v = world.store.flags.version("prod")
    assert (v.version, v.actor, v.message) == (4, "deployer-1", "new price copy")
    assert v.document["flags"]["checkout"]["variants"] == {"v": "newest"}
    reader = world.client("reader")
    assert 'id="apply-form"' not in reader.get("/ui/flags/prod").text


def test_the_alarm_panel_is_sent_live(world: World) -> None:
    world.console.stream_lifetime = 0.6
    with world.store.transaction() as tx:
        sync_alarms_in(tx, ServiceSpec.model_validate(SPEC_WITH_ALARM), "test")
    c = world.client("reader")
    with c.stream("GET", "/ui/live/alarms/shop/errors") as r:
        body = "".join(r.iter_text())
    assert "event: alarm" in body and "Rule: Sum" in body and "<h2>History</h2>" in body
    assert c.get("/ui/live/alarms/shop/nope").status_code == 404
