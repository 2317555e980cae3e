"""Helpers for integration tests: start the sample app and the router as real processes.

Everything listens on 127.0.0.1. Processes are started with ``sys.executable`` and their
output goes to temp files, so a test failure can show what the process said.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
import yaml

from sluicegate.spec import parse_duration

__all__ = [
    "APP_PATH",
    "REPO_ROOT",
    "AppProcess",
    "ProcessStartError",
    "RouterProcess",
    "free_port",
    "require",
    "require_binary",
    "router_config",
    "rss_kib",
    "start_app",
    "start_router",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = REPO_ROOT / "examples" / "app.py"


class ProcessStartError(RuntimeError):
    """A helper process did not become ready; the message includes its output."""


def free_port() -> int:
    """A port that was free a moment ago (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux, from /proc/PID/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def require_binary(name: str, package: str | None = None) -> str:
    """Path of a Debian binary (haproxy, nginx, wrk...); skip the test when it is missing.

    ``package`` is the Debian package providing it when its name differs (node: nodejs).
    With ``SLUICEGATE_REQUIRE_ALL=1`` (set by .ci/run) a missing binary fails the test.
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")
    if path:
        return path
    require(False, f"{name} is not installed (apt-get install {package or name})")
    raise AssertionError("unreachable")  # require() skipped or failed


def require(condition: bool, reason: str) -> None:
    """Skip the test with ``reason`` unless ``condition``; with ``SLUICEGATE_REQUIRE_ALL=1``
    (set by .ci/run) fail it instead, so CI never passes by skipping."""
    if condition:
        return
    if os.environ.get("SLUICEGATE_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason}; SLUICEGATE_REQUIRE_ALL=1 requires it", pytrace=False)
    pytest.skip(reason)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class _Managed:
    """Shared base: a subprocess whose stdout/stderr go to temp files."""

    proc: subprocess.Popen[bytes]
    _dir: Path
    stop_timeout = 5.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self) -> str:
        """What the process wrote to stderr so far."""
        return _tail(self._dir / "stderr", limit=1 << 20)

    def stdout(self) -> str:
        return _tail(self._dir / "stdout", limit=1 << 20)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after ``stop_timeout`` seconds; returns the exit code."""
        return _terminate(self.proc, self.stop_timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class AppProcess(_Managed):
    """The sample app (examples/app.py) running as a subprocess."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.proc, self.port, self._dir = proc, port, workdir
        self.url = f"http://127.0.0.1:{port}"
        self.address = f"127.0.0.1:{port}"  # as a router target

    def _admin(self, method: str, path: str) -> httpx.Response:
        r = httpx.request(method, self.url + path, timeout=10)
        r.raise_for_status()
        return r

    def stats(self) -> dict[str, Any]:
        """``{"requests": N, "by_path": {...}, "in_flight": n, ...}`` (admin calls not counted).

        /healthz is counted too, so behind a health-checking router prefer ``by_path``.
        """
        data: dict[str, Any] = self._admin("GET", "/admin/stats").json()
        return data

    def reset(self) -> None:
        self._admin("POST", "/admin/reset")

    def set_health(self, status: int) -> None:
        """What GET /healthz answers from now on (200 = healthy)."""
        self._admin("POST", f"/admin/health?status={status}")

    def set_fail(self, status: int) -> None:
        """Every non-admin, non-healthz request answers ``status``; 0 switches it off."""
        self._admin("POST", f"/admin/fail?status={status}")

    def rss_kib(self) -> int:
        return rss_kib(self.pid)


def start_app(
    port: int | None = None,
    version: str | None = "v1",
    name: str | None = None,
    *,
    timeout: float = 10.0,
    env: dict[str, str] | None = None,
) -> AppProcess:
    """Start examples/app.py and wait for its ``ready <port>`` line.

    ``port=None`` lets the app bind port 0 and reads the real port back (no race).
    ``version=None`` leaves the version to the app (env SHOP_VERSION, else "v1").
    """
    workdir = Path(tempfile.mkdtemp(prefix="sluice-app-"))
    cmd = [sys.executable, str(APP_PATH), "--port", str(port or 0)]
    if version is not None:
        cmd += ["--version", version]
    if name:
        cmd += ["--name", name]
    with open(workdir / "stdout", "wb") as out, open(workdir / "stderr", "wb") as err:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}
        )
    deadline = time.monotonic() + timeout
    while True:
        for line in (workdir / "stdout").read_text(errors="replace").splitlines():
            if line.startswith("ready "):
                return AppProcess(proc, int(line.split()[1]), workdir)
        code = proc.poll()
        if code is not None or time.monotonic() > deadline:
            if code is None:
                _terminate(proc, 2)
            what = f"exited with {code}" if code is not None else f"not ready after {timeout}s"
            raise ProcessStartError(
                f"sample app {' '.join(cmd)} {what}\n"
                f"--- stdout ---\n{_tail(workdir / 'stdout')}\n"
                f"--- stderr ---\n{_tail(workdir / 'stderr')}"
            )
        time.sleep(0.02)


class RouterProcess(_Managed):
    """``python -m sluicegate router`` running as a subprocess."""

    stop_timeout = 10.0

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        config: dict[str, Any],
        config_path: Path,
        token: str,
        workdir: Path,
    ) -> None:
        self.proc, self.config, self.config_path, self._dir = proc, config, config_path, workdir
        self.token = token
        admin = config.get("admin", {})
        self.admin_port = int(admin["port"])
        self.admin_url = f"http://{_connect_host(admin.get('address'))}:{self.admin_port}"

    def listener_url(self, name: str = "web") -> str:
        for lst in self.config["listeners"]:
            if lst["name"] == name:
                return f"http://{_connect_host(lst.get('address'))}:{lst['port']}"
        raise KeyError(f"no listener {name!r} in the router config")

    def listener_port(self, name: str = "web") -> int:
        return int(next(x["port"] for x in self.config["listeners"] if x["name"] == name))

    def admin(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """Call the admin API with ``Authorization: Bearer <token>``; no raise on errors."""
        auth = self.token if token is None else token
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        return httpx.request(
            method, self.admin_url + path, json=json, headers=headers, timeout=timeout
        )

    def write_config(self, config: dict[str, Any]) -> None:
        """Rewrite the config file (for reload tests); the router is not signalled."""
        self.config = config
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def _connect_host(address: str | None) -> str:
    if not address or address in ("0.0.0.0", "localhost"):
        return "127.0.0.1"
    if address == "::":
        return "[::1]"
    return f"[{address}]" if ":" in address else address


def start_router(
    config: dict[str, Any],
    workers: int = 1,
    insecure: bool = False,
    token: str = "test-token",
    *,
    timeout: float = 15.0,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> RouterProcess:
    """Write ``config`` as YAML, start the router on it and wait for admin GET /healthz = 200.

    ``config["admin"]["port"]`` is filled with a free port when missing. The admin token
    goes in the env variable named by ``admin.token_env`` (default SLUICE_ADMIN_TOKEN);
    SLUICE_STICKY_SECRET is ``test-sticky-secret``.
    """
    config = {**config, "admin": {**config.get("admin", {})}}
    config["admin"].setdefault("port", free_port())
    workdir = Path(tempfile.mkdtemp(prefix="sluice-router-"))
    path = workdir / "router.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "sluicegate", "router", "--config", str(path)]
    cmd += ["--workers", str(workers), *(["--insecure"] if insecure else []), *(extra_args or [])]
    token_env = config["admin"].get("token_env", "SLUICE_ADMIN_TOKEN")
    secret_env = config.get("sticky_secret_env", "SLUICE_STICKY_SECRET")
    full_env = {**os.environ, token_env: token, secret_env: "test-sticky-secret", **(env or {})}
    with open(workdir / "stdout", "wb") as out, open(workdir / "stderr", "wb") as err:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=full_env, cwd=REPO_ROOT
        )
    router = RouterProcess(proc, config, path, token, workdir)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        code = proc.poll()
        if code is None:
            try:
                r = httpx.get(router.admin_url + "/healthz", timeout=1)
                if r.status_code == 200:
                    return router
                last = f"GET /healthz answered {r.status_code}"
            except httpx.HTTPError as exc:
                last = f"GET /healthz failed: {exc!r}"
        if code is not None or time.monotonic() > deadline:
            if code is None:
                _terminate(proc, 2)
            what = f"exited with {code}" if code is not None else f"not ready after {timeout}s"
            raise ProcessStartError(
                f"router {' '.join(cmd)} {what} ({last})\nconfig:\n{path.read_text()}"
                f"--- stderr ---\n{_tail(workdir / 'stderr')}\n"
                f"--- stdout ---\n{_tail(workdir / 'stdout')}"
            )
        time.sleep(0.05)


def router_config(
    groups: dict[str, list[str | AppProcess]],
    forward: dict[str, int] | None = None,
    *,
    sticky: bool | str = False,
    rules: list[dict[str, Any]] | None = None,
    health_path: str = "/healthz",
    interval: str = "1s",
    listener_port: int | None = None,
    admin_port: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A one-listener ("web") router config as a dict, for ``start_router``.

    ``groups`` maps target-group name to targets ("host:port" or AppProcess);
    ``forward`` maps group to weight for the default action (default: all groups, weight 1);
    ``sticky`` True or a duration string ("1h") enables stickiness on the default action;
    ``rules`` are listener rules as dicts; ``extra`` adds top-level keys (timeouts, limits...).
    """
    default: dict[str, Any] = {
        "forward": [
            {"target_group": g, "weight": w}
            for g, w in (forward or dict.fromkeys(groups, 1)).items()
        ]
    }
    if sticky:
        default["stickiness"] = {"enabled": True}
        if isinstance(sticky, str):
            default["stickiness"]["duration"] = sticky
    timeout = min(parse_duration(interval), 1.0)
    return {
        "listeners": [
            {
                "name": "web",
                "port": listener_port or free_port(),
                "rules": rules or [],
                "default": default,
            }
        ],
        "target_groups": [
            {
                "name": name,
                "targets": [t.address if isinstance(t, AppProcess) else t for t in targets],
                "health_check": {
                    "path": health_path,
                    "interval": interval,
                    "timeout": timeout,
                    "healthy_threshold": 2,
                    "unhealthy_threshold": 2,
                },
            }
            for name, targets in groups.items()
        ],
        "admin": {"port": admin_port or free_port()},
        **extra,
    }
