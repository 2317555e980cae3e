#!/usr/bin/env python3
"""CPU the router's client side spends per request, this tree against a git ref (A/B).

Network benchmarks on this shared 2-core machine move ±15 % between runs, far more than a
change to the request path costs. This one takes the network out: it feeds the same
keep-alive GET (one per read, as wrk sends them) straight into ``ClientProtocol`` of a data
plane whose dispatch answers at once, and times the Python work (parse, checks, routing,
head building, exchange). Both trees run in child processes, interleaved, in the same run.

Run from the repository root:  .venv/bin/python bench/parse_cost.py [--ref main]
Prints µs per request (median and best of the repetitions) for each tree and the
difference. Never asserts.
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

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


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
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        for _ in range(n):
            client.data_received(REQUEST)
        out.append((time.perf_counter() - started) / n * 1e6)
    return out


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


def _run(src: Path | None, n: int, reps: int) -> list[float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)  # ahead of the editable install of this tree
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n), str(reps)],
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
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(*asyncio.run(_measure(*args.child)))
        return
    with tempfile.TemporaryDirectory(prefix="sluice-parse-cost-") as tmp:
        base_src = _export(args.ref, Path(tmp))
        trees: dict[str, Path | None] = {args.ref: base_src, "this tree": None}
        results: dict[str, list[float]] = {name: [] for name in trees}
        for i in range(args.rounds):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for name in order:
                results[name] += _run(trees[name], args.requests, args.reps)
    base = statistics.median(results[args.ref])
    print(f"\nclient side CPU per keep-alive GET ({args.rounds} × {args.reps} × {args.requests})")
    print("| tree | µs/request (median) | best | vs base |")
    print("|---|---:|---:|---:|")
    for name, values in results.items():
        med = statistics.median(values)
        diff = f"{med - base:+.2f} µs ({med / base - 1:+.0%})"
        print(f"| {name} | {med:.2f} | {min(values):.2f} | {diff} |")


if __name__ == "__main__":
    main()
