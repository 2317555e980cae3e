"""Flag propagation: publish a new flag-set version, time until every subscriber has it.

    .venv/bin/python bench/flag_propagation.py [--agents 10] [--subscribers 50] [--rounds 20]
                                                [--server]

``--agents`` real ``sluice agent`` processes and ``--subscribers`` raw SSE connections
straight to the server's stream. The server is a real ``sluice server`` with ``--server``
(each round is a ``flags apply`` through its API, stored in SQLite, streamed from the flag
store), else the sync routes alone over the in-memory provider. Each round publishes
version k (the clock starts just before the publish request is sent, on a kept-alive
connection, so the request's own time is included) and records when each server
subscriber receives the complete ``snapshot`` event for k, and when each agent *serves*
k — observed on the agent's own ``/v1/stream``, which the agent writes right after swapping
in the new version. Prints p50/p90/p99/max per kind. Never asserts; the machine is a shared
2-core VM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
from tests._support.server import Server, running_server  # noqa: E402


def open_stream(port: int, path: str, token: str | None, last: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Last-Event-ID: {last}\r\n{auth}\r\n".encode()
    )
    sock.setblocking(False)
    return sock


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Target:
    """Where versions are published and streamed from: ``url``, a stream ``token``, an agent
    ``key`` and ``publish(k)`` that sends version k on a kept-alive connection."""

    def __init__(
        self,
        url: str,
        token: str,
        key: str,
        admin: str,
        path: str,
        body: Callable[[int], bytes],
        method: str = "PUT",
    ) -> None:
        self.url, self.token, self.key = url, token, key
        self.port = int(url.rsplit(":", 1)[1])
        self._client = httpx.Client(timeout=10, headers={"Authorization": f"Bearer {admin}"})
        self._path, self._body, self._method = path, body, method

    def publish(self, k: int) -> None:
        r = self._client.request(
            self._method,
            self.url + self._path,
            content=self._body(k),
            headers={"Content-Type": "application/json"},
        )
        r.raise_for_status()


def document(k: int) -> dict[str, object]:
    return bool_flag_set(on_ids=(f"user-{k}",))


@contextlib.contextmanager
def target(use_server: bool, tmp: Path) -> Iterator[Target]:
    if not use_server:
        sync = SyncServer(tmp / "state").start()
        try:
            sync.publish(make_snapshot(1, document(1)))
            yield Target(
                sync.url,
                sync.token,
                sync.token,
                sync.admin,
                "/test/snapshots",
                lambda k: make_snapshot(k, document(k)).to_json().encode(),
            )
        finally:
            sync.stop()
        return
    server: Server
    with running_server(tmp / "state") as server:
        server.cli("flags", "envs", "create", "prod")
        key = server.cli("keys", "create", "--env", "prod").strip()
        t = Target(
            server.url,
            key,
            key,
            server.token,
            "/v1/flags/prod",
            lambda k: json.dumps({"document": document(k)}).encode(),
        )
        t.publish(1)
        yield t


def measure(server: Target, agents: list[AgentProcess], args: argparse.Namespace) -> None:
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
    for k in range(2, args.rounds + 2):
        marker = f'id: "{k}"\nevent: snapshot\ndata: '.encode()
        for state in socks.values():
            state[1] = b""
        pending = set(socks)
        start = time.perf_counter()
        server.publish(k)
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
    kind = "sluice server, flags apply" if args.server else "sync routes, in-memory"
    print(
        f"{args.rounds} publishes ({kind}); {args.subscribers} SSE subscribers on the "
        f"server, {args.agents} agent processes"
    )
    print(f"{'who':<34}{'n':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, label in (
        ("server", "server stream subscriber"),
        ("agent", "agent serving the new version"),
    ):
        v = results[kind]
        if not v:  # --subscribers 0 or --agents 0
            continue
        print(
            f"{label:<34}{len(v):>6}{statistics.median(v):>9.2f}{pct(v, 90):>9.2f}"
            f"{pct(v, 99):>9.2f}{max(v):>9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--server",
        action="store_true",
        help="a real `sluice server` (flags apply → flag store → stream)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-propagation-"))
    agents: list[AgentProcess] = []
    with target(args.server, tmp) as server:
        try:
            for i in range(args.agents):
                agents.append(start_agent(server.url, server.key, tmp / f"cache-{i}", timeout=30))
            measure(server, agents, args)
        finally:
            for agent in agents:
                agent.stop()


if __name__ == "__main__":
    main()
