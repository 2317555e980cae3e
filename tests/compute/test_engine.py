"""The Engine API client (the docker SDK's APIClient behind ``Engine``): errors named and
bounded, against real sockets and a real Podman API service."""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluicegate.compute._engine import Engine, EngineError, EngineUnreachableError
from tests._support.podman import APP_IMAGE, PodmanService
from tests.compute.conftest import run


@pytest.fixture
def silent_engine(tmp_path: Path) -> Iterator[str]:
    """A unix socket that accepts connections and never answers (a hung engine)."""
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        done.set()
        thread.join()
        for conn in held:  # the client's blocked reads end with these
            conn.close()
        server.close()


def test_a_socket_nobody_listens_on_is_unreachable_in_the_os_words_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dead.sock"
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound.bind(str(path))  # a socket file with no listener: connection refused

    async def scenario() -> None:
        engine = Engine(f"unix://{path}")
        try:
            for _ in range(3):
                with pytest.raises(EngineUnreachableError) as err:
                    await engine.containers({"sluicegate.service": ""})
                assert str(err.value) == (
                    f"the container engine at unix://{path} is unreachable: connection refused"
                )
            with pytest.raises(EngineUnreachableError, match="no such file or directory"):
                Engine(f"unix://{tmp_path}/none.sock").logs("abc", 5)
        finally:
            await engine.aclose()

    try:
        run(scenario())
        gc.collect()  # an unclosed socket would be a ResourceWarning here (an error)
    finally:
        bound.close()


def test_an_engine_that_never_answers_is_given_up_within_the_bound(silent_engine: str) -> None:
    async def scenario() -> None:
        engine = Engine(silent_engine, timeout=0.3)
        try:
            with pytest.raises(EngineUnreachableError, match=r"unreachable: no answer in 0\.3s"):
                await engine.inspect("abc")
            with pytest.raises(EngineUnreachableError, match=r"no answer in 0\.3s"):
                engine.logs("abc", 5)
        finally:
            await engine.aclose()

    run(scenario())


def test_the_engines_refusals_carry_its_status_and_words_and_absence_is_none(
    podman: PodmanService,
) -> None:
    async def scenario() -> None:
        engine = Engine(podman.url)
        try:
            await engine.ping()
            assert await engine.image("localhost/no-such-image:1") is None
            assert (await engine.image(f"{APP_IMAGE}:v1") or {}).get("Id")
            assert await engine.inspect("no-such-container") is None
            await engine.stop("no-such-container", 1.0)  # gone already: nothing to do
            await engine.remove("no-such-container")
            with pytest.raises(EngineError) as err:
                await engine.create("sluicegate-t-x-0", {"Image": "localhost/no-such-image:1"})
            assert err.value.status == 404
            assert str(err.value).startswith(f"{podman.url}: ")
            assert "no-such-image" in str(err.value)
            with pytest.raises(EngineError) as err:  # no registry is reachable from here
                await engine.pull("localhost/no-such-image:1")
            assert str(err.value).startswith(
                f"{podman.url}: cannot pull localhost/no-such-image:1: "
            )
            with pytest.raises(EngineError) as err:
                engine.logs("no-such-container", 5)
            assert err.value.status == 404 and "no-such-container" in str(err.value)
        finally:
            await engine.aclose()
        with pytest.raises(EngineError, match="the client is closed"):
            await engine.containers({})

    run(scenario())
