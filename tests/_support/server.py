"""`sluice server` as a subprocess for end-to-end tests, with CLI and API helpers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from sluicegate.compute._proc import is_same_process
from tests._support import REPO_ROOT, free_port
from tests._support.leakguard import kill_marked

# Every process a test server starts (router, replicas, hooks) inherits this, naming the
# server's state dir: ``stop_everything`` finds them by it, recorded or not.
SERVER_VAR = "SLUICEGATE_TEST_SERVER"


def server_marker(state: Path) -> str:
    """The ``SERVER_VAR`` value of the servers that keep their state in ``state``."""
    return hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:16]


class Server:
    def __init__(
        self, state: Path, port: int, args: Sequence[str] = (), global_args: Sequence[str] = ()
    ) -> None:
        self.state, self.port = state, port
        self.args = list(args)  # extra `sluice server` options, e.g. --no-default-guards
        self.global_args = list(global_args)  # `sluice` options before `server`: --log-json
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.token = ""
        self._reader: threading.Thread | None = None

    def release(self) -> None:
        """Close the pipe of a server process that has ended (its reader sees EOF first)."""
        if self.proc is None or self.proc.poll() is None or self.proc.stdout is None:
            return
        if self._reader is not None:
            self._reader.join(10)
        self.proc.stdout.close()

    def start(self) -> None:
        self.release()  # the pipe of the process this one replaces
        env = {**os.environ, SERVER_VAR: server_marker(self.state)}
        with open(self.state.parent / "server.err", "a") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sluicegate",
                    *self.global_args,
                    "server",
                    "--port",
                    str(self.port),
                    "--state-dir",
                    str(self.state),
                    *self.args,
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=REPO_ROOT,
                env=env,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            if m := re.search(r"admin token \(shown once.*\): (\S+)", line):
                self.token = m.group(1)
            if "ready on" in line:
                break
            assert time.monotonic() < deadline, "sluice server: not ready after 30 s"
        else:
            said = (self.state.parent / "server.err").read_text(errors="replace")[-4000:]
            raise AssertionError(
                f"sluice server exited with {self.proc.wait(10)} before it "
                f"was ready; its stderr ends:\n{said}"
            )
        self._reader = threading.Thread(target=self.proc.stdout.read, daemon=True)
        self._reader.start()

    def stop(self) -> None:
        """SIGTERM the server if it runs, wait for it (SIGKILL after 10 s) and close its pipe."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.release()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.release()

    def cli(self, *args: str) -> str:
        env = {**os.environ, "SLUICE_URL": self.url, "SLUICE_TOKEN": self.token}
        out = subprocess.run(
            [sys.executable, "-m", "sluicegate", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
            check=False,
        )
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


@contextlib.contextmanager
def running_server(
    state: Path, args: Sequence[str] = (), global_args: Sequence[str] = ()
) -> Iterator[Server]:
    """A started ``sluice server`` on a free port; on exit it stops, and so does everything
    it started (router, replicas), as ``stop_everything``."""
    server = Server(state, free_port(), args, global_args)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            stop_everything(state)  # also what the server left behind, or a server that hung
            if server.proc:
                server.proc.wait(10)  # reap it
            server.release()


def stop_everything(state: Path) -> None:
    """The router and the replicas outlive the server by design: stop them for a test.

    Kills every process of a test ``Server`` on ``state`` (the server too, if it still runs)
    by its inherited ``SERVER_VAR``, including replicas it started but never recorded; then,
    for servers started otherwise, the router in router.json and the replicas in the db."""
    kill_marked(server_marker(state), SERVER_VAR)
    router_json = state / "router" / "router.json"
    if router_json.exists():
        with contextlib.suppress(ProcessLookupError, ValueError, KeyError):
            pid, start_time = (json.loads(router_json.read_text())[k]
                               for k in ("pid", "start_time"))  # fmt: skip
            if is_same_process(int(pid), int(start_time)):
                os.killpg(int(pid), signal.SIGKILL)
    _stop_replicas(state / "sluicegate.db")


def _stop_replicas(db: Path) -> None:
    """Kill the replicas the server recorded (their command lines do not name the state dir,
    so ``pkill -f`` misses them); a recorded pid is killed only while it is the same process."""
    if not db.exists():
        return
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        rows = conn.execute(
            "SELECT pid, pid_start_time FROM replicas"
            " WHERE pid IS NOT NULL AND pid_start_time IS NOT NULL"
        ).fetchall()
    for pid, start_time in rows:
        if is_same_process(int(pid), int(start_time)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)
