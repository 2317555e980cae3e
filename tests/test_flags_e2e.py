"""Flags end to end through `sluice server` and the CLI: versions, a gradual rollout whose
share grows, users on both sides of it, rollback, history, diff, revert."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluicegate.flags import sees_new_version
from tests._support import REPO_ROOT, free_port
from tests._support.server import Server, running_server

pytestmark = pytest.mark.slow

V1 = """
segments:
  beta: {ids: [alice, bob]}
flags:
  checkout:
    type: string
    variants: {classic: classic, new: new}
    default_variant: classic
  search:
    type: boolean
    rules:
      - {name: beta, when: {segment: beta}, variant: on}
"""
V2 = (
    V1.replace("default_variant: classic", "default_variant: new")
    + """
  banner:
    type: boolean
    default_variant: on
"""
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "state") as s:
        yield s


def sluice(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLUICE_URL": server.url, "SLUICE_TOKEN": server.token, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )


def evaluate(server: Server, key: str, user: str) -> Any:
    r = httpx.post(
        f"{server.url}/v1/flags/prod/evaluate",
        json={"key": key, "context": {"targetingKey": user}},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def wait_rollout(server: Server, done: Any, timeout: float = 40) -> list[dict[str, Any]]:
    """Poll the rollout until ``done(rollout)``; every state seen, in order."""
    seen, deadline = [], time.monotonic() + timeout
    while True:
        r = server.api("/flags/prod/rollout")
        seen.append(r)
        if done(r):
            return seen
        assert time.monotonic() < deadline, f"rollout stuck: {r}"
        time.sleep(0.1)


def test_flag_versions_and_a_gradual_rollout_through_the_cli(
    server: Server, tmp_path: Path
) -> None:
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(V1)
    v2.write_text(V2)
    assert "created" in server.cli("flags", "envs", "create", "prod", "-d", "production")

    # An invalid file is refused locally with every problem by path; nothing is saved.
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        V1.replace("default_variant: classic", "default_variant: nope").replace(
            "segment: beta", "segment: betta"
        )
    )
    refused = sluice(server, "flags", "apply", "-f", str(bad), "--env", "prod")
    assert refused.returncode == 2
    assert "flags.checkout.default_variant" in refused.stderr
    assert "flags.search.rules[0].when.segment" in refused.stderr

    out = server.cli("flags", "apply", "-f", str(v1), "--env", "prod", "-m", "first")
    assert "version 1 saved" in out and "everyone gets version 1 now" in out
    assert evaluate(server, "checkout", "u1")["value"] == "classic"

    # Version 2, gradually: 10 % for a second, then 50 % for a minute, then everyone.
    out = server.cli(
        "flags",
        "apply",
        "-f",
        str(v2),
        "--env",
        "prod",
        "--expected-version",
        "1",
        "--steps",
        "10:1s,50:60s",
        "--bake-time",
        "0",
        "-m",
        "new checkout",
    )
    assert "version 2 saved (from v1)" in out and "+ flag banner" in out
    found = re.search(r"rollout (fr-[0-9a-f]{12}): v1 → v2", out)
    assert found, out
    rollout_id = found.group(1)
    seen = wait_rollout(server, lambda r: r["percent"] == 50)
    percents = [r["percent"] for r in seen]
    assert percents == sorted(percents)
    steps = [e["message"] for e in seen[-1]["events"] if e["kind"] == "flags.rollout.step"]
    assert [re.search(r"(\d+) % of users", m).group(1) for m in steps] == ["10", "50"]  # type: ignore[union-attr]

    # Each user gets the version their rollout bucket says, on both sides of the share.
    sides = {}
    for n in range(100):
        user = f"user-{n}"
        got = evaluate(server, "checkout", user)
        new = sees_new_version(rollout_id, user, 50)
        sides[new] = user
        assert (got["value"], got["version"]) == (("new", 2) if new else ("classic", 1))
    assert set(sides) == {True, False}
    on_new = sluice(
        server,
        "flags",
        "eval",
        "checkout",
        "--env",
        "prod",
        "--ctx",
        f"userId={sides[True]}",
        "--explain",
    )
    assert "[prod v2]" in on_new.stdout and "in the new version's share" in on_new.stdout
    on_old = server.cli(
        "flags", "eval", "checkout", "--env", "prod", "--ctx", f"userId={sides[False]}"
    )
    assert "checkout = 'classic'" in on_old and "outside the new version's share" in on_old

    # No one else can change prod meanwhile; a stale editor is refused.
    stale = sluice(
        server, "flags", "apply", "-f", str(v1), "--env", "prod", "--expected-version", "0"
    )
    assert stale.returncode == 2 and "at version 1, not 0" in stale.stderr

    out = server.cli("flags", "rollout", "rollback", "prod")
    assert f"rollout {rollout_id} rolled back: everyone is back on version 1" in out
    assert evaluate(server, "checkout", sides[True])["value"] == "classic"
    history = server.cli("flags", "history", "--env", "prod")
    assert re.search(r"2[\s│]+rolled back.*new checkout", history), history
    assert re.search(r"1[\s│]+current.*first", history), history

    # Again, all at once with a one-second bake: it completes and becomes current.
    server.cli(
        "flags",
        "apply",
        "-f",
        str(v2),
        "--env",
        "prod",
        "--strategy",
        "AllAtOnce",
        "--bake-time",
        "1s",
        "-m",
        "again",
    )
    wait_rollout(server, lambda r: r["phase"] == "completed")
    assert server.api("/flags/prod")["version"] == 3
    assert evaluate(server, "checkout", sides[False])["value"] == "new"

    out = server.cli("flags", "diff", "--env", "prod", "--from", "1", "--to", "3")
    assert "version 1 → 3" in out and "~ flag checkout" in out
    assert "default_variant: 'classic' → 'new'" in out
    out = server.cli("flags", "revert", "--env", "prod", "--to", "1", "--expected-version", "3")
    assert "version 4 saved with the flag set of version 1 (from v3)" in out
    assert evaluate(server, "checkout", sides[False])["value"] == "classic"
    assert server.cli("flags", "get", "--env", "prod").startswith("# prod version 4")

    kinds = [e["kind"] for e in server.api("/events?subject=flags/prod")]
    assert kinds[:2] == ["flags.env.created", "flags.version"]
    for kind in (
        "flags.rollout.started",
        "flags.rollout.step",
        "flags.rollout.rolled_back",
        "flags.rollout.baking",
        "flags.rollout.completed",
    ):
        assert kind in kinds
    assert kinds.count("flags.version") == 4


def test_a_flag_rollout_is_reverted_when_its_guarding_alarm_is_forced_into_alarm(
    server: Server, tmp_path: Path
) -> None:
    from tests.test_alarms_e2e import HIGH_5XX, apply, spec

    # A forced state stands until the next evaluation, one period on: 10 s, not HIGH_5XX's
    # 1 s, so a loaded machine's rollout tick cannot miss it.
    alarm = {**HIGH_5XX, "period": "10s"}
    apply(server, tmp_path, spec("shop", free_port(), "30s", [alarm]))  # the alarm exists
    server.cli("flags", "envs", "create", "prod")
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(V1)
    v2.write_text(V2)
    server.cli("flags", "apply", "-f", str(v1), "--env", "prod")
    server.cli(
        "flags",
        "apply",
        "-f",
        str(v2),
        "--env",
        "prod",
        "--steps",
        "20:60s",
        "--alarm",
        "shop/high-5xx",
    )
    wait_rollout(server, lambda r: r.get("phase") == "rolling_out")
    server.cli(
        "alarms", "set-state", "shop/high-5xx", "--state", "ALARM", "--reason", "runbook drill"
    )
    seen = wait_rollout(server, lambda r: r.get("phase") == "rolled_back", timeout=20)
    assert "shop/high-5xx" in str(seen[-1]) and "runbook drill" in str(seen[-1])
    users = [f"user-{i}" for i in range(40)]
    assert {evaluate(server, "checkout", u)["value"] for u in users} == {"classic"}  # all on v1
