"""Flag propagation: publish a new flag-set version, time until every subscriber has it.

    .venv/bin/python bench/flag_propagation.py [--agents 10] [--subscribers 50] [--rounds 20]

A real sync server (uvicorn, in-memory provider), ``--agents`` real ``sluice agent``
processes and ``--subscribers`` raw SSE connections straight to the server's stream. Each
round publishes version k (the clock starts just before the publish request is sent, on a
kept-alive connection) and records when each server subscriber receives the complete
``snapshot`` event for k, and when each agent *serves* k — observed on the agent's own
``/v1/stream``, which the agent writes right after swapping in the new version. Prints
p50/p90/p99/max per kind. Never asserts; the machine is a shared 2-core VM.
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

import httpx  # noqa: E402

from tests._support.flag_sync import (  # noqa: E402
    AgentProcess,
    SyncServer,
    bool_flag_set,
    make_snapshot,
    start_agent,
)


def open_stream(port: int, path: str, token: str | None, last: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                 f"Last-Event-ID: {last}\r\n{auth}\r\n".encode())
    sock.setblocking(False)
    return sock


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-propagation-"))
    server = SyncServer(tmp / "state").start()
    agents: list[AgentProcess] = []
    try:
        server.publish(make_snapshot(1, bool_flag_set()))
        for i in range(args.agents):
            agents.append(start_agent(server.url, server.token, tmp / f"cache-{i}", timeout=30))
        for agent in agents:
            agent.wait_for(lambda a=agent: a.get("/healthz").status_code == 200, timeout=30)
        sel = selectors.DefaultSelector()
        socks: dict[socket.socket, list[object]] = {}
        for _ in range(args.subscribers):
            s = open_stream(server.port, "/v1/flags/prod/stream", server.token, '"1"')
            socks[s] = ["server", b""]
        for agent in agents:
            s = open_stream(agent.port, "/v1/stream", None, '"1"')
            socks[s] = ["agent", b""]
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        # Measure propagation, not connection set-up: wait until every stream has its
        # response head and first comment (1,000 token checks take the server a while).
        waiting = set(socks)
        deadline = time.monotonic() + 60
        while waiting and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                with contextlib.suppress(BlockingIOError):
                    if b"\n\n" in s.recv(65536):
                        waiting.discard(s)
        if waiting:
            sys.exit(f"{len(waiting)} streams did not open within 60 s")
        time.sleep(0.5)
        for s in socks:  # drop anything else sent on connecting
            with contextlib.suppress(BlockingIOError):
                s.recv(65536)
        results: dict[str, list[float]] = {"server": [], "agent": []}
        publisher = httpx.Client(timeout=10)
        for k in range(2, args.rounds + 2):
            snapshot = make_snapshot(k, bool_flag_set(on_ids=(f"user-{k}",)))
            marker = f'id: "{k}"\nevent: snapshot\ndata: '.encode()
            body = snapshot.to_json()
            for state in socks.values():
                state[1] = b""
            pending = set(socks)
            start = time.perf_counter()
            publisher.put(f"{server.url}/test/snapshots", content=body,
                          headers={"Authorization": f"Bearer {server.admin}"})
            while pending:
                for key, _ in sel.select(timeout=10):
                    s = key.fileobj
                    assert isinstance(s, socket.socket)
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        continue
                    state = socks[s]
                    state[1] = bytes(state[1]) + chunk  # type: ignore[arg-type]
                    buf = bytes(state[1])
                    at = buf.find(marker)
                    if s in pending and at >= 0 and buf.find(b"\n\n", at) >= 0:
                        results[str(state[0])].append((time.perf_counter() - start) * 1000)
                        pending.discard(s)
            time.sleep(0.2)
        print(f"{args.rounds} publishes; {args.subscribers} SSE subscribers on the server, "
              f"{args.agents} agent processes")
        print(f"{'who':<34}{'n':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for kind, label in (("server", "server stream subscriber"),
                            ("agent", "agent serving the new version")):
            v = results[kind]
            if not v:  # --subscribers 0 or --agents 0
                continue
            print(f"{label:<34}{len(v):>6}{statistics.median(v):>9.2f}{pct(v, 90):>9.2f}"
                  f"{pct(v, 99):>9.2f}{max(v):>9.2f}")
    finally:
        for agent in agents:
            agent.stop()
        server.stop()


if __name__ == "__main__":
    main()
