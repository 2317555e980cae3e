#!/usr/bin/env python3
"""Does a flood on the router's admin port slow the data plane? (issue "Hardening", item 6)

Starts the sample app and a one-worker router in front of it, then measures data-plane
latency (sequential keep-alive GETs on one connection) for ``--seconds`` while each of these
runs against the admin port from a separate process (so the flood never shares this
process's GIL with the measuring client):

- ``none``: no flood, the baseline measured in the same run;
- ``url``: an endless request line, written as fast as the router takes it and started
  again on a new connection whenever the router cuts one (at most ``--flood-mb`` MB per
  connection: 100 MB is what once moved the data plane's p50 from 4 ms to 9 s);
- ``header``: an endless header value, the same way;
- ``body``: a PUT without a token announcing and sending a body of ``--flood-mb`` MB;
- ``idle``: ``--idle-connections`` connections that send half a request and wait;
- ``url→sink``: the ``url`` flood aimed at a separate process that reads 8 KiB and hangs
  up as the router does, not at the router: the control row. What it costs the data plane
  is the flood's cost to the machine (2 cores here), not the router's.

Every flood lasts the whole measurement. Prints one row per flood: data-plane p50/p99 and
their ratio to the baseline, requests measured, the MB and connections the flood pushed
(bytes the kernel took, not necessarily the router) and connects that failed.
Run from the repository root:  .venv/bin/python bench/admin_flood.py [--seconds 5]
Never asserts: the numbers are for people.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
FLOODS = ("none", "url", "header", "body", "idle", "url→sink")
CHUNK = b"a" * 65536


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} in {timeout}s")


# -- the flood (runs in a child process: `admin_flood.py --flood KIND PORT SECONDS MB N`) ----


def flood(kind: str, port: int, seconds: float, megabytes: int, idle: int) -> None:
    """Send ``kind`` of abuse to 127.0.0.1:port until ``seconds`` pass; print stats."""
    end = time.monotonic() + seconds
    budget = megabytes << 20  # per connection
    sent = connections = refused = 0
    if kind == "idle":
        held = []
        for _ in range(idle):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
                connections += 1
            except OSError:
                refused += 1
        while time.monotonic() < end:
            time.sleep(0.1)
        for s in held:
            s.close()
        print(f"{sent} {connections} {refused}")
        return
    if kind == "url":
        start = b"GET /"
    elif kind == "header":
        start = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Flood: "
    else:
        start = b"PUT /v1/config HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % budget
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            refused += 1
            time.sleep(0.01)
            continue
        connections += 1
        with s:
            try:
                s.sendall(start)
                mine = 0
                while time.monotonic() < end and mine < budget:
                    s.sendall(CHUNK)
                    sent += len(CHUNK)
                    mine += len(CHUNK)
            except OSError:
                pass  # cut by the router: connect again
    print(f"{sent} {connections} {refused}")


def sink(port: int) -> None:
    """The control target: read up to 8 KiB of each connection, then hang up."""
    import asyncio

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            await reader.read(8192)
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- the measurement --------------------------------------------------------------------------


def measure(port: int, seconds: float) -> list[float]:
    """Latencies (ms) of sequential GETs over one keep-alive connection."""
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    out: list[float] = []
    end = time.monotonic() + seconds
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    with sock:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            sock.sendall(request)
            buf = b""
            while True:
                buf += sock.recv(65536)
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(body) >= length:
                        break
            out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="per flood (default 5)")
    ap.add_argument(
        "--flood-mb", type=int, default=100, help="MB a flood sends per connection at most"
    )
    ap.add_argument("--idle-connections", type=int, default=500)
    ap.add_argument("--flood", nargs=5, metavar=("KIND", "PORT", "S", "MB", "N"), help="internal")
    ap.add_argument("--sink", type=int, metavar="PORT", help="internal")
    args = ap.parse_args()
    if args.sink:
        sink(args.sink)
        return
    if args.flood:
        kind, port, seconds, mb, n = args.flood
        flood(kind, int(port), float(seconds), int(mb), int(n))
        return

    tmp = Path(tempfile.mkdtemp(prefix="sluice-admin-flood-"))
    app_port, web_port, admin_port, sink_port = free_port(), free_port(), free_port(), free_port()
    config = tmp / "router.yaml"
    config.write_text(
        f"""listeners:
  - name: web
    port: {web_port}
    default: {{forward: [{{target_group: app}}]}}
