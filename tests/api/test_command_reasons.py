"""A command's reason through the API (what `sluice rollback --reason` sends): recorded
with the token's name in one line; too long is refused naming the field, changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.console.test_pages import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def api(world: World, role: str) -> TestClient:
    return TestClient(world.app, headers={"Authorization": f"Bearer {world.tokens[role]}"})


def test_a_command_with_a_reason_is_recorded_with_the_token_name(world: World) -> None:
    r = api(world, "deployer").post(
        "/v1/services/shop/rollback", params={"reason": "p99 doubled\n after deploy"}
    )
    assert r.status_code == 202, r.text
    [e] = world.store.events.list(subject=world.dep.id, kind="deployment.command")
    assert (e.actor, e.message) == (
        "deployer-1",
        "rollback asked by deployer-1: p99 doubled after deploy",
    )
    assert e.data == {"command": "rollback", "reason": "p99 doubled after deploy",
                      "command_id": r.json()["command_id"]}  # fmt: skip


def test_without_a_reason_no_event_is_added_and_a_long_one_is_refused(world: World) -> None:
    client = api(world, "deployer")
    r = client.post(f"/v1/deployments/{world.dep.id}/promote", params={"reason": "x" * 501})
    assert r.status_code == 422 and r.json()["problems"][0]["path"] == "query.reason"
    assert world.store.commands.pending(world.dep.id) == []
    assert client.post(f"/v1/deployments/{world.dep.id}/promote").status_code == 202
    assert world.store.events.list(subject=world.dep.id, kind="deployment.command") == []
    assert len(world.store.commands.pending(world.dep.id)) == 1
