"""The router's own resources: a listener's ``max_connections`` and the process's file
descriptors. Running out of either is the router's problem: it refuses new clients with a
503 it names, says so in one log line, and never blames a target (health or metrics).
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests._support import RouterProcess, router_config, start_router
from tests.conftest import AppFactory, RouterFactory

GET = b"GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n"


def read_answer(sock: socket.socket) -> bytes:
    """Bytes until the head and a short body are in, or the peer closes."""
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_to_close(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not reached in {timeout}s: {what}"
        time.sleep(0.05)


# -- max_connections -------------------------------------------------------------------------


def test_connections_beyond_max_connections_get_a_503_and_are_closed_with_one_log_line(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    app = app_factory()
    config = router_config({"app": [app]}, health_path="/healthz")
    config["listeners"][0]["max_connections"] = 5
    router = router_factory(config)
    port = router.listener_port()
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
    try:
        for sock in held:  # every one of the five is served, and kept alive
            sock.sendall(GET)
            assert read_answer(sock).startswith(b"HTTP/1.1 200 ")
        app.reset()
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
                answer = read_to_close(extra)  # closed by the router without a request
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
            assert b"max_connections" in answer
            assert b"\r\nX-Sluicegate-Error: 1\r\n" in answer
        held.pop().close()
        wait_for(lambda: b"200 " in http_get(port), "a freed slot serves again")
    finally:
        for sock in held:
            sock.close()
    assert app.stats()["by_path"].get("/", 0) >= 1  # the request after the slot freed
    lines = [ln for ln in router.logs().splitlines() if "max_connections" in ln]
    assert 1 <= len(lines) < 20, lines  # one line for the flood, not one per refusal
    assert "listener web has 5 connections open" in lines[0]


def http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(GET)
        return read_answer(sock)


def test_max_connections_is_validated_with_the_field_named(tmp_path: Path) -> None:
    from sluicegate.errors import SpecError
    from sluicegate.spec import RouterConfig, parse_document

    config = router_config({"app": ["127.0.0.1:9"]})
    config["listeners"][0]["max_connections"] = 0
    try:
        parse_document(RouterConfig, config, "router.yaml")
    except SpecError as exc:
        assert [p.path for p in exc.problems] == ["listeners[0].max_connections"]
    else:
        raise AssertionError("max_connections 0 was accepted")


# -- file descriptors ------------------------------------------------------------------------


@contextlib.contextmanager
def soft_nofile(limit: int) -> Iterator[None]:
    """Processes started inside inherit this soft RLIMIT_NOFILE (the hard one unchanged)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def proc_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files line")


def test_the_router_raises_its_open_file_limit_to_the_hard_limit_and_says_so(
    app_factory: AppFactory,
) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard > 256, "this test needs a hard limit above 256"
    app = app_factory()
    with soft_nofile(256):
        router = start_router(router_config({"app": [app]}, health_path="/healthz"))
    try:
        soft_now, hard_now = proc_limits(router.pid)
        assert (soft_now, hard_now) == (hard, hard)
        assert f"open-file limit (RLIMIT_NOFILE) raised from 256 to {hard}" in router.logs()
    finally:
        router.stop()


def exhausted(router: RouterProcess, spare: int = 0) -> contextlib.AbstractContextManager[None]:
    """While inside, the router may open only ``spare`` more descriptors: its soft limit is
    set to what it has open, from outside (the hard limit stays, so it can be put back)."""

    @contextlib.contextmanager
    def cm() -> Iterator[None]:
        soft, hard = resource.prlimit(router.pid, resource.RLIMIT_NOFILE)
        now = open_fds(router.pid)
        resource.prlimit(router.pid, resource.RLIMIT_NOFILE, (now + spare, hard))
        try:
            yield
        finally:
            resource.prlimit(router.pid, resource.RLIMIT_NOFILE, (soft, hard))

    return cm()


def target_state(admin: httpx.Client) -> dict[str, object]:
    groups = admin.get("/v1/target-groups").json()
    state: dict[str, object] = next(iter(groups["app"]["targets"].values()))
    return state


def test_health_checks_failing_for_want_of_descriptors_never_mark_the_target_unhealthy(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    app = app_factory()
    config = router_config({"app": [app]}, health_path="/healthz", interval="200ms")
    router = router_factory(config)
    headers = {"Authorization": f"Bearer {router.token}"}
    # Opened before the descriptors run out: an open keep-alive connection needs no new one.
    with httpx.Client(base_url=router.admin_url, headers=headers, timeout=10) as admin:
        assert target_state(admin)["healthy"] is True
        with exhausted(router):

            def five_skipped_and_still_healthy() -> bool:
                state = target_state(admin)
                assert state["healthy"] is True, state
                return int(state.get("checks_skipped", 0)) >= 5  # type: ignore[call-overload]

            wait_for(five_skipped_and_still_healthy, "five health checks skipped")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", router.listener_port()), timeout=10) as sock,
            ):
                sock.sendall(GET)
                answer = read_to_close(sock)  # dropped without a descriptor, or a 503
                assert answer == b"" or answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert target_state(admin)["healthy"] is True
    wait_for(lambda: b"200 " in http_get(router.listener_port()), "serving again")
    logs = router.logs()
    assert "is unhealthy" not in logs
    assert "health check of" in logs and "skipped: the router is out of file descriptors" in logs
    assert "the router is out of file descriptors" in logs


def test_a_request_that_cannot_get_an_upstream_descriptor_is_a_503_not_the_targets_fault(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    app = app_factory()
    config = router_config({"app": [app]}, health_path="/healthz", interval="60s")
    router = router_factory(config)
    headers = {"Authorization": f"Bearer {router.token}"}
    with (
        httpx.Client(base_url=router.admin_url, headers=headers, timeout=10) as admin,
        socket.create_connection(("127.0.0.1", router.listener_port()), timeout=10) as client,
    ):
        # The client is accepted (it has its descriptor) before the limit drops; the router
        # has no pooled upstream connection yet, so the request needs a new descriptor.
        wait_for(lambda: admin.get("/v1/status").json()["clients"] == 1, "client accepted")
        with exhausted(router):
            client.sendall(GET)
            answer = read_answer(client)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:300]
        assert b"out of file descriptors" in answer
        client.sendall(GET)  # the same connection, descriptors back: served
        assert read_answer(client).startswith(b"HTTP/1.1 200 ")
        series = admin.get("/v1/metrics", params={"window": 60, "open": 1}).json()["series"]
    fives = {s["target_group"]: sum(p["5xx"] for p in s["seconds"]) for s in series}
    assert fives == {"app": 0, "-": 1}  # counted as the router's, not the target group's
    assert target_state_ok(router)
    assert "answering 503 instead of connecting to" in router.logs()


def target_state_ok(router: RouterProcess) -> bool:
    groups = router.admin("GET", "/v1/target-groups").json()
    return all(t["healthy"] for t in groups["app"]["targets"].values())
