"""Flag-driven routing end to end: a service's ``listener.flag_route`` sends the users a
flag selects to green during a deployment, through ``sluice server``'s own router, with the
flag set pushed from the server's ``prod`` environment."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import yaml

from tests._support import free_port
from tests._support.server import running_server
from tests.test_alarms_e2e import deploy, spec

FLAGS = """
segments:
  beta: {ids: [alice, bob]}
flags:
  new-checkout:
    type: boolean
    rules:
      - {name: beta, when: {segment: beta}, variant: on}
"""


def versions_for(port: int, uid: str, n: int) -> set[str]:
    seen = set()
    for _ in range(n):  # a fresh client each time: no sticky cookie, only the flag decides
        r = httpx.get(f"http://127.0.0.1:{port}/", cookies={"uid": uid}, timeout=5)
        seen.add(r.headers.get("x-version", str(r.status_code)))
    return seen


def test_the_flags_users_reach_green_while_everyone_else_follows_the_weights(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path / "state", ["--no-default-guards"]) as server:
        server.cli("flags", "envs", "create", "prod")
        flags = tmp_path / "flags.yaml"
        flags.write_text(FLAGS)
        server.cli("flags", "apply", "-f", str(flags), "--env", "prod")

        port = free_port()
        doc = spec("shop", port, "30s", [])
        doc["listener"]["flag_route"] = {
            "key": "new-checkout",
            "variant": "on",
            "user_from": {"cookie": "uid"},
        }
        doc["deployment"]["config"] = {"steps": [{"weight": 10}, {"pause": "until_promoted"}]}
        path = tmp_path / "shop.yaml"
        path.write_text(yaml.safe_dump(doc))
        server.cli("apply", "-f", str(path))
        server.wait_phase(deploy(server, "shop", "v1"), {"succeeded"})
        dep = deploy(server, "shop", "v2")
        server.wait_phase(dep, {"paused_until_promoted"})

        deadline = time.monotonic() + 15  # the server pushes prod's flags within a second
        while versions_for(port, "alice", 5) != {"v2"}:
            assert time.monotonic() < deadline, "alice never reached green"
            time.sleep(0.3)
        assert versions_for(port, "alice", 20) == {"v2"}
        assert versions_for(port, "bob", 20) == {"v2"}
        others = [v for uid in ("carol", "dave", "erin") for v in versions_for(port, uid, 10)]
        assert "v1" in others  # 10 % canary: everyone else mostly on blue

        server.cli("promote", "--full", dep)
        server.wait_phase(dep, {"succeeded"}, timeout=60)
        assert versions_for(port, "carol", 10) == {"v2"}
