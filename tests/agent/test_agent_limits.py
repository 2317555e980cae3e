"""The agent's local API is bounded like a router listener: sizes (414/431/413), time (408,
idle close), answers piling up for a client that does not read, and JSON nesting (a
``PARSE_ERROR``, never a 500).

Most cases run against a real ``sluice agent`` serving a flag set from its cache (its
server is unreachable, which it survives by design). The time limits are 10 s and 60 s by
default, so those cases start the agent's HTTP server in-process with short ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest

from sluicegate.agent._cache import SnapshotCache
from sluicegate.agent._conn import AgentLimits
from sluicegate.agent._http import AgentHttp
from sluicegate.agent._state import AgentState
from sluicegate.clock import SystemClock
from tests._support import rss_kib
from tests._support.flag_sync import AgentProcess, bool_flag_set, make_snapshot, start_agent

SINGLE = "/ofrep/v1/evaluate/flags/new-checkout"
BULK = "/ofrep/v1/evaluate/flags"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    cache = tmp_path_factory.mktemp("agent-cache")
    SnapshotCache(cache, "prod").save(make_snapshot(1, bool_flag_set()))
    with start_agent("http://127.0.0.1:9", "unused-key", cache) as proc:
        proc.wait_for(lambda: proc.get("/healthz").status_code == 200, what="serving the cache")
        yield proc
        assert proc.proc.poll() is None, f"agent died:\n{proc.logs()}"


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a new connection; what the agent sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"connection still open after {timeout}s: {received[:300]!r}")
    return received


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw.split(b" ", 2)[1])


# -- sizes ----------------------------------------------------------------------------------


def test_a_request_line_over_8_kib_is_a_414(agent: AgentProcess) -> None:
    raw = exchange(agent.port, b"GET /v1/flags/" + b"a" * 8192 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 414


def test_headers_over_32_kib_are_a_431(agent: AgentProcess) -> None:
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(33))
    raw = exchange(agent.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + filler + b"\r\n")
    assert status_of(raw) == 431


def test_an_endless_header_is_a_431_without_waiting_for_its_end(agent: AgentProcess) -> None:
    with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            for _ in range(64):  # 4 MiB of a header that never ends
                sock.sendall(b"v" * 65536)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    if received:  # an RST can overtake the answer when the sender is this fast
        assert status_of(received) == 431


def test_a_body_announced_over_1_mib_is_a_413_before_it_is_sent(agent: AgentProcess) -> None:
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (
        SINGLE.encode(),
        (1 << 20) + 1,
    )
    assert status_of(exchange(agent.port, head)) == 413


# -- JSON nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
@pytest.mark.parametrize("path", [SINGLE, BULK])
def test_a_deeply_nested_body_is_a_400_parse_error_not_a_500(
    agent: AgentProcess, path: str, depth: int
) -> None:
    nested = b"[" * depth + b"]" * depth
    r = agent.post(path, content=b'{"context": {"targetingKey": "u1", "deep": %b}}' % nested)
    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "PARSE_ERROR"
    assert "nested deeper than 32 levels" in r.json()["errorDetails"]


def test_a_context_nested_a_few_levels_is_still_evaluated(agent: AgentProcess) -> None:
    context = {"targetingKey": "u1", "org": {"plan": {"tier": ["pro", {"seats": 5}]}}}
    r = agent.post(SINGLE, {"context": context})
    assert r.status_code == 200 and r.json()["value"] is False


def test_the_agent_logged_no_internal_error(agent: AgentProcess) -> None:
    assert agent.get("/healthz").status_code == 200
    assert "Traceback" not in agent.logs()


# -- a client that pipelines and never reads ----------------------------------------------------


def test_pipelining_clients_that_never_read_grow_the_agent_by_under_16_mib(
    agent: AgentProcess,
) -> None:
    """Each of 8 clients writes ~4 MiB of requests (~110k) and reads nothing. Answers are
    made as requests are parsed; once 64 KiB of them wait unsent the agent stops parsing and
    reading that connection, so it holds a few hundred KiB per client, not ~40 MiB."""
    request = b"GET /ofrep/v1/configuration HTTP/1.1\r\nHost: x\r\n\r\n"
    payload = request * ((4 << 20) // len(request))
    baseline = peak = rss_kib(agent.pid)
    clients: list[tuple[socket.socket, memoryview]] = []
    try:
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
            sock.setblocking(False)
            clients.append((sock, memoryview(payload)))
        stalled_since = time.monotonic()
        while time.monotonic() - stalled_since < 2.0:
            progressed = False
            for i, (sock, rest) in enumerate(clients):
                if rest:
                    with contextlib.suppress(BlockingIOError):
                        sent = sock.send(rest)
                        clients[i] = (sock, rest[sent:])
                        progressed = progressed or sent > 0
            if progressed:
                stalled_since = time.monotonic()
            peak = max(peak, rss_kib(agent.pid))
            time.sleep(0.02)
    finally:
        for sock, _ in clients:
            sock.close()
    grown = peak - baseline
    assert grown < 16 * 1024, f"agent grew {grown // 1024} MiB"
    assert agent.get("/healthz").status_code == 200


def test_pipelined_requests_are_all_answered_in_order_when_the_client_reads(
    agent: AgentProcess,
) -> None:
    n = 5000
    requests = b"".join(b"GET /v1/flags/f%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n))
    raw = exchange(
        agent.port, requests + b"GET /v1/flags/last HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    keys = [json.loads(body)["key"] for body in answer_bodies(raw)]
    assert keys == [f"f{i}" for i in range(n)] + ["last"]


def answer_bodies(raw: bytes) -> list[bytes]:
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(
                b":"
            )[1]
        )
        out.append(rest[:length])
        raw = rest[length:]
    return out


# -- time (in-process, short limits) ------------------------------------------------------------


async def _against_server(limits: AgentLimits, send: bytes) -> bytes:
    """Start the agent's HTTP server with ``limits``, send ``send`` and read until the server
    closes (failing after 10 s)."""
    state = AgentState("prod", SystemClock(), stale_after=30.0)
    http = AgentHttp(state, limits)
    port = await http.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(send)
        received = await asyncio.wait_for(reader.read(-1), timeout=10)
        writer.close()
        return received
    finally:
        await http.close()


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> None:
    limits = AgentLimits(idle_timeout=0.5)
    raw = asyncio.run(_against_server(limits, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert raw.startswith(b"HTTP/1.1 503 ")  # answered (no flag set yet), then closed idle
    assert raw.count(b"HTTP/1.1 ") == 1


def test_a_head_not_finished_within_the_header_timeout_is_a_408() -> None:
    limits = AgentLimits(header_timeout=0.5)
    raw = asyncio.run(_against_server(limits, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Sl"))
    assert status_of(raw) == 408
