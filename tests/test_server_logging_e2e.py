"""``sluice --log-level debug --log-json server``: the router process the server starts logs
the same way (its lines land in <state-dir>/router/router.log)."""

from __future__ import annotations

import json
from pathlib import Path

from tests._support.server import running_server


def test_the_servers_router_logs_json_at_the_servers_level(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running_server(state, global_args=["--log-level", "debug", "--log-json"]) as server:
        assert server.api("/healthz")["status"] == "ok"  # up, router included; then stopped
    router_log = (state / "router" / "router.log").read_text().splitlines()
    records = [json.loads(line) for line in router_log]  # every line is JSON
    assert any(
        r["level"] == "DEBUG" and r["logger"] == "sluicegate.router._run" for r in records
    ), router_log
    server_log = (tmp_path / "server.err").read_text().splitlines()
    assert {json.loads(line)["level"] for line in server_log} >= {"DEBUG", "INFO"}
