"""Live views over Server-Sent Events: the message format, the first message carries the
current fragment, and the bounds (stream count, lifetime, the server closing)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluicegate.console._live import sse_message
from sluicegate.console._shared import Shared
from tests.console.test_pages import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    w.console.stream_lifetime = 0.6  # each stream ends soon: the test reads it to its end
    yield w
    w.store.close()


def test_every_line_of_a_fragment_is_its_own_data_line() -> None:
    assert sse_message("overview", "<tr>\n<td>a</td>\n</tr>") == (
        "event: overview\ndata: <tr>\ndata: <td>a</td>\ndata: </tr>\n\n"
    )
    assert sse_message("x", "") == "event: x\ndata: \n\n"


def test_the_overview_stream_sends_the_rows_once_until_they_change_and_then_ends(
    world: World,
) -> None:
    c = world.client("reader")
    with c.stream("GET", "/ui/live/overview") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["content-security-policy"]
        body = "".join(r.iter_text())
    assert body.count("event: overview") == 1  # nothing changed: sent once
    assert 'data: <tr id="svc-shop" data-phase="paused_until_promoted">' in body
    assert world.console.streams == 0  # the stream ended at its lifetime and was counted off


def test_the_deployment_stream_sends_its_live_panel(world: World) -> None:
    c = world.client("reader")
    with c.stream("GET", f"/ui/live/deployments/{world.dep.id}") as r:
        body = "".join(r.iter_text())
    assert "event: deployment" in body and 'id="phase">paused_until_promoted' in body
    assert c.get("/ui/live/deployments/d-000000000000").status_code == 404


def test_streams_past_the_bound_are_refused_and_without_a_session_too(world: World) -> None:
    world.console.max_streams = 0
    c = world.client("reader")
    r = c.get("/ui/live/overview")
    assert r.status_code == 503 and "at most 0 live views" in r.text
    assert world.client().get("/ui/live/overview").status_code == 401


def test_a_closing_server_ends_its_streams(world: World) -> None:
    world.console.stream_lifetime = 60.0
    world.console.close()
    with world.client("reader").stream("GET", "/ui/live/overview") as r:
        assert "".join(r.iter_text()) == ""


def test_a_rendering_is_shared_between_streams_within_its_age() -> None:
    made: list[int] = []

    async def make() -> str:
        made.append(1)
        return f"v{len(made)}"

    async def run() -> list[str]:
        shared = Shared(max_age=0.2, max_keys=2)
        return [
            await shared.get("a", 10.0, make),
            await shared.get("a", 10.1, make),  # young enough: the same rendering
            await shared.get("a", 10.3, make),  # too old: made again
            await shared.get("b", 10.3, make),
            await shared.get("c", 10.3, make),  # past max_keys: the old keys are forgotten
            await shared.get("a", 10.3, make),
        ]

    assert asyncio.run(run()) == ["v1", "v1", "v2", "v3", "v4", "v5"]


def test_the_activity_stream_sends_the_filtered_rows(world: World) -> None:
    world.store.events.append("service.applied", "other", "other applied", actor="bob")
    world.store.events.append("token.created", "t", "made a token", actor="carol")
    c = world.client("reader")
    page = c.get("/ui/activity?actor=bob").text
    assert 'sse-connect="/ui/live/activity?actor=bob"' in page
    with c.stream("GET", "/ui/live/activity?actor=bob") as r:
        body = "".join(r.iter_text())
    assert "event: activity" in body and "other applied" in body and "made a token" not in body


def test_the_flag_rollout_panel_is_sent_live(world: World) -> None:
    api = world.client()
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    assert api.post("/v1/flags/envs", json={"name": "web"}, headers=headers).status_code == 201
    doc = {"flags": {"b": {"type": "string", "variants": {"v": "x"}, "default_variant": "v"}}}
    assert api.put("/v1/flags/web", json={"document": doc}, headers=headers).status_code == 201
    doc["flags"]["b"]["variants"]["v"] = "y"
    slow = {"strategy": {"steps": [{"weight": 30, "pause": "1h"}]}}
    r = api.put("/v1/flags/web", json={"document": doc, "rollout": slow}, headers=headers)
    assert r.status_code == 201
    c = world.client("reader")
    with c.stream("GET", "/ui/live/flags/web") as r:
        body = "".join(r.iter_text())
    assert "event: rollout" in body and 'id="rollout-phase">rolling_out' in body
    assert c.get("/ui/live/flags/nope").status_code == 404
