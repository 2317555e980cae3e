"""The server's flag stream fan-out (``api/_flag_stream.py``) against a real uvicorn server,
read through raw sockets so the test sees exactly the bytes each client gets."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._support.flag_sync import SyncServer, bool_flag_set, make_snapshot
from tests._support.server import Server, running_server

_EVENT = re.compile(rb'id: "(\d+)"\nevent: snapshot\n')


class Stream:
    """One raw SSE connection; ``read`` collects whatever has arrived."""

    def __init__(
        self,
        server: SyncServer | Server,
        token: str | None,
        last: str | None = None,
        rcvbuf: int | None = None,
        env: str = "prod",
    ) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connecting, so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", server.port))
        headers = "Accept: text/event-stream\r\n"
        if token:
            headers += f"Authorization: Bearer {token}\r\n"
        if last:
            headers += f"Last-Event-ID: {last}\r\n"
        self.sock.sendall(
            f"GET /v1/flags/{env}/stream HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode()
        )
        self.sock.settimeout(0.05)
        self.data = b""

    def read(self, until: bytes | None = None, timeout: float = 10.0, idle: float = 0.05) -> bytes:
        """Read until ``until`` has arrived, or (without it) until ``idle`` s pass quietly."""
        self.sock.settimeout(idle)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                chunk = None
            if chunk == b"":
                break
            if chunk:
                self.data += chunk
            if until is None and chunk is None:
                break
            if until is not None and until in self.data:
                break
        return self.data

    def versions(self) -> list[int]:
        return [int(v) for v in _EVENT.findall(self.data)]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncServer]:
    """One server for the module: every test publishes the snapshots it reads first."""
    s = SyncServer(tmp_path_factory.mktemp("stream") / "state", heartbeat=0.5).start()
    try:
        yield s
    finally:
        s.stop()


def test_one_change_reaches_every_open_stream_exactly_once(server: SyncServer) -> None:
    server.publish(make_snapshot(1, bool_flag_set()))
    streams = [Stream(server, server.token, last='"1"') for _ in range(200)]
    try:
        for s in streams:
            s.read(until=b": sluicegate flag stream")
        server.publish(make_snapshot(2, bool_flag_set(on_ids=("u-2",))))
        for s in streams:
            s.read(until=b'id: "2"')
        time.sleep(0.2)  # time for a duplicate to arrive, if any were sent
        for s in streams:
            s.read(idle=0.001)
        assert [s.versions() for s in streams] == [[2]] * 200
        assert all(b'"u-2"' in s.data for s in streams)
    finally:
        for s in streams:
            s.close()


def test_a_client_gets_the_current_snapshot_unless_its_last_event_id_is_current(
    server: SyncServer,
) -> None:
    server.publish(make_snapshot(3, bool_flag_set()))
    behind, current = (
        Stream(server, server.token, last='"2"'),
        Stream(server, server.token, last='"3"'),
    )
    fresh = Stream(server, server.token)
    try:
        behind.read(until=b'id: "3"')
        fresh.read(until=b'id: "3"')
        current.read(until=b": heartbeat")  # a heartbeat, but no snapshot
        assert behind.versions() == [3] and fresh.versions() == [3]
        assert current.versions() == []
        assert current.data.startswith(b"HTTP/1.1 200 OK")
        assert b"content-type: text/event-stream" in current.data.lower()
    finally:
        for s in (behind, current, fresh):
            s.close()


def test_after_every_client_left_a_new_one_gets_the_newest_snapshot_not_an_old_one(
    server: SyncServer,
) -> None:
    server.publish(make_snapshot(1, bool_flag_set()))
    first = Stream(server, server.token)
    first.read(until=b'id: "1"')
    first.close()
    time.sleep(0.3)  # the server sees the disconnect and forgets the environment's channel
    server.publish(make_snapshot(2, bool_flag_set()))
    second = Stream(server, server.token)
    try:
        second.read(until=b'id: "2"')
        time.sleep(0.2)
        second.read()
        assert second.versions() == [2]
    finally:
        second.close()


def test_a_client_that_stops_reading_holds_no_one_up_and_later_gets_only_the_newest(
    server: SyncServer,
) -> None:
    # 1.1 MB events; 8 of them are more than the kernel buffers between the two hold (≈ 4 MB)
    big = tuple(f"user-{i:06d}" for i in range(100_000))
    server.publish(make_snapshot(1, bool_flag_set(on_ids=big)))
    slow = Stream(server, server.token, last='"1"', rcvbuf=4096)
    quick = Stream(server, server.token, last='"1"')
    try:
        slow.read(until=b": sluicegate flag stream")
        quick.read(until=b": sluicegate flag stream")
        versions = list(range(2, 10))
        for version in versions:
            server.publish(make_snapshot(version, bool_flag_set(on_ids=big)))
            quick.read(until=f'id: "{version}"'.encode())  # not held up by the slow one
        assert quick.versions() == versions
        slow.read(until=b'id: "9"', timeout=30)
        got = slow.versions()
        # in order, ending with the newest, some outdated ones never queued for it
        assert got == sorted(got) and got[-1] == 9 and len(got) < len(versions), got
    finally:
        slow.close()
        quick.close()


def test_streams_get_heartbeat_comments_between_changes(server: SyncServer) -> None:
    server.publish(make_snapshot(1, bool_flag_set()))
    s = Stream(server, server.token, last='"1"')
    try:
        deadline = time.monotonic() + 10
        while s.data.count(b": heartbeat\n\n") < 2 and time.monotonic() < deadline:
            s.read(until=b": heartbeat", timeout=1)
        assert s.data.count(b": heartbeat\n\n") >= 2
        assert s.versions() == []
    finally:
        s.close()


def test_the_stream_refuses_missing_tokens_and_agent_keys_of_another_environment(
    server: SyncServer,
) -> None:
    r = httpx.get(f"{server.url}/v1/flags/prod/stream", timeout=5)
    assert r.status_code == 401
    assert "missing, unknown, revoked or expired bearer token" in r.text
    r = httpx.get(
        f"{server.url}/v1/flags/prod/stream",
        timeout=5,
        headers={"Authorization": f"Bearer {server.agent_keys['staging']}"},
    )
    assert r.status_code == 403
    assert "reads environment 'staging', not 'prod'" in r.json()["detail"]
    r = httpx.post(
        f"{server.url}/v1/flags/prod/stream",
        timeout=5,
        headers={"Authorization": f"Bearer {server.token}"},
    )
    assert r.status_code == 405


def test_a_stopping_server_ends_its_streams_cleanly_instead_of_waiting_for_them(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path / "state") as real:
        real.cli("flags", "envs", "create", "prod")
        key = real.cli("keys", "create", "--env", "prod").strip()
        streams = [Stream(real, key) for _ in range(50)]
        try:
            for s in streams:
                s.read(until=b": sluicegate flag stream")
            assert real.proc is not None
            real.proc.terminate()
            real.proc.wait(15)  # graceful shutdown would otherwise wait for the clients
            for s in streams:
                s.read(until=b"0\r\n\r\n", timeout=5)
            assert all(s.data.endswith(b"0\r\n\r\n") for s in streams)  # last chunk sent
        finally:
            for s in streams:
                s.close()
