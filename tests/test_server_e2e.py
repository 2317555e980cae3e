"""`sluice server` end to end: apply, deploy through the CLI, survive a SIGKILL mid-shift."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests._support import APP_PATH, REPO_ROOT, free_port
from tests._support.rawhttp import get_many


class Server:
    def __init__(self, state: Path, port: int) -> None:
        self.state, self.port = state, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.token = ""

    def start(self) -> None:
        with open(self.state.parent / "server.err", "a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sluicegate", "server", "--port", str(self.port),
                 "--state-dir", str(self.state)],
                stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO_ROOT)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            if m := re.search(r"admin token \(shown once.*\): (\S+)", line):
                self.token = m.group(1)
            if "ready on" in line:
                break
            assert time.monotonic() < deadline
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def cli(self, *args: str) -> str:
        env = {**os.environ, "SLUICE_URL": self.url, "SLUICE_TOKEN": self.token}
        out = subprocess.run([sys.executable, "-m", "sluicegate", *args], env=env,
                             capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                             check=False)
        assert out.returncode == 0, out.stderr + out.stdout
        return out.stdout

    def api(self, path: str) -> Any:
        r = httpx.get(self.url + "/v1" + path, headers={"Authorization": f"Bearer {self.token}"})
        assert r.status_code == 200, r.text
        return r.json()

    def wait_phase(self, dep: str, phases: set[str], timeout: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            d = self.api(f"/deployments/{dep}")
            if d["phase"] in phases:
                return d  # type: ignore[no-any-return]
            story = "\n".join(f"{e['kind']}: {e['message']}" for e in d["events"])
            assert d["phase"] not in ("failed", "rolled_back") or d["phase"] in phases, story
            assert time.monotonic() < deadline, f"{dep} stuck in {d['phase']}:\n{story}"
            time.sleep(0.2)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "state", free_port())
    s.start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.proc.terminate()
        s.proc.wait(10)
    # The router and the replicas outlive the server by design: stop them here.
    router_json = tmp_path / "state" / "router" / "router.json"
    if router_json.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(json.loads(router_json.read_text())["pid"], signal.SIGTERM)
    subprocess.run(["pkill", "-f", str(tmp_path / "state")], check=False)


def spec(port: int, test_port: int) -> dict[str, Any]:
    return {
        "service": "shop",
        "listener": {"port": port, "test_port": test_port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "stickiness": {"enabled": True, "duration": "1h"},
        "compute": {"local": {"command": [sys.executable, str(APP_PATH), "--port", "{port}",
                                          "--version", "{revision}"],
                              "replicas": 2, "stop_grace": "2s"}},
        "deployment": {
            "config": {"steps": [{"weight": 20, "pause": "2s"}, {"weight": 50, "pause": "2s"},
                                 {"weight": 100}]},
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
