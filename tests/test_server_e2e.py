"""`sluice server` end to end: apply, deploy through the CLI, survive a SIGKILL mid-shift."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests._support import APP_PATH, free_port
from tests._support.rawhttp import get_many
from tests._support.server import Server, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "state") as s:
        yield s


def spec(port: int, test_port: int) -> dict[str, Any]:
    return {
        "service": "shop",
        "listener": {"port": port, "test_port": test_port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "stickiness": {"enabled": True, "duration": "1h"},
        "compute": {
            "local": {
                "command": [
                    sys.executable,
                    str(APP_PATH),
                    "--port",
                    "{port}",
                    "--version",
                    "{revision}",
                ],
                "replicas": 2,
                "stop_grace": "2s",
            }
        },
        "deployment": {
            "config": {
                "steps": [
                    {"weight": 20, "pause": "2s"},
                    {"weight": 50, "pause": "2s"},
                    {"weight": 100},
                ]
            },
            "termination_wait": "1s",
            "hooks": {"before_allow_traffic": [{"http": {"path": "/healthz"}}]},
        },
    }


class Load:
    def __init__(self, port: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.seen: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for r in get_many(self.port, 20):
                    self.seen[r.version if r.status == 200 else str(r.status)] += 1
            except OSError as exc:
                self.seen[f"error {type(exc).__name__}"] += 1


def test_deploy_survives_a_server_sigkill_mid_shift_with_no_failed_request(
    server: Server, tmp_path: Path
) -> None:
    port, test_port = free_port(), free_port()
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(spec(port, test_port)))
    assert "applied" in server.cli("apply", "-f", str(path))
    out = server.cli("deploy", "shop", "--revision", "v1")
    first = re.search(r"deployment (\S+):", out)
    assert first
    server.wait_phase(first.group(1), {"succeeded"})
    assert Counter(r.version for r in get_many(port, 20)) == {"v1": 20}

    load = Load(port)
    load.thread.start()
    out = server.cli("deploy", "shop", "--revision", "v2")
    assert "Custom steps" in out or "20%" in out
    dep = re.search(r"deployment (\S+):", out)
    assert dep
    server.wait_phase(dep.group(1), {"shifting"})
    server.kill()  # mid-shift: the router and the replicas keep serving
    time.sleep(1.0)
    server.start()
    final = server.wait_phase(dep.group(1), {"succeeded", "rolled_back", "failed"}, 60)
    load.stop.set()
    load.thread.join(10)
    assert final["phase"] == "succeeded", final
    assert Counter(r.version for r in get_many(port, 20)) == {"v2": 20}
    assert set(load.seen) <= {"v1", "v2"}, load.seen  # not one failed request
    assert load.seen["v1"] > 0 and load.seen["v2"] > 0
    status = server.cli("status", "shop")
    assert "revision v2" in status