target_groups:
  - name: app
    targets: ["127.0.0.1:{app_port}"]
    health_check: {{path: /healthz, interval: 1s, timeout: 1s}}
admin: {{port: {admin_port}}}
"""
    )
    env = {**os.environ, "SLUICE_ADMIN_TOKEN": TOKEN, "SLUICE_STICKY_SECRET": "bench"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        app = subprocess.Popen(
            [sys.executable, str(REPO / "examples" / "app.py"), "--port", str(app_port)],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "app.log", "wb"),  # noqa: SIM115 - closed with the process
        )
        procs.append(app)
        wait_port(app_port, app, "sample app")
        router = subprocess.Popen(
            [sys.executable, "-m", "sluicegate", "router", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "router.log", "wb"),  # noqa: SIM115 - closed with the process
            env=env,
            cwd=REPO,
        )
        procs.append(router)
        wait_port(admin_port, router, "router")
        wait_port(web_port, router, "router listener")
        sinker = subprocess.Popen([sys.executable, __file__, "--sink", str(sink_port)])
        procs.append(sinker)
        wait_port(sink_port, sinker, "sink")
        measure(web_port, 1.0)  # warm up: pools, caches

        rows = []
        for kind in FLOODS:
            flooder = None
            if kind != "none":
                flooder = subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--flood",
                        kind.split("→")[0],
                        str(sink_port if kind.endswith("sink") else admin_port),
                        str(args.seconds + 0.5),
                        str(args.flood_mb),
                        str(args.idle_connections),
                    ],
                    stdout=subprocess.PIPE,
                )
                time.sleep(0.5)  # the flood is under way before the first measurement
            rss_before, cpu_before, t0 = rss_kib(router.pid), cpu_seconds(router.pid), time.time()
            lat = measure(web_port, args.seconds)
            rss_after = rss_kib(router.pid)
            router_cpu = (cpu_seconds(router.pid) - cpu_before) / (time.time() - t0)
            stats = "0 0 0"
            if flooder is not None:
                out, _ = flooder.communicate(timeout=args.seconds + 60)
                stats = out.decode().strip() or "0 0 0"
            sent, conns, refused = (int(x) for x in stats.split())
            rows.append((kind, lat, sent, conns, refused, rss_after - rss_before, router_cpu))
            if router.poll() is not None:
                raise SystemExit(f"the router died during the {kind} flood")
            time.sleep(1.0)  # let the router settle between floods
        base_p50 = statistics.median(rows[0][1])
        base_p99 = pct(rows[0][1], 0.99)
        print(
            f"\nadmin flood vs data plane: one worker, sample app backend, {args.seconds:g} s each"
        )
        print(
            "| flood | requests | p50 ms | p99 ms | p50 × base | p99 × base "
            "| flood MB pushed | flood conns | connect errors | router CPU | router RSS Δ MiB |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind, lat, sent, conns, refused, drss, cpu in rows:
            p50, p99 = statistics.median(lat), pct(lat, 0.99)
            print(
                f"| {kind} | {len(lat)} | {p50:.2f} | {p99:.2f} | {p50 / base_p50:.1f} "
                f"| {p99 / base_p99:.1f} | {sent / 2**20:.0f} | {conns} | {refused} "
                f"| {cpu:.0%} | {drss / 1024:+.1f} |"
            )
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (from /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
