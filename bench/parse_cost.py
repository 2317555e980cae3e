#!/usr/bin/env python3
"""CPU per request on the router's client side and the agent's OFREP path, this tree
against a git ref (A/B).

Network benchmarks on this shared 2-core machine move ±15 % between runs, far more than a
change to a request path costs. This one takes the network out:

- ``router``: the same keep-alive GET (one per read, as wrk sends them) fed straight into
  ``ClientProtocol`` of a data plane whose dispatch answers at once: parse, checks,
  routing, head building, exchange;
- ``agent``: the same OFREP POST fed into the agent's connection protocol: parse, checks,
  JSON, evaluation, answer.

Both trees run in child processes, interleaved, in the same run.

Run from the repository root:  .venv/bin/python bench/parse_cost.py [--ref main]
Prints µs per request (median and best of the repetitions) for each path and tree, and
the difference. Never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


class _Transport:
    """Stands in for a client socket: the cost under test is the router's, not the kernel's."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name in ("peername", "sockname") else default

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def _timed(feed: Any, data: bytes, n: int, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        for _ in range(n):
            feed(data)
        out.append((time.perf_counter() - started) / n * 1e6)
    return out


async def _measure_agent(n: int, reps: int) -> list[float]:
    """µs per OFREP evaluation for ``reps`` rounds of ``n``, in this process's tree."""
    from sluicegate.agent import _http
    from sluicegate.agent._state import AgentState
    from sluicegate.clock import SystemClock
    from sluicegate.flags.snapshot import Snapshot, parse_snapshot, snapshot_etag

    flag = {"type": "boolean", "variants": {"on": True, "off": False}, "default_variant": "off"}
    flag["rules"] = [{"when": {"segment": "beta"}, "variant": "on"}]
    document = {"flags": {"new-checkout": flag}, "segments": {"beta": {"ids": ["alice"]}}}
    snapshot = Snapshot("prod", 1, snapshot_etag(1, None), document, None)
    state = AgentState("prod", SystemClock(), 30.0)
    state.apply(parse_snapshot(snapshot.to_json())[1], "cache")
    app = _http.AgentHttp(state)
    # Refs before the agent's connection moved to _conn.py have it as _http._Protocol.
    factory = getattr(_http, "_Protocol", None)
    if factory is None:
        from sluicegate.agent._conn import Connection

        factory = Connection
    conn = factory(app)
    conn.connection_made(_Transport())
    body = b'{"context":{"targetingKey":"bob","plan":"pro"}}'
    request = (
        b"POST /ofrep/v1/evaluate/flags/new-checkout HTTP/1.1\r\nHost: 127.0.0.1:2772\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    return _timed(conn.data_received, request, n, reps)


async def _measure(n: int, reps: int) -> list[float]:
    """µs per request for ``reps`` rounds of ``n`` requests, in this process's tree."""
    from sluicegate.clock import SystemClock
    from sluicegate.router._client import ClientProtocol
    from sluicegate.router._dataplane import DataPlane, ListenerState
    from sluicegate.router._metrics import NO_GROUP
    from sluicegate.router._table import TargetGroup, build_route
    from sluicegate.spec import RouterConfig

    forward = [{"target_group": "blue", "weight": 90}, {"target_group": "green", "weight": 10}]
    config = RouterConfig.model_validate(
        {
            "listeners": [
                {
                    "name": "web",
                    "port": 8080,
                    "default": {"forward": forward, "stickiness": {"enabled": True}},
                }
            ],
            "target_groups": [
                {"name": "blue", "targets": ["127.0.0.1:9001"]},
                {"name": "green", "targets": ["127.0.0.1:9002"]},
            ],
        }
    )
    plane = DataPlane(b"k" * 32, SystemClock())
    for spec in config.target_groups:
        group = plane.groups[spec.name] = TargetGroup(spec)
        plane._register(group, spec.targets[0])
        group.refresh()
    listener = config.listeners[0]
    route = build_route(listener, plane.groups, plane.metrics, plane.codec, plane.flags)
    state = ListenerState(listener, route, plane.metrics.get("web", NO_GROUP))
    plane.metrics.rotate(plane.now_sec)

    def answer_at_once(ex: Any, exclude: Any = None) -> None:
        ex.client.exchange_done(ex)

    plane.dispatch = answer_at_once  # type: ignore[method-assign]
    client = ClientProtocol(plane, state)
    client.connection_made(_Transport())  # type: ignore[arg-type]
    return _timed(client.data_received, REQUEST, n, reps)


def _export(ref: str, into: Path) -> Path:
    """``src/`` of ``ref`` (git archive), without touching any work tree."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref, "src"],
        check=True,
        capture_output=True,
    ).stdout
    tar_path = into / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _run(src: Path | None, path: str, n: int, reps: int) -> list[float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)  # ahead of the editable install of this tree
    out = subprocess.run(
        [sys.executable, __file__, "--child", path, str(n), str(reps)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # not the repository root: its src/ must not shadow
    ).stdout
    return [float(x) for x in out.split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ref", default="main", help="git ref to compare with (default main)")
    ap.add_argument("--requests", type=int, default=200_000, help="per repetition")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per tree")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        path, n, reps = args.child
        measure = _measure if path == "router" else _measure_agent
        print(*asyncio.run(measure(int(n), int(reps))))
        return
    with tempfile.TemporaryDirectory(prefix="sluice-parse-cost-") as tmp:
        base_src = _export(args.ref, Path(tmp))
        trees: dict[str, Path | None] = {args.ref: base_src, "this tree": None}
        paths = ("router", "agent")
        results: dict[tuple[str, str], list[float]] = {
            (path, name): [] for path in paths for name in trees
        }
        for i in range(args.rounds):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for path in paths:
                for name in order:
                    results[path, name] += _run(trees[name], path, args.requests, args.reps)
    print(f"\nCPU per request in-process ({args.rounds} rounds × {args.reps} × {args.requests})")
    print("| path | tree | µs/request (median) | best | vs base |")
    print("|---|---|---:|---:|---:|")
    for (path, name), values in results.items():
        med = statistics.median(values)
        base = statistics.median(results[path, args.ref])
        diff = f"{med - base:+.2f} µs ({med / base - 1:+.0%})"
        what = "router client GET" if path == "router" else "agent OFREP POST"
        print(f"| {what} | {name} | {med:.2f} | {min(values):.2f} | {diff} |")


if __name__ == "__main__":
    main()
