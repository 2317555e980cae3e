"""A real ``sluice agent`` synced from a real ``sluice server``'s flag store: versions,
a gradual rollout followed user by user, a rollback, all with an environment-scoped key."""

from __future__ import annotations

from pathlib import Path

from sluicegate.flags import sees_new_version
from tests._support.flag_sync import start_agent
from tests._support.server import running_server
from tests.test_flags_e2e import V1, V2, wait_rollout

USERS = [f"user-{i}" for i in range(60)]


def test_an_agent_follows_the_servers_versions_and_rollouts_with_its_env_key(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path / "state") as server:
        server.cli("flags", "envs", "create", "prod")
        v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
        v1.write_text(V1)
        v2.write_text(V2)
        server.cli("flags", "apply", "-f", str(v1), "--env", "prod")
        key = server.cli("keys", "create", "--env", "prod").strip()
        agent = start_agent(server.url, key, tmp_path / "cache")
        try:
            agent.wait_for(lambda: agent.get("/healthz").status_code == 200, what="ready")
            assert {agent.value("checkout", u) for u in USERS} == {"classic"}

            server.cli("flags", "apply", "-f", str(v2), "--env", "prod", "--steps", "30:60s")
            rollout = wait_rollout(server, lambda r: r.get("phase") == "rolling_out")[-1]
            rid = rollout["id"]
            expected = {u: "new" if sees_new_version(rid, u, 30) else "classic" for u in USERS}
            assert set(expected.values()) == {"new", "classic"}
            agent.wait_for(
                lambda: {u: agent.value("checkout", u) for u in USERS} == expected,
                what="each user on the side of their bucket",
            )

            server.cli("flags", "rollout", "rollback", "prod")
            agent.wait_for(
                lambda: {agent.value("checkout", u) for u in USERS} == {"classic"},
                what="everyone back on version 1",
            )
            assert agent.value("banner", "user-1") is None  # v2's new flag is gone again
        finally:
            agent.stop()
