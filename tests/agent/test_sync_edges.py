"""The agent against a hand-scripted server: what a real server cannot be made to do on
demand (cut a stream mid-event, send an invalid snapshot, have no stream endpoint).

The scripted server is a real TCP listener on 127.0.0.1 in a thread; each request gets the
raw bytes the test wrote for its path, then the connection closes.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests._support.flag_sync import bool_flag_set, make_snapshot, start_agent

Script = Callable[[str, dict[str, str]], bytes]


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[tuple[str, dict[str, str]]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head = data.split(b"\r\n\r\n")[0].decode()
            lines = head.split("\r\n")
            path = lines[0].split()[1]
            headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
            self.requests.append((path, headers))
            conn.sendall(self.script(path, headers))

    def close(self) -> None:
        self.sock.close()


def sse_head() -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_a_stream_cut_mid_event_applies_no_partial_version(
    scripted: Callable[[Script], ScriptedServer], tmp_path: Path
) -> None:
    v1 = make_snapshot(1, bool_flag_set())
    v2 = make_snapshot(2, bool_flag_set(on_ids=("bob",)))

    def script(path: str, headers: dict[str, str]) -> bytes:
        event1 = f"id: {v1.etag}\nevent: snapshot\ndata: {v1.to_json()}\n\n".encode()
        # v2 arrives whole but its terminating blank line never does: the stream is cut.
        cut = f"id: {v2.etag}\nevent: snapshot\ndata: {v2.to_json()}\n".encode()
        return sse_head() + event1 + cut

    server = scripted(script)
    with start_agent(server.url, "k", tmp_path / "cache") as agent:
        agent.wait_for(lambda: len(server.requests) >= 3, what="reconnects")
        assert agent.get("/healthz").json()["version"] == 1
        assert agent.value("new-checkout", "bob") is False
        # It resumes from what it has: the reconnects name version 1's etag.
        assert server.requests[-1][1].get("last-event-id") == v1.etag


def test_an_invalid_snapshot_is_rejected_and_the_good_one_kept(
    scripted: Callable[[Script], ScriptedServer], tmp_path: Path
) -> None:
    good = make_snapshot(1, bool_flag_set(on_ids=("alice",)))
    bad = make_snapshot(
        2, {"flags": {"new-checkout": {"type": "boolean", "default_variant": "missing"}}}
    )

    def script(path: str, headers: dict[str, str]) -> bytes:
        events = [f"id: {s.etag}\nevent: snapshot\ndata: {s.to_json()}\n\n" for s in (good, bad)]
        return sse_head() + "".join(events).encode() + b": heartbeat\n\n"

    server = scripted(script)
    with start_agent(server.url, "k", tmp_path / "cache") as agent:
        agent.wait_for(lambda: "rejected a flag snapshot" in agent.logs(), what="rejection")
        assert agent.get("/healthz").json()["version"] == 1
        assert agent.value("new-checkout", "alice") is True
        assert '"version":1' in (tmp_path / "cache" / "prod.snapshot.json").read_text()
        assert 'outcome="rejected"} 0' not in agent.get("/metrics").text


def test_without_a_stream_endpoint_the_agent_polls_with_etags(
    scripted: Callable[[Script], ScriptedServer], tmp_path: Path
) -> None:
    v1 = make_snapshot(1, bool_flag_set(on_ids=("alice",)))

    def script(path: str, headers: dict[str, str]) -> bytes:
        if path.endswith("/stream"):
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        if headers.get("if-none-match") == v1.etag:
            return (
                b"HTTP/1.1 304 Not Modified\r\nETag: "
                + v1.etag.encode()
                + b"\r\nConnection: close\r\n\r\n"
            )
        body = v1.to_json().encode()
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: "
            + v1.etag.encode()
            + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            + body
        )

    server = scripted(script)
    with start_agent(server.url, "k", tmp_path / "cache", extra=["--poll-interval", "1s"]) as agent:
        agent.wait_for(
            lambda: (
                sum(
                    1
                    for p, h in server.requests
                    if p.endswith("/snapshot") and h.get("if-none-match")
                )
                >= 1
            ),
            what="a conditional poll",
        )
        health = agent.get("/healthz").json()
        assert (health["version"], health["sync_mode"], health["stale"]) == (1, "poll", False)
        assert agent.value("new-checkout", "alice") is True
