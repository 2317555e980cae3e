#!/usr/bin/env python3
"""The deployment demo (second half of ``make demo``): a good canary, then a bad one undone.

Starts ``sluice server`` on a temporary state dir, declares the sample service from
examples/shop.yaml (ports swapped for free ones), deploys v1, then deploys v2 with a fast
canary (10 % → 50 % → 100 %) while steady traffic runs, and shows the live view, the share
of v2 the users saw over time, and that not one request failed. Then it deploys v3, which
fails 30 % of its requests, with Canary10Percent5Minutes: the default guards (green against
blue, every second) roll it back by themselves; the demo prints the blast radius. Everything
is stopped at the end, on failure and on Ctrl-C too (``sluice server`` leaves the router and
replicas running by design; the demo stops them, see examples/_cleanup.py).

With ``--containers`` (``make demo-containers``) the same story runs with every revision as
containers: the demo starts a Podman API service of its own, builds the shop image locally
(examples/_containers.py) and points ``sluice server --container-host`` at it.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml
from _cleanup import DEMO_VAR, new_run_id, stop_marked  # beside this script
from _containers import Podman, container_compute
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
console = Console()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.state = workdir / "state"
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.token = ""
        self.server: subprocess.Popen[str] | None = None
        # The server and everything it starts (router, replicas, hooks) carry this marker.
        self.run_id = new_run_id()
        self.server_args: list[str] = []

    def start_server(self) -> None:
        console.print(f"[bold]sluice server[/] --state-dir {self.state} --port {self.api_port}")
        log = self.workdir / "server.log"
        with open(log, "w") as err:
            self.server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sluicegate",
                    "server",
                    "--state-dir",
                    str(self.state),
                    "--port",
                    str(self.api_port),
                    *self.server_args,
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, DEMO_VAR: self.run_id},
            )
        assert self.server.stdout is not None
        for line in self.server.stdout:
            if m := re.search(r"admin token .*: (\S+)", line):
                self.token = m.group(1)
                console.print("  admin token printed on first start (only its hash is kept)")
            if "ready on" in line:
                break
        else:
            raise RuntimeError(
                f"sluice server exited with {self.server.wait()} before it was "
                f"ready; its log:\n{log.read_text(errors='replace')[-3000:]}"
            )
        threading.Thread(target=self.server.stdout.read, daemon=True).start()

    def sluice(self, *args: str) -> str:
        env = {**os.environ, "SLUICE_URL": self.url, "SLUICE_TOKEN": self.token}
        console.print(f"[bold]$ sluice {' '.join(args)}[/]")
        out = subprocess.run(
            [sys.executable, "-m", "sluicegate", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr or out.stdout)
        return out.stdout

    def wait(self, dep: str, phases: set[str], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = httpx.get(
                f"{self.url}/v1/deployments/{dep}",
                headers={"Authorization": f"Bearer {self.token}"},
            )
            phase: str = r.json()["phase"]
            if phase in phases:
                return phase
            time.sleep(0.3)
        raise RuntimeError(f"deployment {dep} did not reach {phases}")

    def stop(self) -> None:
        """Stop the server first (so it restarts nothing), then its router and replicas."""
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        count = stop_marked(self.run_id)
        console.print(
            f"stopped the server and the {count} processes it started "
            f"(router, replicas; logs in {self.workdir})"
        )


def traffic(
    port: int, stop: threading.Event, seen: list[tuple[float, str]], origin: float = 0.0
) -> None:
    """40 users, each with its own cookie jar (so each sticks to its version), asking every
    ~50 ms; each round 4 of them leave and 4 new users arrive, so a canary meets new users.
    Answers are stamped in seconds since the start, or since ``origin`` (a wall time)."""
    clients = [httpx.Client(timeout=5) for _ in range(40)]
    start = time.monotonic() - (time.time() - origin if origin else 0.0)
    rounds = 0
    while not stop.is_set():
        for c in clients:
            try:
                r = c.get(f"http://127.0.0.1:{port}/")
                seen.append(
                    (
                        time.monotonic() - start,
                        r.headers.get("x-version", "?")
                        if r.status_code == 200
                        else str(r.status_code),
                    )
                )
            except httpx.HTTPError as exc:
                seen.append((time.monotonic() - start, f"error {type(exc).__name__}"))
        rounds += 1
        for i in range(4):
            slot = (rounds * 4 + i) % len(clients)
            clients[slot].close()
            clients[slot] = httpx.Client(timeout=5)
        time.sleep(0.05)


def bad_release(demo: Demo, port: int) -> bool:
    """v3 answers 500 to 30 % of requests; the default guards must undo it by themselves."""
    console.rule("a bad release")
    stop, seen = threading.Event(), list[tuple[float, str]]()
    origin = time.time()  # answers stamped on the wall clock, to compare with the server's events
    load = threading.Thread(target=traffic, args=(port, stop, seen, origin), daemon=True)
    load.start()
    time.sleep(1.0)
    out = demo.sluice(
        "deploy",
        "shop",
        "--revision",
        "v3",
        "--set",
        "env.SHOP_FAIL_PERCENT=30",
        "--config",
        "Canary10Percent5Minutes",
    )
    dep = re.search(r"deployment (\S+):", out)
    assert dep
    console.print("v3 fails 30 % of its requests; the plan would give it 10 % for 5 minutes")
    phase = demo.wait(dep.group(1), {"rolled_back", "succeeded", "failed"}, timeout=330)
    time.sleep(1.0)
    stop.set()
    load.join(10)
    r = httpx.get(
        f"{demo.url}/v1/deployments/{dep.group(1)}",
        headers={"Authorization": f"Bearer {demo.token}"},
    ).json()
    failures = [t for t, v in seen if v == "500"]
    served_by_v3 = sum(1 for _, v in seen if v == "v3") + len(failures)
    rolled_back_at = next(
        (e["at"] for e in r["events"] if e["kind"] == "deployment.rolled_back"), None
    )
    table = Table("", "value", title="blast radius of the bad release")
    table.add_row("outcome", phase)
    table.add_row("why", str(r["state"].get("reason")))
    table.add_row("requests during the test", str(len(seen)))
    table.add_row("answered by v3", str(served_by_v3))
    table.add_row("failed (500)", str(len(failures)))
    restored_at = next(
        (e["at"] for e in r["events"] if e["kind"] == "deployment.traffic_restored"), None
    )
    if failures and restored_at is not None:
        table.add_row(
            "first failed request → all traffic back on v2",
            f"{restored_at - (origin + failures[0]):.2f} s",
        )
    if failures and rolled_back_at is not None:
        created = r["created_at"]
        table.add_row("deployment start → rollback done", f"{rolled_back_at - created:.1f} s")
    console.print(table)
    # After the rollback (the last second of traffic, recorded once it was done), users
    # reach only v2 again.
    end = seen[-1][0] if seen else 0.0
    after = {v for t, v in seen if t > end - 0.8}
    ok = phase == "rolled_back" and after <= {"v2"}
    console.print(
        "[green]bad release caught and undone automatically[/]"
        if ok
        else "[red]the bad release was not rolled back[/]"
    )
    return ok


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sluice-deploy-demo-"))
    demo = Demo(workdir)
    port, test_port = free_port(), free_port()
    spec = yaml.safe_load((HERE / "shop.yaml").read_text())
    spec["listener"] = {"port": port, "test_port": test_port}
    spec["compute"]["local"]["command"][:2] = [sys.executable, str(HERE / "app.py")]
    podman = Podman(workdir) if "--containers" in sys.argv[1:] else None
    if podman is not None:
        spec["compute"] = container_compute()
        demo.server_args = ["--container-host", podman.url]
    spec_path = workdir / "shop.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    ok, code = False, 1
    # SIGTERM (from make or CI) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if podman is not None:
            console.print(f"[bold]podman system service[/] {podman.url}; building the image")
            podman.start()
            podman.build(("v1", "v2", "v3"))
        demo.start_server()
        console.print(demo.sluice("apply", "-f", str(spec_path)).strip())
        out = demo.sluice("deploy", "shop", "--revision", "v1")
        first = re.search(r"deployment (\S+):", out)
        assert first
        demo.wait(first.group(1), {"succeeded"})
        console.print(f"v1 serves on 127.0.0.1:{port}\n")

        stop, seen = threading.Event(), list[tuple[float, str]]()
        load = threading.Thread(target=traffic, args=(port, stop, seen), daemon=True)
        load.start()
        time.sleep(1.0)  # users arrive and settle on v1 before the canary starts
        env = {**os.environ, "SLUICE_URL": demo.url, "SLUICE_TOKEN": demo.token}
        console.print("[bold]$ sluice deploy shop --revision v2 --watch[/]")
        subprocess.run(
            [sys.executable, "-m", "sluicegate", "deploy", "shop", "--revision", "v2", "--watch"],
            env=env,
            check=True,
        )
        stop.set()
        load.join(10)

        table = Table("seconds", "requests", "v1", "v2", "failed", title="what users saw")
        buckets: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for t, version in seen:
            buckets[int(t // 2) * 2][version] += 1
        failed = 0
        for t, counts in sorted(buckets.items()):
            bad = sum(n for v, n in counts.items() if v not in ("v1", "v2"))
            failed += bad
            total = sum(counts.values())
            table.add_row(
                f"{t}-{t + 2}",
                str(total),
                f"{counts['v1'] * 100 // total}%",
                f"{counts['v2'] * 100 // total}%",
                str(bad),
            )
        console.print()
        console.print(table)
        status = demo.sluice("status", "shop")
        console.print(status)
        ok = failed == 0 and "revision v2" in status
        console.print(
            "[green]deployment demo OK: v2 rolled out with no failed request[/]"
            if ok
            else f"[red]deployment demo: {failed} failed requests[/]"
        )
        ok = bad_release(demo, port) and ok
        code = 0 if ok else 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; stopping everything[/]")
        code = 130
    except (RuntimeError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
        console.print(f"[red]deployment demo failed:[/] {exc}")
    finally:
        # A second Ctrl-C must not leave half of it running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop()
        if podman is not None:
            console.print(f"removed {podman.stop()} containers and stopped the podman service")
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
