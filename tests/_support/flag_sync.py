"""Start the flag sync server (tests._support.flag_sync_server) and ``sluice agent`` as real
processes; build snapshots."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from sluicegate.flags.snapshot import Rollout, Snapshot, snapshot_etag
from tests._support import REPO_ROOT, ProcessStartError, _Managed, _tail, _terminate, free_port

__all__ = ["AgentProcess", "SyncServer", "bool_flag_set", "make_snapshot", "start_agent"]


def bool_flag_set(
    key: str = "new-checkout",
    on_ids: tuple[str, ...] = (),
    percent: float = 0,
    default: str = "off",
) -> dict[str, Any]:
    """A one-flag set in normal form: users in ``on_ids`` get on, ``percent`` % split."""
    flag: dict[str, Any] = {
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "default_variant": default,
    }
    rules = []
    if on_ids:
        rules.append({"when": {"segment": "beta"}, "variant": "on"})
    flag["rules"] = rules
    if percent:
        flag["fallthrough"] = {
            "split": [
                {"variant": "on", "weight": percent},
                {"variant": "off", "weight": 100 - percent},
            ]
        }
    doc: dict[str, Any] = {"flags": {key: flag}}
    if on_ids:
        doc["segments"] = {"beta": {"ids": list(on_ids)}}
    return doc


def make_snapshot(
    version: int, document: dict[str, Any], env: str = "prod", rollout: dict[str, Any] | None = None
) -> Snapshot:
    """A snapshot; ``rollout`` = {"id", "percent", "from_document"} (from = version - 1)."""
    ro = None
    if rollout is not None:
        ro = Rollout(
            str(rollout["id"]),
            version - 1,
            version,
            float(rollout["percent"]),
            rollout["from_document"],
        )
    return Snapshot(env, version, snapshot_etag(version, ro), document, ro)


class SyncServer:
    def __init__(self, state: Path, heartbeat: float = 15.0) -> None:
        self.state = state
        self.heartbeat = heartbeat
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.admin = ""
        self.agent_keys: dict[str, str] = {}

    def start(self) -> SyncServer:
        log = self.state.parent / f"sync-server-{self.port}.log"
        out = self.state.parent / f"sync-server-{self.port}.out"
        with open(log, "ab") as err, open(out, "wb") as stdout:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests._support.flag_sync_server",
                    "--port",
                    str(self.port),
                    "--state",
                    str(self.state),
                    "--heartbeat",
                    str(self.heartbeat),
                ],
                stdout=stdout,
                stderr=err,
                cwd=REPO_ROOT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = out.read_text()
            found = dict(re.findall(r"^(\S+) (sgt_\S+)$", text, re.M))
            if len(found) == 4:
                self.token, self.admin = found["token"], found["admin"]
                self.agent_keys = {"prod": found["agent-prod"], "staging": found["agent-staging"]}
                with contextlib.suppress(httpx.HTTPError):  # not listening yet
                    httpx.get(f"{self.url}/docs", timeout=1)
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()  # not ready in time: it must not outlive the test that gives up on it
        raise ProcessStartError(f"sync server did not start:\n{_tail(log)}")

    def publish(self, snapshot: Snapshot) -> float:
        """Publish; returns time.monotonic() just before the request was sent."""
        sent = time.monotonic()
        r = httpx.put(
            f"{self.url}/test/snapshots",
            content=snapshot.to_json(),
            headers={"Authorization": f"Bearer {self.admin}"},
            timeout=10,
        )
        r.raise_for_status()
        return sent

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, 3)  # type: ignore[arg-type]


class AgentProcess(_Managed):
    def __init__(self, proc: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.proc, self.port, self._dir = proc, port, workdir
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=5)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kw)

    def stop(self) -> int:
        self.http.close()
        return super().stop()

    def ofrep(self, key: str, context: dict[str, Any]) -> httpx.Response:
        return self.post(f"/ofrep/v1/evaluate/flags/{key}", {"context": context})

    def value(self, key: str, user: str) -> Any:
        return self.ofrep(key, {"targetingKey": user}).json().get("value")

    def wait_for(self, predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):  # not answering yet: ask again
                if predicate():
                    return
            time.sleep(0.01)
        raise AssertionError(f"agent: {what} not reached in {timeout}s\n{self.logs()}")


def start_agent(
    server_url: str,
    key: str,
    cache_dir: Path,
    env: str = "prod",
    extra: list[str] | None = None,
    timeout: float = 15.0,
) -> AgentProcess:
    workdir = Path(tempfile.mkdtemp(prefix="sluice-agent-"))
    cmd = [
        sys.executable,
        "-m",
        "sluicegate",
        "--log-level",
        "info",
        "agent",
        "--server",
        server_url,
        "--env",
        env,
        "--key",
        key,
        "--port",
        "0",
        "--cache-dir",
        str(cache_dir),
        *(extra or []),
    ]
    with open(workdir / "stdout", "wb") as out, open(workdir / "stderr", "wb") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if m := re.search(r"http://127\.0\.0\.1:(\d+)", (workdir / "stdout").read_text()):
            return AgentProcess(proc, int(m.group(1)), workdir)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    _terminate(proc, 2)
    raise ProcessStartError(f"agent did not start:\n{_tail(workdir / 'stderr')}")
