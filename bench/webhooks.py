"""Webhook delivery: what the engine's bookkeeping costs next to bare POSTs, and how long an
event waits before its receiver has it.

Run from the repository root:  .venv/bin/python bench/webhooks.py [--events N] [--runs R]
A local receiver (``http.server`` threads, answers 200) gets N events. Baseline: the same
signed bodies POSTed one after another with one httpx client (what any sender pays).
Engine: ``WebhookEngine.run()`` (the server's loop) on a SQLite store with ``per_webhook``
1 (the default: log order) and 4, the N events appended before it starts. Latency: the
same loop at its default 0.5 s interval, one event appended at a time, time until the
receiver has it. Prints a markdown
table of medians over the runs. It never asserts: the numbers are for people.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from sluicegate.clock import SystemClock
from sluicegate.notify import WebhookEngine, body_of, sign
from sluicegate.store import Store

SECRET = "whsec_bench_0123456789abcdef"


class Receiver:
    """Counts POSTs on 127.0.0.1 and answers 200 (threads, like a small real receiver)."""

    def __init__(self) -> None:
        self.count = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    outer.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def event_json(i: int) -> dict[str, object]:
    return {
        "id": i,
        "kind": "deployment.step",
        "subject": "d-1",
        "message": f"step {i}",
        "actor": "bench",
        "at": time.time(),
        "data": {"weight": i % 100},
    }


async def bare_posts(url: str, n: int) -> float:
    async with httpx.AsyncClient() as client:
        start = time.perf_counter()
        for i in range(n):
            body = body_of(event_json(i))
            ts = int(time.time())
            r = await client.post(
                url,
                content=body,
                headers={
                    "X-Sluicegate-Timestamp": str(ts),
                    "X-Sluicegate-Signature": sign(SECRET, ts, body),
                },
            )
            r.raise_for_status()
        return n / (time.perf_counter() - start)


async def engine_run(url: str, n: int, per_webhook: int, receiver: Receiver) -> float:
    with tempfile.TemporaryDirectory() as state, Store.open(state) as store:
        store.webhooks.create(url, ["*"], SECRET)
        engine = WebhookEngine(store, SystemClock(), per_webhook=per_webhook)
        await engine.tick()  # the first run sets the cursor at the log's end
        for i in range(n):
            store.events.append("deployment.step", "d-1", f"step {i}", data={"weight": i})
        before = receiver.count
        start = time.perf_counter()
        task = asyncio.get_running_loop().create_task(engine.run())
        while receiver.count < before + n:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return n / elapsed


async def latency(url: str, n: int, receiver: Receiver) -> list[float]:
    with tempfile.TemporaryDirectory() as state, Store.open(state) as store:
        store.webhooks.create(url, ["*"], SECRET)
        engine = WebhookEngine(store, SystemClock())
        task = asyncio.get_running_loop().create_task(engine.run(0.5))
        waits = []
        for i in range(n):
            before = receiver.count
            start = time.perf_counter()
            store.events.append("deployment.step", "d-1", f"step {i}")
            while receiver.count <= before:
                await asyncio.sleep(0.002)
            waits.append(time.perf_counter() - start)
            await asyncio.sleep(0.13)  # de-phase from the tick
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {
        "bare POSTs (baseline)": [],
        "engine, per_webhook=1": [],
        "engine, per_webhook=4": [],
    }
    waits: list[float] = []
    receiver = Receiver()
    url = receiver.url
    try:
        for _ in range(args.runs):
            rows["bare POSTs (baseline)"].append(asyncio.run(bare_posts(url, args.events)))
            rows["engine, per_webhook=1"].append(
                asyncio.run(engine_run(url, args.events, 1, receiver))
            )
            rows["engine, per_webhook=4"].append(
                asyncio.run(engine_run(url, args.events, 4, receiver))
            )
            waits += asyncio.run(latency(url, 10, receiver))
    finally:
        receiver.stop()
    print(f"{args.events} events to one local receiver, {args.runs} runs\n")
    print("| sender | deliveries/s (median) | min | max |")
    print("|---|---:|---:|---:|")
    for name, values in rows.items():
        print(
            f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |"
        )
    waits.sort()
    p90 = waits[int(len(waits) * 0.9)]
    print(
        f"\nappend -> received with run(interval=0.5): median"
        f" {statistics.median(waits) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms,"
        f" max {waits[-1] * 1000:.0f} ms over {len(waits)} events"
    )


if __name__ == "__main__":
    main()
