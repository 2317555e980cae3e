"""A router SIGKILLed under a running server comes back with every route, and everything
that reads traffic (default guards, router alarms, rollups) keeps reading through the same
handle: nothing is re-wired by hand."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests._support import free_port
from tests._support.rawhttp import get_many
from tests._support.server import running_server
from tests.test_mistakes_e2e import Api, spec

pytestmark = pytest.mark.slow


def _router_pid(state: Path) -> int:
    pid: int = json.loads((state / "router" / "router.json").read_text())["pid"]
    return pid


def test_a_killed_router_is_restarted_with_its_routes_and_the_guards_still_judge(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with running_server(state) as server, Api(server) as api:
        port = free_port()
        canary = {"config": {"steps": [{"weight": 50, "pause": "20s"}, {"weight": 100}]}}
        assert api.apply(spec("shop", port, deployment=canary)).status_code == 200
        api.until(api.deploy("shop", "v1"), {"succeeded"})
        old = _router_pid(state)
        os.kill(old, signal.SIGKILL)

        deadline = time.monotonic() + 15
        while True:
            try:
                if {r.version for r in get_many(port, 5)} == {"v1"}:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the router did not come back with its routes"
            time.sleep(0.2)
        assert _router_pid(state) != old
        assert api.ok("GET", "/healthz")["engines"]["router-watch"]["ok"]
        log = (tmp_path / "server.err").read_text()
        assert "Traceback" not in log, log  # the restart re-adopted nothing twice

        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    get_many(port, 10)
                except OSError:
                    time.sleep(0.05)

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        try:
            bad = api.deploy("shop", "v2", env={"SHOP_FAIL_PERCENT": "100"})
            ended = api.until(bad, {"rolled_back", "succeeded", "failed"}, timeout=30)
        finally:
            stop.set()
            worker.join(10)
        assert ended["phase"] == "rolled_back", ended["reason"]
        assert "guard fired" in ended["reason"]
        assert {r.version for r in get_many(port, 5)} == {"v1"}
