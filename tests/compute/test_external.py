"""ExternalCompute: endpoints deployed elsewhere; health is real HTTP."""

from __future__ import annotations

import pytest

from sluicegate.compute import ExternalCompute, ExternalSpec, Replica, parse_address
from sluicegate.errors import NotFoundError, SpecError
from tests._support import free_port
from tests.compute.conftest import run
from tests.conftest import AppFactory


def test_health_of_a_running_app_and_a_dead_port(app_factory: AppFactory) -> None:
    app = app_factory(name="ext-1")
    dead = f"127.0.0.1:{free_port()}"

    async def scenario() -> None:
        compute = ExternalCompute()
        replicas = await compute.start("shop", "v1", ExternalSpec([app.address, dead]))
        assert replicas == [
            Replica("shop", "v1", 0, app.port),
            Replica("shop", "v1", 1, int(dead.split(":")[1])),
        ]
        assert compute.endpoints("shop", "v1") == [app.address, dead]
        up, down = await compute.health("shop", "v1", timeout=1)
        assert (up.healthy, up.status_code) == (True, 200)
        assert (down.healthy, down.status_code, down.detail) == (False, None, "connection refused")
        app.set_health(503)
        up, _ = await compute.health("shop", "v1", timeout=1)
        assert (up.healthy, up.status_code) == (False, 503)
        adoption = await compute.adopt("shop", "v1", ExternalSpec([app.address]), [])
        assert adoption.adopted == [Replica("shop", "v1", 0, app.port)] and adoption.gone == []
        await compute.stop("shop", "v1")  # forgets; the app keeps running
        with pytest.raises(NotFoundError):
            compute.endpoints("shop", "v1")
        await compute.stop("shop", "v1")  # idempotent
        assert app.proc.poll() is None

    run(scenario())


def test_bad_endpoints_are_rejected_by_index() -> None:
    async def scenario() -> None:
        compute = ExternalCompute()
        spec = ExternalSpec(["10.0.0.1:80", "nohost", "a:99999", "10.0.0.1:80"])
        with pytest.raises(SpecError) as err:
            await compute.start("shop", "v1", spec)
        paths = [p.path for p in err.value.problems]
        assert paths == [f"compute.external.endpoints[{i}]" for i in (1, 2, 3)]
        with pytest.raises(SpecError, match="at least one"):
            await compute.start("shop", "v1", ExternalSpec([]))

    run(scenario())


def test_parse_address() -> None:
    assert parse_address("example.com:8080") == ("example.com", 8080)
    assert parse_address("[::1]:80") == ("::1", 80)
    assert Replica("s", "r", 0, 80, host="::1").address == "[::1]:80"
    for bad in ("::1:80", "host", ":80", "host:0", "host:x", "[]:80", "a b:80"):
        with pytest.raises(ValueError):
            parse_address(bad)
