#!/usr/bin/env python3
"""The Sluicegate demo (``make demo``): a 90/10 canary split with sticky users, measured.

Starts three sample apps (v1 "blue-1" and "blue-2", v2 "green-1") and the router from
examples/router.yaml, sends traffic as many independent users (each with its own cookie
jar), and shows how requests and users were split, that no user switched versions, the
router's own per-target-group metrics, and that ``x-canary: always`` reaches v2.
Ports from router.yaml that are busy are replaced by free ones (a temp copy of the config).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"
CONFIG = HERE / "router.yaml"
console = Console()


class DemoError(Exception):
    pass


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(port: int, what: str, taken: set[int]) -> int:
    if port not in taken and port_free(port):
        taken.add(port)
        return port
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            new = int(s.getsockname()[1])
        if new not in taken:
            taken.add(new)
            console.print(f"[yellow]port {port} ({what}) is busy; using {new} instead[/]")
            return new


class Proc:
    """A child process with its output in a temp file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, cmd: list[str], workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **env}, start_new_session=True,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def failed(self, why: str) -> DemoError:
        return DemoError(f"{self.name} {why}; its output:\n{self.output()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            console.print(f"[yellow]{self.name} did not stop in {timeout:.0f}s; killing it[/]")
            self.proc.kill()
            self.proc.wait()


def wait_until(proc: Proc, check: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.proc.poll() is not None:
            raise proc.failed(f"exited with code {proc.proc.returncode} before {what}")
        if time.monotonic() > deadline:
            raise proc.failed(f"was not {what} after {timeout:.0f}s")
        time.sleep(0.05)


def start_apps(config: dict[str, Any], workdir: Path, procs: list[Proc]) -> None:
    taken: set[int] = set()
    plan = {"blue": ("v1", ["blue-1", "blue-2"]), "green": ("v2", ["green-1"])}
    for group in config["target_groups"]:
        version, names = plan[group["name"]]
        targets = []
        for target, name in zip(group["targets"], names, strict=True):
            host, _, port = target.rpartition(":")
            port_no = pick_port(int(port), name, taken)
            targets.append(f"{host}:{port_no}")
            cmd = [sys.executable, str(APP), "--port", str(port_no), "--version", version]
            app = Proc(name, [*cmd, "--name", name], workdir, {})
            procs.append(app)
            wait_until(app, lambda a=app: "ready" in a.log.read_text(), "ready", 10)
            console.print(f"started {name} ({version}) on {host}:{port_no}")
        group["targets"] = targets
    for listener in config["listeners"]:
        listener["port"] = pick_port(listener["port"], f"listener {listener['name']}", taken)
    config["admin"]["port"] = pick_port(config["admin"]["port"], "router admin", taken)


class SharedPool(httpx.BaseTransport):
    """One connection pool for all simulated users; closing a user's client leaves it open."""

    def __init__(self, size: int) -> None:
        self.transport = httpx.HTTPTransport(limits=httpx.Limits(max_connections=size))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.transport.handle_request(request)

    def close(self) -> None:
        pass


def one_user(url: str, requests: int, pool: SharedPool) -> tuple[list[str], list[int]]:
    """One user with its own cookie jar: the versions and statuses it saw."""
    versions, statuses = [], []
    # Users share the connection pool (cheap) but each has its own cookies, like browsers.
    with httpx.Client(base_url=url, timeout=10, transport=pool) as client:
        for _ in range(requests):
            r = client.get("/")
            versions.append(r.headers.get("x-version", "?"))
            statuses.append(r.status_code)
    return versions, statuses


def simulate(url: str, users: int, requests: int, threads: int) -> list[list[str]]:
    seen: list[list[str]] = []
    bad = collections.Counter[int]()
    columns = (TextColumn("users"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    transport = SharedPool(threads)
    pool = ThreadPoolExecutor(threads)
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("users", total=users)
            futures = [pool.submit(one_user, url, requests, transport) for _ in range(users)]
            for fut in as_completed(futures):
                versions, statuses = fut.result()
                seen.append(versions)
                bad.update(s for s in statuses if not 200 <= s < 300)
                progress.advance(task)
    finally:  # on Ctrl-C or an error, don't wait for the users still queued
        pool.shutdown(wait=False, cancel_futures=True)
        transport.transport.close()
    if bad:
        console.print(f"[red]non-2xx answers: {dict(bad)}[/]")
    return seen


def configured_split(config: dict[str, Any]) -> dict[str, float]:
    versions = {"blue": "v1", "green": "v2"}
    forward = config["listeners"][0]["default"]["forward"]
    total = sum(g["weight"] for g in forward)
    return {versions[g["target_group"]]: 100 * g["weight"] / total for g in forward}


def report(config: dict[str, Any], seen: list[list[str]], admin: str, url: str) -> bool:
    ok = True
    want = configured_split(config)
    by_user = collections.Counter(v[0] for v in seen if len(set(v)) == 1)
    by_request = collections.Counter(x for v in seen for x in v)
    n_users, n_requests = len(seen), sum(by_request.values())
    table = Table(title="(a) traffic split: observed vs configured")
    for col in ("version", "users", "users %", "requests", "requests %", "configured %"):
        table.add_column(col, justify="right")
    for version in sorted(set(want) | set(by_request)):
        u, n = by_user[version], by_request[version]
        table.add_row(
            version, str(u), f"{100 * u / max(n_users, 1):.1f}", str(n),
            f"{100 * n / max(n_requests, 1):.1f}", f"{want.get(version, 0):.0f}",
        )  # fmt: skip
    console.print(table)

    mixed = [v for v in seen if len(set(v)) > 1]
    table = Table(title="(b) stickiness: users who saw more than one version")
    table.add_column("users")
    table.add_column("saw >1 version", justify="right")
    table.add_column("verdict")
    verdict = "[green]sticky ✓[/]" if not mixed else "[red]NOT sticky ✗[/]"
    table.add_row(str(n_users), str(len(mixed)), verdict)
    console.print(table)
    ok &= not mixed

    time.sleep(1.2)  # let the router close the current second so it is counted
    r = httpx.get(f"{admin}/v1/metrics", params={"window": 60}, timeout=10)
    if r.status_code != 200:
        console.print(f"[red](c) GET /v1/metrics answered {r.status_code}: {r.text[:300]}[/]")
        ok = False
    else:
        series = [s for s in r.json().get("series", []) if s.get("requests")]
        table = Table(title="(c) router metrics per target group (last 60 s)")
        table.add_column("metric")
        for s in series:
            table.add_column(f"{s.get('listener', '?')} → {s.get('target_group', '?')}",
                             justify="right")  # fmt: skip
        keys = [k for k in (series[0] if series else {}) if k not in ("listener", "target_group")]
        for k in keys:
            values = [s.get(k) for s in series]
            if not any(isinstance(v, list | dict) for v in values):  # skip per-second points
                table.add_row(k, *("-" if v is None else str(v) for v in values))
        console.print(table)

    r = httpx.get(f"{url}/", headers={"x-canary": "always"}, timeout=10)
    got = r.headers.get("x-version", "?")
    table = Table(title="(d) rule: header x-canary: always")
    for col in ("status", "X-Version", "X-Served-By", "expected", "verdict"):
        table.add_column(col)
    verdict = "[green]✓[/]" if got == "v2" else "[red]✗[/]"
    table.add_row(str(r.status_code), got, r.headers.get("x-served-by", "?"), "v2", verdict)
    console.print(table)
    return ok and got == "v2"


def run(args: argparse.Namespace, workdir: Path, procs: list[Proc]) -> bool:
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    start_apps(config, workdir, procs)
    config_path = workdir / "router.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    admin = f"http://127.0.0.1:{config['admin']['port']}"
    url = f"http://127.0.0.1:{config['listeners'][0]['port']}"
    env = {"SLUICE_ADMIN_TOKEN": secrets.token_urlsafe(16),
           "SLUICE_STICKY_SECRET": secrets.token_urlsafe(16)}  # fmt: skip
    cmd = [sys.executable, "-m", "sluicegate", "router", "--config", str(config_path)]
    router = Proc("router", [*cmd, "--insecure"], workdir, env)
    procs.append(router)

    def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            if httpx.get(f"{admin}/healthz", timeout=1).status_code != 200:
                return False
            groups = httpx.get(f"{admin}/v1/target-groups", timeout=1).json()
            return all(t["healthy"] for g in groups.values() for t in g["targets"].values())
        return False

    wait_until(router, healthy, "ready with all targets healthy", 20)
    console.print(f"router listening on {url} (admin {admin}, config {config_path})")
    console.print(
        f"simulating {args.users} users × {args.requests} requests, {args.threads} threads"
    )
    seen = simulate(url, args.users, args.requests, args.threads)
    return report(config, seen, admin, url)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--requests", type=int, default=10, help="requests per user")
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    procs: list[Proc] = []
    workdir = Path(tempfile.mkdtemp(prefix="sluice-demo-"))
    # SIGTERM (e.g. from make or CI) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    code = 1
    try:
        code = 0 if run(args, workdir, procs) else 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; stopping everything[/]")
        code = 130
    except (DemoError, httpx.HTTPError) as exc:
        console.print("demo failed:", style="red", end=" ")
        console.print(f"{type(exc).__name__}: {exc}", markup=False, highlight=False)
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(KeyboardInterrupt):
                proc.stop()
        if procs:
            console.print(f"stopped {len(procs)} processes (logs in {workdir})")
    if code == 0:
        console.print("[green]demo OK[/]")
    elif code == 1:
        console.print("[red]demo finished with failures (see above)[/]")
    return code


if __name__ == "__main__":
    sys.exit(main())
