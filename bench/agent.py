"""The agent's local API under wrk: OFREP evaluations vs. the agent's own /healthz.

    .venv/bin/python bench/agent.py [--duration 10] [--reps 3] [--connections 8,32]

A real sync server (uvicorn, in-memory provider) and a real ``sluice agent``; the agent is
pinned to CPU 0 and wrk to CPU 1 (2-core machine). The flag is the anchor workload's
``new-checkout`` (100-id segment, else a 25 % split); wrk POSTs
``/ofrep/v1/evaluate/flags/new-checkout`` with 100 different targeting keys (Lua script).
Baselines in the same run: GET /healthz on the same agent (same server, no evaluation),
and Debian's nginx answering a fixed 200 from one worker pinned like the agent (the floor of
this machine and wrk: what a C server gets; skipped without nginx).
Prints req/s, requests per CPU-second of the agent process (utime+stime from /proc: the
machine is shared, so this is the "one core" rate), p50 and p99, medians of --reps runs.
Never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import _wrk  # noqa: E402

from tests._support import free_port  # noqa: E402
from tests._support.flag_sync import SyncServer, make_snapshot, start_agent  # noqa: E402

LUA = """
local bodies = {}
for i = 0, 99 do
  bodies[i] = string.format('{"context":{"targetingKey":"user-%05d","plan":"pro"}}', i * 37)
end
local reqs = {}
for i = 0, 99 do
  reqs[i] = wrk.format("POST", "/ofrep/v1/evaluate/flags/new-checkout",
                       {["Content-Type"] = "application/json"}, bodies[i])
end
local n = 0
request = function()
  n = (n + 1) % 100
  return reqs[n]
end
"""


def flag_set() -> dict[str, object]:
    ids = [f"user-{i:05d}" for i in range(0, 10_000, 100)]
    return {
        "segments": {"flag-group": {"ids": ids}},
        "flags": {
            "new-checkout": {
                "type": "boolean",
                "variants": {"on": True, "off": False},
                "default_variant": "off",
                "rules": [{"when": {"segment": "flag-group"}, "variant": "on"}],
                "fallthrough": {
                    "split": [{"variant": "on", "weight": 25}, {"variant": "off", "weight": 75}]
                },
            }
        },
    }


def wrk(url: str, duration: float, connections: int, script: Path | None) -> _wrk.WrkResult:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=False)
    res = _wrk.parse(proc.stdout)
    res.command = cmd
    return res


NGINX_CONF = """worker_processes 1;
daemon off;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 '{{"ok":true}}'; }} }}
}}
"""


@contextlib.contextmanager
def nginx_floor(tmp: Path) -> Iterator[tuple[str, int] | None]:
    """A pinned one-worker nginx answering a fixed 200: (url, pid), or None without nginx."""
    if shutil.which("nginx") is None:
        yield None
        return
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp, port=port))
    proc = subprocess.Popen(
        ["taskset", "-c", "0", "nginx", "-c", str(conf), "-p", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        worker = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        yield url, int(worker[0]) if worker else proc.pid
    finally:
        proc.terminate()
        proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--connections", default="8,32")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    script = tmp / "ofrep.lua"
    script.write_text(LUA)
    server = SyncServer(tmp / "state").start()
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop)
        server.publish(make_snapshot(1, flag_set()))
        agent = start_agent(server.url, server.token, tmp / "cache", extra=[], timeout=20)
        stack.callback(agent.stop)
        agent.wait_for(lambda: agent.get("/healthz").status_code == 200, what="ready")
        subprocess.run(["taskset", "-pc", "0", str(agent.pid)], check=True, capture_output=True)
        check = agent.ofrep("new-checkout", {"targetingKey": "user-00100"}).json()
        assert check["value"] is True, check
        floor = stack.enter_context(nginx_floor(tmp))
        targets: list[tuple[str, str, Path | None, int]] = []
        if floor is not None:
            targets.append(("nginx fixed 200 (machine floor)", floor[0], None, floor[1]))
        targets += [
            ("GET /healthz (baseline)", f"{agent.url}/healthz", None, agent.pid),
            ("POST OFREP new-checkout", agent.url, script, agent.pid),
        ]
        print(
            f"{'endpoint':<34}{'conns':>6}{'req/s':>10}{'req/CPU-s':>12}{'p50 ms':>9}"
            f"{'p99 ms':>9}{'errors':>8}  runs (req/s / p99 ms)"
        )
        for conns in (int(c) for c in args.connections.split(",")):
            for name, url, lua, pid in targets:
                runs, per_cpu = [], []
                for _ in range(args.reps):
                    before = cpu_seconds(pid)
                    run = wrk(url, args.duration, conns, lua)
                    used = cpu_seconds(pid) - before
                    runs.append(run)
                    per_cpu.append(run.requests / used if used else 0.0)
                rps = statistics.median(r.rps for r in runs)
                p50 = statistics.median(r.p50_ms or 0 for r in runs)
                p99 = statistics.median(r.p99_ms or 0 for r in runs)
                errs = sum(r.errors for r in runs)
                detail = " ".join(f"{r.rps:.0f}/{r.p99_ms}" for r in runs)
                cpu_rate = statistics.median(per_cpu)
                print(
                    f"{name:<34}{conns:>6}{rps:>10.0f}{cpu_rate:>12.0f}{p50:>9.3f}"
                    f"{p99:>9.3f}{errs:>8}  {detail}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
