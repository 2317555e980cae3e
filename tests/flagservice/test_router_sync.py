"""The router follows an environment's current flag-set version: pushed when the router
holds another one (none yet, an apply, a revert, a restarted router), nothing else pushed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluicegate.errors import RouterUnavailableError
from sluicegate.flagservice import FlagService, RouterFlagSync
from sluicegate.router import RouterClient
from sluicegate.store import Store
from tests._support import AppProcess, RouterProcess, router_config, start_app, start_router
from tests._support.rawhttp import get_many
from tests.flagservice.conftest import flag_set

pytestmark = pytest.mark.anyio

RULE = {
    "match": {"flag": {"key": "new-search", "variant": "on", "user_from": {"header": "x-user"}}},
    "forward": [{"target_group": "green", "weight": 1}],
}


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, AppProcess]]:
    started = {"blue": start_app(version="v1"), "green": start_app(version="v2")}
    yield started
    for app in started.values():
        app.stop()


def new_router(apps: dict[str, AppProcess]) -> RouterProcess:
    return start_router(
        router_config({"blue": [apps["blue"]], "green": [apps["green"]]}, {"blue": 1}, rules=[RULE])
    )


def version_for(router: RouterProcess, user: str) -> str:
    return get_many(router.listener_port(), 1, {"x-user": user})[0].version


async def test_the_router_gets_the_current_version_and_every_change_of_it(
    service: FlagService, store: Store, apps: dict[str, AppProcess]
) -> None:
    with new_router(apps) as router:
        client = RouterClient(router.admin_url, router.token)
        sync = RouterFlagSync(store, "prod", client)
        try:
            assert await sync.sync_once() is None  # no environment yet: nothing pushed
            service.create_environment("prod", "", actor="t")
            assert await sync.sync_once() is None  # no version yet
            await service.apply("prod", flag_set(), actor="t")
            assert await sync.sync_once() == 1
            assert router.admin("GET", "/v1/flags").json()["version"] == 1
            assert version_for(router, "alice") == "v2"
            assert version_for(router, "carol") == "v1"

            changed = flag_set()
            changed["segments"]["beta"]["ids"] = ["carol"]
            await service.apply("prod", changed, actor="t")
            assert await sync.sync_once() == 2
            assert (version_for(router, "alice"), version_for(router, "carol")) == ("v1", "v2")

            await service.revert("prod", 1, actor="t")
            assert await sync.sync_once() == 3
            assert (version_for(router, "alice"), version_for(router, "carol")) == ("v2", "v1")
        finally:
            await client.aclose()


async def test_a_router_started_again_empty_gets_the_current_version(
    service: FlagService, store: Store, apps: dict[str, AppProcess]
) -> None:
    service.create_environment("prod", "", actor="t")
    await service.apply("prod", flag_set(), actor="t")
    routers = [new_router(apps)]
    client = RouterClient(routers[0].admin_url, routers[0].token)
    sync = RouterFlagSync(store, "prod", client)
    try:
        assert await sync.sync_once() == 1
        routers[0].stop()
        with pytest.raises(RouterUnavailableError):
            await sync.sync_once()
        routers.append(new_router(apps))
        client.retarget(routers[1].admin_url)  # what the server's router supervisor does
        assert routers[1].admin("GET", "/v1/flags").json()["version"] is None
        assert await sync.sync_once() == 1
        assert version_for(routers[1], "bob") == "v2"
    finally:
        await client.aclose()
        routers[-1].stop()
