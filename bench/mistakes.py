#!/usr/bin/env python3
"""How fast an ordinary mistake ends in a clear outcome (issue "Never stuck, never silent").

Against a real ``sluice server`` (its router and replicas), each case is run ``--runs`` times
and timed from the user's action to the outcome the user sees:

- a command that does not exist → the deployment FAILED (bound before: none, it hung);
- a command that exits at once → FAILED when the supervisor gives up (bound before: the
  deployment's ``health_timeout``, 60 s here);
- ``stop`` while green is not yet healthy → STOPPED (before: accepted and ignored);
- the router SIGKILLed → the service answers again through a new router;
- the state dir deleted under the server → ``/v1/healthz`` answers 503 with the cause.

Prints a table (median, min, max in seconds). Not a test: machines here are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
APP = [sys.executable, str(REPO / "examples" / "app.py"), "--port", "{port}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, state: Path) -> None:
        self.state, self.port = state, free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluicegate",
                "server",
                "--state-dir",
                str(state),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        token = ""
        for line in self.proc.stdout:
            if m := re.search(r"admin token .*: (\S+)", line):
                token = m.group(1)
            if "ready on" in line:
                break
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def apply(self, name: str, port: int, **extra: Any) -> None:
        spec = {
            "service": name,
            "listener": {"port": port},
            "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
            "compute": {"local": {"command": APP, "replicas": 1}},
            "deployment": {
                "config": "AllAtOnce",
                "health_timeout": "60s",
                "termination_wait": "0s",
            },
            **extra,
        }
        r = self.http.put(f"/services/{name}", json=spec)
        r.raise_for_status()

    def deploy(self, name: str, revision: str) -> str:
        r = self.http.post(f"/services/{name}/deployments", json={"revision": revision})
        r.raise_for_status()
        dep: str = r.json()["id"]
        return dep

    def phase(self, dep: str) -> str:
        phase: str = self.http.get(f"/deployments/{dep}").json()["phase"]
        return phase

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = json.loads((self.state / "router" / "router.json").read_text())["pid"]
            os.kill(pid, signal.SIGTERM)
        subprocess.run(["pkill", "-f", str(self.state)], check=False)


def until(check: Callable[[], bool], limit: float = 120) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            return float("nan")
        time.sleep(0.05)
    return time.monotonic() - started


@contextlib.contextmanager
def server(tmp: Path) -> Iterator[Server]:
    s = Server(tmp / f"state-{time.monotonic_ns()}")
    try:
        yield s
    finally:
        s.stop()


def reaches(s: Server, dep: str, phase: str) -> float:
    """Seconds until the deployment is in ``phase``."""
    return until(lambda: s.phase(dep) == phase)


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def run(tmp: Path, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {
        k: []
        for k in (
            "missing command → FAILED",
            "crash loop → FAILED",
            "stop before healthy → STOPPED",
            "router SIGKILL → serving again",
            "state dir deleted → healthz 503",
        )
    }
    with server(tmp) as s:
        for i in range(runs):
            s.apply(
                f"ghost{i}",
                free_port(),
                compute={"local": {"command": ["/nonexistent/serve", "--port", "{port}"]}},
            )
            dep = s.deploy(f"ghost{i}", "v1")
            times["missing command → FAILED"].append(reaches(s, dep, "failed"))
            crash = [sys.executable, "-c", "import sys; sys.exit(3)", "{port}"]
            s.apply(f"crash{i}", free_port(), compute={"local": {"command": crash}})
            dep = s.deploy(f"crash{i}", "v1")
            times["crash loop → FAILED"].append(reaches(s, dep, "failed"))
            s.apply(
                f"sick{i}",
                free_port(),
                health_check={"path": "/nothing", "interval": "500ms", "timeout": "400ms"},
            )
            dep = s.deploy(f"sick{i}", "v1")
            reaches(s, dep, "health_gate")
            s.http.post(f"/deployments/{dep}/stop").raise_for_status()
            times["stop before healthy → STOPPED"].append(reaches(s, dep, "stopped"))
        port = free_port()
        s.apply("shop", port)
        dep = s.deploy("shop", "v1")
        reaches(s, dep, "succeeded")
        for _ in range(runs):
            pid = json.loads((s.state / "router" / "router.json").read_text())["pid"]
            os.kill(pid, signal.SIGKILL)
            until(lambda: not answers(port), 5)
            times["router SIGKILL → serving again"].append(until(lambda: answers(port)))
    for _ in range(runs):
        with server(tmp) as s:
            router = json.loads((s.state / "router" / "router.json").read_text())["pid"]
            shutil.rmtree(s.state)
            times["state dir deleted → healthz 503"].append(
                until(lambda: s.http.get("/healthz").status_code == 503)
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(router, signal.SIGTERM)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-mistakes-") as tmp:
        times = run(Path(tmp), args.runs)
    print(f"\n{args.runs} runs each, seconds from the user's action to the outcome\n")
    print("| case | median | min | max |")
    print("|---|---|---|---|")
    for case, values in times.items():
        print(
            f"| {case} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        )


if __name__ == "__main__":
    main()
