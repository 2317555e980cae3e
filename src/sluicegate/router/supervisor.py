"""Run the router as its own process for a control plane, and find it again after a restart.

The router must outlive the control plane (an ALB does not go down when CodeDeploy does), so
it runs in its own session and its identity is written to ``<state_dir>/router/router.json``
(pid, the pid's start time — to tell a reused pid from ours — and the admin address). On
start the supervisor adopts a live router it finds there, or starts one. Secrets (admin
token, cookie key) live in files readable only by the owner, so a restarted control plane
can talk to the router it left running and cookies survive restarts of either.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sluicegate._private import open_append
from sluicegate.errors import ConflictError, RouterUnavailableError
from sluicegate.router.client import RouterClient

__all__ = ["RouterProcessInfo", "RouterSupervisor", "process_start_time"]

log = logging.getLogger(__name__)


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class RouterProcessInfo:
    pid: int
    start_time: int
    admin_url: str
    admin_port: int


def _secret_file(path: Path) -> str:
    """Read a secret, making it (0600) on first use."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _said(log_file: Path) -> str:
    """``: <message>`` of the last ``sluice: error:`` line in the router's log, or ``""``."""
    try:
        with open(log_file, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    said = [ln for ln in tail.splitlines() if ln.startswith("sluice: error: ")]
    return f": {said[-1].removeprefix('sluice: error: ')}" if said else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RouterSupervisor:
    """Start or adopt the control plane's router; restart it if it dies."""

    def __init__(self, state_dir: Path, admin_port: int | None = None, workers: int = 1) -> None:
        self.dir = Path(state_dir) / "router"
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.token = _secret_file(self.dir / "admin.token")
        self.sticky_secret = _secret_file(self.dir / "sticky.secret")
        self.admin_port = admin_port
        self.workers = workers
        self.info: RouterProcessInfo | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.adopted = False
        self._client = RouterClient(None, self.token)

    def client(self) -> RouterClient:
        """The one handle on the router for the supervisor's whole life: the same object
        before and after a restart (it follows the router to its new address), so whoever
        was given it keeps using it. Closed by :meth:`aclose`."""
        return self._client

    async def aclose(self) -> None:
        """Close the handle; the router process keeps running."""
        await self._client.aclose()
        self._let_go()

    def _let_go(self) -> None:
        """Drop our Popen of the router: reap it if it died, else leave it running (it
        outlives us by design, in its own session) without Popen warning that it runs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.returncode = 0  # not ours to wait for any more

    async def ensure(self) -> RouterProcessInfo:
        """Adopt the recorded router if it is alive and answers, else start a new one."""
        info = self._recorded()
        if info is not None and process_start_time(info.pid) == info.start_time:
            async with RouterClient(info.admin_url, self.token, timeout=2) as c:
                if await c.healthy():
                    log.info("adopted the running router (pid %d)", info.pid)
                    self.info, self.adopted = info, True
                    self._client.retarget(info.admin_url)
                    return info
            log.warning("recorded router pid %d does not answer; starting a new one", info.pid)
        self.refuse_strays(info)
        self.info = await self._start()
        self.adopted = False
        self._client.retarget(self.info.admin_url)
        return self.info

    def refuse_strays(self, recorded: RouterProcessInfo | None = None) -> None:
        """ConflictError when a router of this state dir runs that it has no record of (the
        state dir was deleted under a running server): starting another would leave that
        one serving unmanaged."""
        if recorded is None:
            recorded = self._recorded()
        strays = [pid for pid in self.strays() if recorded is None or pid != recorded.pid]
        if strays:
            pids = ", ".join(map(str, strays))
            raise ConflictError(
                f"a router started from {self.dir} is still running (pid {pids}) but the "
                "state dir has no record of it (was the state dir deleted?); stop it (kill "
                f"{' '.join(map(str, strays))}) or restore the state dir, then start again"
            )

    def strays(self) -> list[int]:
        """Pids of routers running with this state dir's config file (Linux ``/proc``)."""
        config = os.path.abspath(self.dir / "router.yaml")
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0")]
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if "router" not in argv or "--config" not in argv[:-1]:
                continue
            path = argv[argv.index("--config") + 1]
            if os.path.normpath(os.path.join(cwd, path)) == config:
                found.append(int(entry))
        return found

    def _recorded(self) -> RouterProcessInfo | None:
        try:
            data = json.loads((self.dir / "router.json").read_text())
            return RouterProcessInfo(
                int(data["pid"]),
                int(data["start_time"]),
                str(data["admin_url"]),
                int(data["admin_port"]),
            )
        except (OSError, ValueError, KeyError):
            return None

    async def _start(self) -> RouterProcessInfo:
        port = self.admin_port or _free_port()
        config = self.dir / "router.yaml"
        config.write_text(json.dumps({"admin": {"port": port}}))  # JSON is YAML
        env = {
            **os.environ,
            "SLUICE_ADMIN_TOKEN": self.token,
            "SLUICE_STICKY_SECRET": self.sticky_secret,
        }
        log_file = open(open_append(self.dir / "router.log"), "ab")  # noqa: SIM115 - to the child
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sluicegate",
                    "router",
                    "--config",
                    os.path.abspath(config),
                    "--workers",
                    str(self.workers),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
                start_new_session=True,
            )
        finally:
            log_file.close()
        self._let_go()  # a router that died before this one
        self._proc = proc
        start_time = process_start_time(proc.pid)
        info = RouterProcessInfo(proc.pid, start_time or 0, f"http://127.0.0.1:{port}", port)
        async with RouterClient(info.admin_url, self.token, timeout=1) as c:
            for _ in range(150):
                if proc.poll() is not None:
                    raise RouterUnavailableError(
                        f"the router exited with {proc.returncode}"
                        f"{_said(self.dir / 'router.log')}; see {self.dir}/router.log"
                    )
                if await c.healthy():
                    break
                await asyncio.sleep(0.1)
            else:
                raise RouterUnavailableError(f"the router did not start; see {self.dir}/router.log")
        tmp = self.dir / "router.json.tmp"
        tmp.write_text(json.dumps(info.__dict__))
        os.replace(tmp, self.dir / "router.json")
        log.info("started the router (pid %d, admin %s)", info.pid, info.admin_url)
        return info

    def alive(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            return False  # our child exited (and is reaped now)
        return self.info is not None and process_start_time(self.info.pid) == self.info.start_time

    def stop(self) -> None:
        """Stop the router for good (``sluice server --stop-router``, tests)."""
        if self.info is not None and self.alive():
            os.kill(self.info.pid, signal.SIGTERM)
            if self._proc is not None:
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
        (self.dir / "router.json").unlink(missing_ok=True)
