"""RouterClient against a real router: typed calls, errors translated at the boundary."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sluicegate.errors import AuthError, NotFoundError, RouterUnavailableError, SpecError
from sluicegate.router import RouterClient
from tests._support import (
    AppProcess,
    RouterProcess,
    free_port,
    router_config,
    start_app,
    start_router,
)


@pytest.fixture(scope="module")
def app() -> Iterator[AppProcess]:
    with start_app() as a:
        yield a


@pytest.fixture(scope="module")
def router(app: AppProcess) -> Iterator[RouterProcess]:
    with start_router(
        router_config({"blue": [app], "green": [app]}, {"blue": 100, "green": 0})
    ) as r:
        yield r


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_weights_round_trip(router: RouterProcess) -> None:
    async def go() -> tuple[dict[str, int], dict[str, int]]:
        async with RouterClient(router.admin_url, router.token) as rc:
            applied = await rc.set_weights("web", {"blue": 20, "green": 80})
            return applied, await rc.weights("web")

    assert run(go()) == ({"blue": 20, "green": 80}, {"blue": 20, "green": 80})


def test_refused_weights_raise_spec_error_with_the_path(router: RouterProcess) -> None:
    async def go() -> None:
        async with RouterClient(router.admin_url, router.token) as rc:
            await rc.set_weights("web", {"purple": 1})

    with pytest.raises(SpecError) as info:
        run(go())
    assert info.value.problems[0].path == "weights"


def test_unknown_listener_is_not_found_and_bad_token_is_auth_error(
    router: RouterProcess,
) -> None:
    async def missing() -> None:
        async with RouterClient(router.admin_url, router.token) as rc:
            await rc.set_weights("nope", {"blue": 1})

    async def bad_token() -> None:
        async with RouterClient(router.admin_url, "wrong") as rc:
            await rc.weights("web")

    with pytest.raises(NotFoundError):
        run(missing())
    with pytest.raises(AuthError):
        run(bad_token())


def test_register_and_deregister_targets(router: RouterProcess, app: AppProcess) -> None:
    other = f"127.0.0.1:{free_port()}"

    async def go() -> tuple[list[str], list[str]]:
        async with RouterClient(router.admin_url, router.token) as rc:
            await rc.register("green", other)
            during = list((await rc.target_groups())["green"]["targets"])
            await rc.deregister("green", other, delay=0)
            await asyncio.sleep(0.1)
            after = list((await rc.target_groups())["green"]["targets"])
            return during, after

    during, after = run(go())  # type: ignore[misc]
    assert sorted(during) == sorted([app.address, other])
    assert after == [app.address]


def test_unreachable_router_is_a_temporary_error() -> None:
    async def go() -> bool:
        async with RouterClient(f"http://127.0.0.1:{free_port()}", "t", timeout=1) as rc:
            healthy = await rc.healthy()
            assert not healthy
            await rc.weights("web")
            return healthy

    with pytest.raises(RouterUnavailableError):
        run(go())


def test_flag_set_round_trip_and_a_refused_set_raises_spec_error(router: RouterProcess) -> None:
    good = {"flags": {"new-checkout": {"type": "boolean"}, "dark-mode": {"type": "boolean"}}}

    async def go() -> tuple[list[str], dict[str, object]]:
        async with RouterClient(router.admin_url, router.token) as rc:
            keys = await rc.set_flags(4, good)
            with pytest.raises(SpecError) as info:
                await rc.set_flags(5, {"flags": {"x": {"type": "bool"}}})
            assert "document.flags.x.type" in [p.path for p in info.value.problems]
            return keys, await rc.flags()

    keys, state = run(go())  # type: ignore[misc]
    assert keys == ["new-checkout", "dark-mode"]
    assert state["version"] == 4 and state["flags"] == keys
